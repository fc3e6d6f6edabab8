"""The transformers model inside the wrappers distributed training puts around it.

DDP and FSDP1 keep the model in ``.module``; so does DeepSpeed's engine, which also has a ``.config`` of its
own (DeepSpeed's settings, a dict). Unwrapping "until something has a config" therefore stopped at the engine
under ZeRO-3 and read DeepSpeed's config as the model's; unwrapping stops at the transformers model instead.
"""

from __future__ import annotations

import torch
from transformers import PreTrainedModel


def unwrap_parallel(model: torch.nn.Module) -> torch.nn.Module:
    """The module inside DDP / FSDP1 / DeepSpeed-engine wrappers (peft models are left as they are)."""
    inner = model
    while not isinstance(inner, PreTrainedModel) and isinstance(getattr(inner, "module", None), torch.nn.Module):
        inner = inner.module
    return inner


def unwrap_to_transformers_model(model: torch.nn.Module) -> torch.nn.Module:
    """The transformers model itself: through the parallel wrappers and a peft model's base model."""
    inner = unwrap_parallel(model)
    if hasattr(inner, "get_base_model"):
        inner = unwrap_parallel(inner.get_base_model())
    return inner
