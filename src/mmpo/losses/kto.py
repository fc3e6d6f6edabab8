"""KTO (Ethayarajh et al. 2024) with MMPO-style soft desirability weights.

Plain KTO labels every sample desirable or undesirable. With scalar scores we instead treat sample i
as desirable with probability w_i = sigmoid(gamma * (score_i - median(score))), and mix the two KTO
terms with those weights. gamma -> inf recovers hard KTO with the median as the threshold, exactly
as p = sigmoid(gamma*m) recovers DPO in the pairwise case.
"""

from __future__ import annotations

import torch

from mmpo.losses.pairwise import check_same_shape
from mmpo.losses.targets import target_probability


def kto_desirability_weights(scores: torch.Tensor, gamma: float, median: float | None = None) -> torch.Tensor:
    """w_i = sigmoid(gamma * (score_i - median)); pass the dataset median to keep batches consistent."""
    scores = torch.as_tensor(scores, dtype=torch.float32)
    if not torch.isfinite(scores).all():
        raise ValueError("KTO scores contain NaN or inf")
    # quantile(0.5) interpolates between the two middle values; torch.median would return the lower one.
    center = torch.quantile(scores, 0.5) if median is None else torch.tensor(float(median))
    return target_probability(scores - center, gamma)


def kto_loss(
    policy_logps: torch.Tensor,
    ref_logps: torch.Tensor,
    desirability: torch.Tensor,
    kl_estimate: torch.Tensor | float,
    beta: float = 0.1,
    desirable_weight: float = 1.0,
    undesirable_weight: float = 1.0,
) -> torch.Tensor:
    """Per-sample loss (B,): w*lambda_D*(1 - s(beta(r - z))) + (1-w)*lambda_U*(1 - s(beta(z - r))),
    where r = log pi/pi_ref of the sample and z the (detached) KL reference point."""
    check_same_shape("policy_logps", policy_logps, "ref_logps", ref_logps)
    check_same_shape("policy_logps", policy_logps, "desirability", desirability)
    z = torch.as_tensor(kl_estimate, dtype=policy_logps.dtype, device=policy_logps.device).detach().clamp(min=0)
    logratio = policy_logps - ref_logps
    desirable = 1.0 - torch.sigmoid(beta * (logratio - z))
    undesirable = 1.0 - torch.sigmoid(beta * (z - logratio))
    w = desirability.to(policy_logps.dtype)
    return w * desirable_weight * desirable + (1.0 - w) * undesirable_weight * undesirable
