"""Reward-model trainer: a sequence-classification model scores each (prompt, response); h = r_w - r_l."""

from __future__ import annotations

from typing import Any

import torch

from mmpo.losses.reward import RewardLossConfig, reward_loss
from mmpo.training.base_trainer import PairwiseTrainer


class RewardTrainer(PairwiseTrainer):
    def __init__(self, *args: Any, loss_config: RewardLossConfig, ece_bins: int = 10, **kwargs: Any) -> None:
        super().__init__(*args, gamma=loss_config.gamma, ece_bins=ece_bins, **kwargs)
        self.loss_config = loss_config

    def pair_losses_and_logits(self, model, inputs):
        rewards = score_sequences(model, inputs)
        chosen, rejected = rewards.chunk(2)
        losses = reward_loss(self.loss_config, chosen, rejected, inputs["margin"])
        extra = {"rewards/chosen": chosen, "rewards/rejected": rejected}
        return losses, chosen - rejected, extra


def score_sequences(model: torch.nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """Rewards (N,) of collated sequences; shared by training, evaluation and best-of-n."""
    keys = ("input_ids", "attention_mask", "token_type_ids", "prompt_embedding", "response_embedding")
    return model(**{k: batch[k] for k in keys if k in batch}).logits.squeeze(-1).float()
