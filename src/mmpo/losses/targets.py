"""Turning quality margins into target preference probabilities.

MMPO replaces the hard label "y_w beats y_l" by a soft target p = sigmoid(gamma * m), where m is the
quality margin of the pair. Keeping this mapping in one place lets every loss (policy, reward model,
KTO) and every evaluation metric agree on exactly what "the target" is, including the limits
gamma -> inf (hard labels, i.e. plain DPO / Bradley-Terry) and m = 0 (a tie, p = 0.5).
"""

from __future__ import annotations

import math

import torch


def target_probability(margin: torch.Tensor, gamma: float) -> torch.Tensor:
    """Return p = sigmoid(gamma * margin), elementwise.

    ``gamma = inf`` is allowed and gives the hard-label limit: 1 for m > 0, 0 for m < 0 and 0.5 for a
    tie (the naive formula would give NaN for inf * 0). ``gamma`` must be positive: gamma <= 0 would
    make better responses *less* preferred, which is never what a user means. A margin of +-inf is the same
    limit from the other side, p = 1 or 0 at any gamma: it is how a hard label (TRL's boolean KTO ``label``)
    is carried; NaN is refused.
    """
    if not isinstance(margin, torch.Tensor):
        margin = torch.as_tensor(margin, dtype=torch.float32)
    if not (gamma > 0):
        raise ValueError(f"gamma must be > 0 (got {gamma}); use gamma=inf for hard labels")
    if torch.isnan(margin).any():
        raise ValueError("margin contains NaN; clean the score columns before training")
    if not margin.is_floating_point():
        margin = margin.float()
    if math.isinf(gamma):
        return 0.5 * (torch.sign(margin) + 1.0)
    return torch.sigmoid(gamma * margin)
