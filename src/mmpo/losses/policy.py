"""Preference losses for policies (the DPO family), MMPO included, as pure torch functions.

Every loss takes the per-pair log-probabilities of the chosen and rejected responses under the policy (and the
reference model, where its row in ``losses/table.py`` says it needs one) and returns one loss per pair (shape (B,));
the trainer averages. They are usable without any trainer, e.g. inside another framework's training loop.

Conventions (shared with TRL so that numbers can be compared one to one):
  delta = (log pi(y_w) - log pi_ref(y_w)) - (log pi(y_l) - log pi_ref(y_l))
  h     = beta * delta
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from mmpo.losses.hyperparameters import POLICY_LOSS_TYPES, LossConfig
from mmpo.losses.inputs import BatchStatistics, PolicyLossInputs, policy_delta
from mmpo.losses.pairwise import check_same_shape, soft_bce_with_logits
from mmpo.losses.targets import target_probability

# Kept as a name for readers of the DPO literature; it is the one LossConfig every loss takes.
PolicyLossConfig = LossConfig


def mmpo_loss(config: LossConfig, x: PolicyLossInputs) -> torch.Tensor:
    """Soft BCE of h = beta * delta against p = sigmoid(gamma * m)."""
    h = config.beta * x.delta
    return soft_bce_with_logits(h, target_probability(x.margin, config.gamma).to(h.device))


def dpo_loss(config: LossConfig, x: PolicyLossInputs) -> torch.Tensor:
    """Hard label p = 1 for every pair, ties included (the MMPO paper's DPO baseline)."""
    return -F.logsigmoid(config.beta * x.delta)


def cdpo_loss(config: LossConfig, x: PolicyLossInputs) -> torch.Tensor:
    """Constant soft target p = 1 - epsilon (label smoothing)."""
    return soft_bce_with_logits(config.beta * x.delta, 1.0 - config.label_smoothing)


def robust_loss(config: LossConfig, x: PolicyLossInputs) -> torch.Tensor:
    """Chowdhury et al. 2024: unbiased estimator under label-flip noise of rate epsilon."""
    h, eps = config.beta * x.delta, config.label_smoothing
    return (-(1.0 - eps) * F.logsigmoid(h) + eps * F.logsigmoid(-h)) / (1.0 - 2.0 * eps)


def ipo_loss(config: LossConfig, x: PolicyLossInputs) -> torch.Tensor:
    """Azar et al. 2023: regress delta onto 1/(2*tau), with tau = beta."""
    return (x.delta - 1.0 / (2.0 * config.beta)) ** 2


def hinge_loss(config: LossConfig, x: PolicyLossInputs) -> torch.Tensor:
    """SLiC's hinge on h."""
    return torch.relu(1.0 - config.beta * x.delta)


def simpo_loss(config: LossConfig, x: PolicyLossInputs) -> torch.Tensor:
    """SimPO: length-averaged log-probs, no reference, target reward margin simpo_gamma."""
    return -F.logsigmoid(config.beta * x.delta - config.simpo_gamma)


def odpo_loss(config: LossConfig, x: PolicyLossInputs) -> torch.Tensor:
    """ODPO: an offset alpha * log(m) subtracted from h; m must be > 0."""
    margin = x.margin
    if (margin <= 0).any():
        bad = torch.nonzero(margin <= 0).flatten().tolist()
        raise ValueError(f"ODPO needs margin > 0 (log offset); rows in batch {bad[:10]} have margin <= 0")
    h = config.beta * x.delta
    return -F.logsigmoid(h - config.odpo_alpha * torch.log(margin.to(h.dtype)))


def policy_loss(
    config: LossConfig,
    policy_chosen_logps: torch.Tensor,
    policy_rejected_logps: torch.Tensor,
    ref_chosen_logps: torch.Tensor | None = None,
    ref_rejected_logps: torch.Tensor | None = None,
    margin: torch.Tensor | None = None,
    batch: BatchStatistics | None = None,
) -> torch.Tensor:
    """Per-pair loss of shape (B,) for ``config.loss_type``, looked up in the table of losses.

    Pass length-averaged log-probs to the losses whose row says ``length_averaged`` (SimPO, gamma-PO, AMaPO, RePO),
    and no reference to those that need none. ``margin`` (B,) is required where the row says ``needs_margin``.
    ``batch`` carries the statistics of the whole (multi-process) micro-batch for the losses that adapt to it; called
    without it, they take the given pairs as the batch.
    """
    from mmpo.losses.table import loss_spec

    if config.loss_type not in POLICY_LOSS_TYPES:
        raise ValueError(f"loss_type {config.loss_type!r} is not a policy loss; choose one of {POLICY_LOSS_TYPES}")
    spec = loss_spec(config.loss_type)
    if spec.needs_reference and (ref_chosen_logps is None or ref_rejected_logps is None):
        raise ValueError(f"loss_type {config.loss_type!r} needs reference log-probs")
    if spec.needs_margin:
        if margin is None:
            raise ValueError(f"loss_type {config.loss_type!r} needs a margin per pair")
        check_same_shape("policy_chosen_logps", policy_chosen_logps, "margin", margin)
    policy_delta(policy_chosen_logps, policy_rejected_logps, ref_chosen_logps, ref_rejected_logps)  # shape checks
    use_reference = spec.needs_reference
    inputs = PolicyLossInputs(
        policy_chosen_logps,
        policy_rejected_logps,
        ref_chosen_logps if use_reference else None,
        ref_rejected_logps if use_reference else None,
        margin,
        batch,
    )
    return spec.function(config, inputs)
