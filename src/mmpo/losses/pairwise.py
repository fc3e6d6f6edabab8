"""The soft-target pairwise binary cross-entropy at the heart of MMPO.

L(h, p) = -[p * log sigmoid(h) + (1 - p) * log sigmoid(-h)]

is computed through the identity log sigmoid(-h) = log sigmoid(h) - h, i.e.
L = -log sigmoid(h) + (1 - p) * h, which never evaluates log(0) and stays finite for |h| of any size.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def check_same_shape(name_a: str, a: torch.Tensor, name_b: str, b: torch.Tensor) -> None:
    """Refuse tensors whose shapes differ.

    Broadcasting a (B, 1) tensor against a (B,) tensor silently yields a (B, B) matrix: the loss is
    then averaged over every chosen/rejected *cross* pair, a known bug in preference-loss reference
    code. We insist on identical shapes instead of guessing what the caller meant.
    """
    if a.shape != b.shape:
        raise ValueError(
            f"{name_a} has shape {tuple(a.shape)} but {name_b} has shape {tuple(b.shape)}; "
            "they must match exactly (a (B,1) vs (B,) mix would broadcast to (B,B))"
        )


def soft_bce_with_logits(logits: torch.Tensor, target: torch.Tensor | float) -> torch.Tensor:
    """Per-element soft binary cross-entropy of ``logits`` against probabilities ``target``.

    ``target`` may be a tensor of the same shape as ``logits`` or a Python float (cDPO's constant p).
    Gradient with respect to ``logits`` is ``sigmoid(logits) - target``.
    """
    if isinstance(target, torch.Tensor):
        check_same_shape("logits", logits, "target", target)
        target = target.to(logits.dtype)
    return -F.logsigmoid(logits) + (1.0 - target) * logits
