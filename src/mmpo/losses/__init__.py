"""Pure-torch preference losses (no trainer needed): MMPO and its baselines."""

from mmpo.losses.kto import kto_desirability_weights, kto_loss
from mmpo.losses.pairwise import soft_bce_with_logits
from mmpo.losses.policy import POLICY_LOSS_TYPES, PolicyLossConfig, policy_logits, policy_loss
from mmpo.losses.reward import REWARD_LOSS_TYPES, RewardLossConfig, reward_loss
from mmpo.losses.targets import target_probability

__all__ = [
    "POLICY_LOSS_TYPES",
    "REWARD_LOSS_TYPES",
    "PolicyLossConfig",
    "RewardLossConfig",
    "kto_desirability_weights",
    "kto_loss",
    "policy_logits",
    "policy_loss",
    "reward_loss",
    "soft_bce_with_logits",
    "target_probability",
]
