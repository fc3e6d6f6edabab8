"""What activation checkpointing keeps from a decoder layer's forward pass, and so what its backward recomputes.

Why this exists: full checkpointing (transformers' default, and TRL's) keeps only each layer's input and re-runs the
whole layer in the backward: about 2N more FLOPs per trained token on top of training's 6N, spent on matmuls that
already ran. Op-level selective checkpointing (torchtitan's "selective op" mode, built on torch's
``create_selective_checkpoint_contexts``) keeps the outputs of the expensive ops and recomputes only the cheap,
element-wise ones (norms, rotary, SiLU, residual adds):

- ``inputs``: full checkpointing, the least memory;
- ``attention``: each layer's attention output (and its log-sum-exp) as well, so the backward re-runs the layer's
  matmuls but not its attention: about one more layer input's worth of memory per layer, for the attention forward
  that on a CPU runs at well under the matmuls' speed (SmolLM2, fp32: training steps 1.03-1.05x, about 200 MB more);
- ``matmuls``: every matmul's and attention's output is kept, so the backward runs no matmul twice;
- ``half_matmuls``: attention and every other matmul of a layer (the 1st, 3rd, ...), as torchtitan keeps them: about
  half the extra memory of ``matmuls`` for part of its gain.

The two matmul choices also keep dtype casts (``_to_copy``): under bf16 autocast every Linear casts its fp32 weight
and its input to bf16, the matmul's backward needs both casts, and a recompute would cast them again (in a bf16
profile on a CPU the copies took half as long as the matmuls). The casts are bf16 copies the backward holds anyway.

The choice reaches ``torch.utils.checkpoint.checkpoint`` as ``context_fn`` (through
``TrainingArguments.activation_checkpointing_kwargs``): a partial of a module-level function, because the Trainer
pickles its arguments with every checkpoint and torch.compile traces the function.
"""

from __future__ import annotations

import functools
from collections import defaultdict

import torch
from torch.utils.checkpoint import CheckpointPolicy, create_selective_checkpoint_contexts

from mmpo.config.schema import CHECKPOINT_SAVES


def _ops(*names: str) -> frozenset:
    """The aten overloads of these names that this torch build has (attention kernels differ by build and version)."""
    found = set()
    for name in names:
        packet = getattr(torch.ops.aten, name, None)
        if packet is not None and hasattr(packet, "default"):
            found.add(packet.default)
    return frozenset(found)


MATMUL_OPS = _ops("mm", "addmm", "bmm", "baddbmm")
ATTENTION_OPS = _ops(
    "_scaled_dot_product_flash_attention_for_cpu",
    "_scaled_dot_product_flash_attention",
    "_scaled_dot_product_efficient_attention",
    "_scaled_dot_product_cudnn_attention",
)

CAST_OPS = _ops("_to_copy")  # autocast's casts of weights and inputs


class _KeepPolicy:
    """One checkpointed call's policy. Matmuls are counted separately in the forward and in its recompute, so the
    recompute makes the same keep-or-recompute choice for the n-th matmul as the forward did."""

    def __init__(self, saves: str) -> None:
        self.saves = saves
        self.matmuls_seen: defaultdict[bool, int] = defaultdict(int)

    def __call__(self, ctx, func, *args, **kwargs) -> CheckpointPolicy:
        if func in ATTENTION_OPS:
            keep = True
        elif self.saves == "attention":
            keep = False
        elif func in MATMUL_OPS:
            self.matmuls_seen[ctx.is_recompute] += 1
            keep = self.saves == "matmuls" or self.matmuls_seen[ctx.is_recompute] % 2 == 1
        else:
            keep = func in CAST_OPS
        return CheckpointPolicy.MUST_SAVE if keep else CheckpointPolicy.PREFER_RECOMPUTE


def selective_checkpoint_context(saves: str):
    """``context_fn`` for ``torch.utils.checkpoint.checkpoint`` (bound to a choice with functools.partial): a fresh
    policy for every checkpointed call. A module-level function, so the Trainer's saved arguments pickle it and
    torch.compile can trace it (it refuses a callable object there)."""
    return create_selective_checkpoint_contexts(_KeepPolicy(saves))


def checkpointing_kwargs(saves: str) -> dict[str, object] | None:
    """``activation_checkpointing_kwargs`` for the Trainer: None (transformers' default, non-reentrant) for full
    checkpointing, else non-reentrant checkpointing with the selective policy (it needs the non-reentrant kind)."""
    if saves == "inputs":
        return None
    if saves not in CHECKPOINT_SAVES:
        raise ValueError(f"saves must be one of {CHECKPOINT_SAVES} (got {saves!r})")
    return {"use_reentrant": False, "context_fn": functools.partial(selective_checkpoint_context, saves)}
