"""The table of losses: one row per loss, declaring what it needs, so that the trainer, the recipes and the
checks before a run ask the table instead of listing loss names (as torchtune declares ``is_reference_free`` on
each loss).

A row says which model kinds take the loss, whether it needs reference log-probs (otherwise no reference pass
is run), a quality margin per pair, length-averaged log-probs, and statistics of the whole micro-batch gathered
across processes (``batch_statistics``; ``running_statistics`` adds beta-DPO's moving averages, which the trainer
keeps and saves with each checkpoint). ``hyperparameters`` names the loss's own record in ``LossConfig``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from mmpo.losses import margin_aware, policy
from mmpo.losses.hyperparameters import LossConfig
from mmpo.losses.inputs import PolicyLossInputs


@dataclass(frozen=True)
class LossSpec:
    name: str
    kinds: tuple[str, ...]
    summary: str
    function: Callable[[LossConfig, PolicyLossInputs], torch.Tensor] | None = None
    needs_reference: bool = True
    needs_margin: bool = False
    length_averaged: bool = False
    batch_statistics: bool = False
    running_statistics: bool = False
    hyperparameters: tuple[str, ...] = ("beta",)


POLICY_AND_REWARD = ("policy", "reward")

LOSS_TABLE: dict[str, LossSpec] = {
    spec.name: spec
    for spec in (
        LossSpec(
            "mmpo",
            POLICY_AND_REWARD,
            "soft target p = sigmoid(gamma * m) (Kim et al. 2024)",
            policy.mmpo_loss,
            needs_margin=True,
            hyperparameters=("beta", "gamma"),
        ),
        LossSpec("dpo", ("policy",), "hard label p = 1 (Rafailov et al. 2023)", policy.dpo_loss),
        LossSpec(
            "cdpo",
            ("policy",),
            "constant p = 1 - label_smoothing",
            policy.cdpo_loss,
            hyperparameters=("beta", "label_smoothing"),
        ),
        LossSpec(
            "robust",
            ("policy",),
            "unbiased under label flips (Chowdhury et al. 2024)",
            policy.robust_loss,
            hyperparameters=("beta", "label_smoothing"),
        ),
        LossSpec("ipo", ("policy",), "squared loss to 1/(2 beta) (Azar et al. 2023)", policy.ipo_loss),
        LossSpec("hinge", ("policy",), "hinge on beta * delta (SLiC)", policy.hinge_loss),
        LossSpec(
            "simpo",
            ("policy",),
            "reference-free, target margin (Meng et al. 2024)",
            policy.simpo_loss,
            needs_reference=False,
            length_averaged=True,
            hyperparameters=("beta", "simpo_gamma"),
        ),
        LossSpec(
            "odpo",
            ("policy",),
            "offset alpha * log(m) (Amini et al. 2024)",
            policy.odpo_loss,
            needs_margin=True,
            hyperparameters=("beta", "odpo_alpha"),
        ),
        LossSpec(
            "gammapo",
            ("policy",),
            "per-pair target margins solved over the batch (Sun et al. 2025)",
            margin_aware.gammapo_loss,
            needs_reference=False,
            length_averaged=True,
            batch_statistics=True,
            hyperparameters=("beta", "gammapo.gamma_beta_ratio", "gammapo.tau"),
        ),
        LossSpec(
            "amapo",
            ("policy",),
            "Z-normalised adaptive margin for pairs below the batch mean (AMaPO, 2025)",
            margin_aware.amapo_loss,
            needs_reference=False,
            length_averaged=True,
            batch_statistics=True,
            hyperparameters=("beta", "label_smoothing"),
        ),
        LossSpec(
            "madpo",
            ("policy",),
            "per-pair weights from a reward model's margin (Rho 2025)",
            margin_aware.madpo_loss,
            needs_margin=True,
            hyperparameters=("beta", "madpo.c_max", "madpo.c_min", "madpo.lmbda", "madpo.tau"),
        ),
        LossSpec(
            "beta_dpo",
            ("policy",),
            "batch-adaptive beta, Gaussian margin filter (Wu et al. 2024)",
            margin_aware.beta_dpo_loss,
            batch_statistics=True,
            running_statistics=True,
            hyperparameters=("beta", "beta_dpo.alpha", "beta_dpo.rho", "beta_dpo.momentum"),
        ),
        LossSpec(
            "bpo",
            ("policy",),
            "balanced reward margin min(r_w, -alpha r_l) (Sun et al. 2025)",
            margin_aware.bpo_loss,
            hyperparameters=("beta", "bpo.alpha", "bpo.preference_function"),
        ),
        LossSpec(
            "repo",
            ("policy",),
            "ReLU max-margin, reference-free (Wu et al. 2025)",
            margin_aware.repo_loss,
            needs_reference=False,
            length_averaged=True,
            hyperparameters=("repo.gamma",),
        ),
        LossSpec("bt", ("reward",), "Bradley-Terry, hard labels", needs_reference=False, hyperparameters=()),
        LossSpec(
            "cbt",
            ("reward",),
            "constant p = 1 - label_smoothing",
            needs_reference=False,
            hyperparameters=("label_smoothing",),
        ),
        LossSpec(
            "llama2_margin",
            ("reward",),
            "-log sigmoid(h - m) (Touvron et al. 2023)",
            needs_reference=False,
            needs_margin=True,
            hyperparameters=(),
        ),
        LossSpec(
            "kto",
            ("kto",),
            "KTO with MMPO's per-sample weights",
            needs_margin=True,
            hyperparameters=("beta", "gamma", "kto_desirable_weight", "kto_undesirable_weight"),
        ),
    )
}


def loss_spec(loss_type: str) -> LossSpec:
    """The row of ``loss_type``; a name not in the table is a ValueError naming the choices."""
    if loss_type not in LOSS_TABLE:
        raise ValueError(f"loss.loss_type = {loss_type!r}; choose one of {tuple(LOSS_TABLE)}")
    return LOSS_TABLE[loss_type]
