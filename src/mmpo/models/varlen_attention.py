"""Attention over packed sequences without a dense mask: transformers' SDPA, run once per packed sequence.

A padding-free batch is one row holding several sequences, with position ids restarting at 0 at each one.
FlashAttention's varlen kernels attend within each sequence directly. Without them (on a CPU, or a GPU without
``flash-attn``), transformers' SDPA path builds one dense block-causal mask over every token of the row, so the
attention costs (sum of lengths)^2 and the packed row is slower than the padded batch it replaces. This module
registers an attention implementation, ``mmpo_varlen_sdpa``, that runs SDPA (causal, no mask) on each sequence's
slice of the row: the attention then costs the sum of the squared lengths, and the linear layers see no padding
at all. The sequence bounds arrive as FlashAttention's ``cu_seq_lens`` keyword arguments (see
``packed_attention_kwargs``), or else from the position ids. Unpacked inputs go to transformers' SDPA unchanged.
"""

from __future__ import annotations

import torch
from transformers import AttentionInterface, AttentionMaskInterface
from transformers.integrations.sdpa_attention import sdpa_attention_forward
from transformers.masking_utils import sdpa_mask

from mmpo.models.unwrap import unwrap_to_transformers_model

VARLEN_SDPA = "mmpo_varlen_sdpa"


def packed_sequence_bounds(position_ids: torch.Tensor | None) -> list[int] | None:
    """Start offsets of the packed sequences plus the row's end, or None when the row is one ordinary sequence."""
    if position_ids is None or position_ids.dim() != 2 or position_ids.shape[0] != 1:
        return None
    starts = torch.nonzero(position_ids[0] == 0).flatten().tolist()
    if len(starts) < 2 or starts[0] != 0:
        return None
    return [*starts, position_ids.shape[1]]


def varlen_sdpa_forward(
    module: torch.nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    **kwargs,
) -> tuple[torch.Tensor, None]:
    """SDPA per packed sequence when the (mask-free) row is packed; transformers' SDPA otherwise."""
    bounds = None
    if attention_mask is None and query.shape[2] == key.shape[2]:  # training or scoring: no KV cache
        given = kwargs.get("cu_seq_lens_q")
        if given is not None:
            bounds = given.tolist()
        else:
            bounds = packed_sequence_bounds(kwargs.get("position_ids"))
    if bounds is None:
        return sdpa_attention_forward(module, query, key, value, attention_mask, **kwargs)
    # split, not one slice per sequence: a slice's backward writes its gradient into a zeroed tensor the size of the
    # whole row, so n sequences cost n row-sized fills and additions per layer; a split's backward is one concatenation
    lengths = [end - start for start, end in zip(bounds[:-1], bounds[1:], strict=True)]
    pieces = [
        sdpa_attention_forward(module, q, k, v, None, **kwargs)[0]
        for q, k, v in zip(query.split(lengths, 2), key.split(lengths, 2), value.split(lengths, 2), strict=True)
    ]
    return torch.cat(pieces, dim=1), None  # (batch, tokens, heads, head_dim), like sdpa_attention_forward


def packed_attention_kwargs(model: torch.nn.Module, position_ids: torch.Tensor) -> dict[str, object]:
    """The sequence bounds of a packed row, as the keyword arguments transformers passes down to every attention
    layer (FlashAttention's ``cu_seq_lens``), for the implementations that read them; empty for the others.

    Given explicitly, they do not depend on a model handing its position ids to its attention layers."""
    implementation = _implementation(unwrap_to_transformers_model(model))
    if implementation != VARLEN_SDPA and not _is_flash(implementation):
        return {}
    bounds = packed_sequence_bounds(position_ids)
    if bounds is None:
        return {}
    longest = max(end - start for start, end in zip(bounds[:-1], bounds[1:], strict=True))
    cu_seq_lens = torch.tensor(bounds, dtype=torch.int32, device=position_ids.device)
    return {
        "cu_seq_lens_q": cu_seq_lens,
        "cu_seq_lens_k": cu_seq_lens,
        "max_length_q": longest,
        "max_length_k": longest,
    }


def varlen_sdpa_mask(*args, attention_mask: torch.Tensor | None = None, **kwargs) -> torch.Tensor | None:
    """No mask for mask-free inputs (causal, or packed: the attention splits the row itself), else SDPA's mask.

    Skipping the mask for a packed row is what saves the dense (tokens x tokens) block-causal mask."""
    q_length, kv_length = kwargs.get("q_length"), kwargs.get("kv_length")
    if attention_mask is None and q_length == kv_length and not kwargs.get("q_offset") and not kwargs.get("kv_offset"):
        return None
    return sdpa_mask(*args, attention_mask=attention_mask, **kwargs)


AttentionInterface.register(VARLEN_SDPA, varlen_sdpa_forward)
AttentionMaskInterface.register(VARLEN_SDPA, varlen_sdpa_mask)


def _text_config(model: torch.nn.Module):
    config = model.config
    return config.get_text_config() if hasattr(config, "get_text_config") else config


def _implementation(model: torch.nn.Module) -> str | None:
    return getattr(_text_config(model), "_attn_implementation", None) if hasattr(model, "config") else None


def _is_flash(implementation: str | None) -> bool:
    """FlashAttention 2/3 or a hub flash kernel: they read cu_seq_lens and attend per sequence themselves."""
    return bool(implementation) and "flash" in implementation


def supports_varlen_sdpa(model: torch.nn.Module) -> bool:
    """Whether the per-sequence SDPA is exact for this model: it uses SDPA today and has no sliding window or
    attention soft-capping (which the plain causal SDPA of each slice would ignore)."""
    config = _text_config(model)
    if _implementation(model) not in ("sdpa", VARLEN_SDPA):
        return False  # eager, flex or FlashAttention (which handles packed rows itself): leave it alone
    sliding_window = getattr(config, "sliding_window", None) if getattr(config, "use_sliding_window", True) else None
    sliding_layers = "sliding_attention" in (getattr(config, "layer_types", None) or ())
    if sliding_window or sliding_layers or getattr(config, "attn_logit_softcapping", None):
        return False
    return hasattr(model, "set_attn_implementation")


def prepare_packed_attention(model: torch.nn.Module) -> str | None:
    """Make a model attend within each sequence of a packed row without a dense mask, if it can; says how.

    SDPA models switch to the per-sequence SDPA (padded batches give the same results under it, so the switch
    can stay in place); FlashAttention reads the sequence bounds itself. None for anything else (eager
    attention, sliding windows, soft-capping): there transformers would build one dense block-causal mask over
    the packed row, whose attention costs (sum of lengths)^2, so such models train on padded batches."""
    inner = unwrap_to_transformers_model(model)
    implementation = _implementation(inner)
    if supports_varlen_sdpa(inner):
        if implementation != VARLEN_SDPA:
            inner.set_attn_implementation(VARLEN_SDPA)
        return "SDPA per packed sequence"
    if _is_flash(implementation):
        return f"{implementation} (varlen)"
    return None
