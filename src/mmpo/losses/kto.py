"""KTO (Ethayarajh et al. 2024) with MMPO's per-sample weights (Kim et al. 2024).

A sample scoring above the median is desirable, one below undesirable, as in KTO with the median as the
threshold. MMPO's extension weights each sample's term by how clearly it is one or the other: the desirable
term by w = sigmoid(gamma * (score - median)) and the undesirable term by 1 - w = sigmoid(gamma * (median -
score)), so a sample just above the median counts half and a sample far above it counts fully; gamma -> inf
recovers plain KTO (every weight 1), as p = sigmoid(gamma*m) recovers DPO in the pairwise case. A sample at the
median (w = 0.5) is neither: both terms at half weight, whose gradients cancel when lambda_D = lambda_U.

The terms are TRL's (``KTOTrainer``, loss_type "kto"): desirable lambda_D * (1 - sigmoid(beta * (r - z))),
undesirable lambda_U * (1 - sigmoid(beta * (z - r))), with r = log pi/pi_ref of the sample and z the detached KL
reference point, clamped at 0. (Mixing both terms with weights w and 1 - w instead would give every sample the
net weight |2w - 1|, nothing at all near the median.)
"""

from __future__ import annotations

import torch

from mmpo.losses.hyperparameters import LossConfig
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
    config: LossConfig,
    policy_logps: torch.Tensor,
    ref_logps: torch.Tensor,
    margin: torch.Tensor,
    kl_estimate: torch.Tensor | float,
) -> torch.Tensor:
    """Per-sample loss (B,). ``margin`` is score - median (its sign says desirable or undesirable, its size the
    weight at ``config.gamma``); lambda_D, lambda_U are ``config.kto_desirable_weight`` / ``kto_undesirable_weight``."""
    check_same_shape("policy_logps", policy_logps, "ref_logps", ref_logps)
    check_same_shape("policy_logps", policy_logps, "margin", margin)
    beta = config.beta
    z = torch.as_tensor(kl_estimate, dtype=policy_logps.dtype, device=policy_logps.device).detach().clamp(min=0)
    logratio = policy_logps - ref_logps
    desirable = config.kto_desirable_weight * (1.0 - torch.sigmoid(beta * (logratio - z)))
    undesirable = config.kto_undesirable_weight * (1.0 - torch.sigmoid(beta * (z - logratio)))
    margin = margin.to(device=policy_logps.device)
    w = target_probability(margin, config.gamma).to(policy_logps.dtype)
    at_median = 0.5 * (desirable + undesirable)
    return torch.where(margin > 0, w * desirable, torch.where(margin < 0, (1.0 - w) * undesirable, at_median))
