"""Rotary position embeddings in the compute dtype under autocast, as a model loaded in that dtype computes them.

Under bf16 autocast the weights stay fp32, so the residual stream is fp32, and transformers' rotary embedding
returns cos and sin in the dtype of the hidden states it is given: fp32. The query and key leave their projections
in bf16, so ``q * cos + rotate_half(q) * sin`` promotes them to fp32, and SDPA casts them back to bf16 (once per
packed sequence under mmpo's per-sequence attention); the backward pays the same casts and fp32 products again.
A model loaded in bf16 gets cos and sin in bf16 and does none of it. Casting cos and sin to the autocast dtype
gives the autocast run that same bf16 rotary: the query and key reach the attention in bf16 as they would anyway,
after bf16 rather than fp32 products (a rounding or two of bf16's, in tensors that are rounded to bf16 right
after). Measured on SmolLM2-135M, a packed row of 3,525 tokens, forward and backward with checkpointing: 1.06x per
training step on CPU.

The hook stays on the module (it does nothing outside autocast or for anything but fp32 outputs), so the forward,
its recomputation under activation checkpointing and the reference pass all compute rotary the same way: the
policy's log-probs before its first update equal the reference's.
"""

from __future__ import annotations

import torch

_HOOKED = "_mmpo_rotary_in_compute_dtype"


def _is_rotary_embedding(module: torch.nn.Module) -> bool:
    return type(module).__name__.endswith("RotaryEmbedding")


def _cast_to_autocast_dtype(module: torch.nn.Module, inputs: tuple, output: object) -> object:
    """Forward hook: (cos, sin) in the autocast dtype where autocast is on and they came out in fp32; else as is."""
    if not isinstance(output, tuple) or not output or not all(isinstance(t, torch.Tensor) for t in output):
        return output
    device_type = output[0].device.type
    if not torch.is_autocast_enabled(device_type):
        return output
    dtype = torch.get_autocast_dtype(device_type)
    if any(t.dtype != torch.float32 for t in output):  # complex frequencies, or already reduced: leave them
        return output
    return tuple(t.to(dtype) for t in output)


def rotary_in_compute_dtype(model: torch.nn.Module) -> int:
    """Make every rotary embedding of ``model`` return cos and sin in the autocast dtype under autocast (once per
    module; later calls add nothing). Returns how many rotary embeddings the model has."""
    rotaries = [module for module in model.modules() if _is_rotary_embedding(module)]
    for module in rotaries:
        if not getattr(module, _HOOKED, False):
            module.register_forward_hook(_cast_to_autocast_dtype)
            setattr(module, _HOOKED, True)
    return len(rotaries)
