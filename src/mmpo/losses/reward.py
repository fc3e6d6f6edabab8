"""Pairwise losses for reward models, MMPO included: h = r(y_w) - r(y_l)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from mmpo.losses.pairwise import check_same_shape, soft_bce_with_logits
from mmpo.losses.targets import target_probability

REWARD_LOSS_TYPES = ("mmpo", "bt", "cbt", "llama2_margin")


@dataclass(frozen=True)
class RewardLossConfig:
    """mmpo: soft BCE with p = sigmoid(gamma*m); bt: hard Bradley-Terry; cbt: constant p = 1 - eps;
    llama2_margin: -log sigmoid(h - m) (Touvron et al. 2023, m = discrete rating gap)."""

    loss_type: str = "mmpo"
    gamma: float = 1.0
    label_smoothing: float = 0.0

    def __post_init__(self) -> None:
        if self.loss_type not in REWARD_LOSS_TYPES:
            raise ValueError(f"unknown loss_type {self.loss_type!r}; choose one of {REWARD_LOSS_TYPES}")
        if not 0.0 <= self.label_smoothing < 0.5:
            raise ValueError(f"label_smoothing must be in [0, 0.5) (got {self.label_smoothing})")

    @property
    def needs_margin(self) -> bool:
        return self.loss_type in ("mmpo", "llama2_margin")


def reward_loss(
    config: RewardLossConfig,
    chosen_rewards: torch.Tensor,
    rejected_rewards: torch.Tensor,
    margin: torch.Tensor | None = None,
) -> torch.Tensor:
    """Per-pair loss of shape (B,). Rewards must be (B,) (squeeze a (B,1) head output first)."""
    check_same_shape("chosen_rewards", chosen_rewards, "rejected_rewards", rejected_rewards)
    h = chosen_rewards - rejected_rewards
    if config.needs_margin:
        if margin is None:
            raise ValueError(f"loss_type {config.loss_type!r} needs a margin per pair")
        check_same_shape("chosen_rewards", chosen_rewards, "margin", margin)
        margin = margin.to(h.device)
    kind = config.loss_type
    if kind == "mmpo":
        return soft_bce_with_logits(h, target_probability(margin, config.gamma))
    if kind == "bt":
        return -F.logsigmoid(h)
    if kind == "cbt":
        return soft_bce_with_logits(h, 1.0 - config.label_smoothing)
    if kind == "llama2_margin":
        return -F.logsigmoid(h - margin.to(h.dtype))
    raise AssertionError(f"unreachable loss type {kind}")
