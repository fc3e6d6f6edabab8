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

Only rotary embeddings that follow their input's dtype are changed: the first time one runs under autocast, the hook
calls it again on the hidden states in the autocast dtype and looks at what comes back. Models that keep rotary in
fp32 on purpose whatever the weights (OLMo 2's returns fp32 cos and sin always; Ernie 4.5 multiplies in fp32) give
fp32 back and are left alone, so no model computes rotary less precisely here than it would loaded in bf16.

The hook stays on the module (it does nothing outside autocast or for anything but fp32 outputs), so the forward,
its recomputation under activation checkpointing and the reference pass all compute rotary the same way: the
policy's log-probs before its first update equal the reference's.
"""

from __future__ import annotations

import torch

_HOOKED = "_mmpo_rotary_in_compute_dtype"
_FOLLOWS_INPUT_DTYPE = "_mmpo_rotary_follows_input_dtype"  # None until probed under autocast


def _is_rotary_embedding(module: torch.nn.Module) -> bool:
    return type(module).__name__.endswith("RotaryEmbedding")


def _autocast_dtype(device_type: str) -> torch.dtype | None:
    """The autocast dtype active for ``device_type``, or None (autocast off, or a device autocast does not know)."""
    try:
        enabled = torch.is_autocast_enabled(device_type)
    except RuntimeError:  # e.g. "meta"
        return None
    return torch.get_autocast_dtype(device_type) if enabled else None


def _follows_input_dtype(module: torch.nn.Module, args: tuple, kwargs: dict, dtype: torch.dtype) -> bool:
    """Whether the rotary embedding returns cos and sin in the dtype of the hidden states it is given: it is run
    once more (its own forward, so no hook) on them in ``dtype``. A call whose hidden states are not its first
    argument, or ``x``, is not probed and not changed."""
    if args and isinstance(args[0], torch.Tensor) and args[0].is_floating_point():
        probe_args, probe_kwargs = (args[0].to(dtype), *args[1:]), kwargs
    elif isinstance(kwargs.get("x"), torch.Tensor):
        probe_args, probe_kwargs = args, {**kwargs, "x": kwargs["x"].to(dtype)}
    else:
        return False
    output = module.forward(*probe_args, **probe_kwargs)
    return isinstance(output, tuple) and all(isinstance(t, torch.Tensor) and t.dtype == dtype for t in output)


def _cast_to_autocast_dtype(module: torch.nn.Module, args: tuple, kwargs: dict, output: object) -> object:
    """Forward hook: (cos, sin) in the autocast dtype where autocast is on, they came out in fp32 and the module
    follows its input's dtype; else as is."""
    if not isinstance(output, tuple) or not output or not all(isinstance(t, torch.Tensor) for t in output):
        return output
    dtype = _autocast_dtype(output[0].device.type)
    if dtype is None or any(t.dtype != torch.float32 for t in output):  # complex, or already reduced: leave them
        return output
    follows = getattr(module, _FOLLOWS_INPUT_DTYPE, None)
    if follows is None:
        follows = _follows_input_dtype(module, args, kwargs, dtype)
        setattr(module, _FOLLOWS_INPUT_DTYPE, follows)
    return tuple(t.to(dtype) for t in output) if follows else output


def rotary_in_compute_dtype(model: torch.nn.Module) -> int:
    """Make every rotary embedding of ``model`` that follows its input's dtype return cos and sin in the autocast
    dtype under autocast (once per module; later calls add nothing). Returns how many rotary embeddings the model
    has."""
    rotaries = [module for module in model.modules() if _is_rotary_embedding(module)]
    for module in rotaries:
        if not getattr(module, _HOOKED, False):
            module.register_forward_hook(_cast_to_autocast_dtype, with_kwargs=True)
            setattr(module, _HOOKED, True)
    return len(rotaries)
