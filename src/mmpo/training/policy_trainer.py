"""Policy trainer for the DPO family (MMPO, DPO, cDPO, IPO, robust, hinge, SimPO, ODPO).

Reference log-probs are precomputed once (see reference.py) and travel in the batch, so training
needs only the policy in memory and every epoch and every gamma of a sweep reuses them.
"""

from __future__ import annotations

from typing import Any

from mmpo.losses.policy import PolicyLossConfig, policy_logits, policy_loss
from mmpo.training.base_trainer import PairwiseTrainer
from mmpo.training.logprobs import completion_logps


class PolicyTrainer(PairwiseTrainer):
    def __init__(self, *args: Any, loss_config: PolicyLossConfig, ece_bins: int = 10, **kwargs: Any) -> None:
        # NLL/Brier are always measured against p = sigmoid(loss.gamma * m), whatever the loss type, so that
        # an MMPO run and its DPO baseline are scored against the same soft targets.
        super().__init__(*args, gamma=loss_config.gamma, ece_bins=ece_bins, **kwargs)
        self.loss_config = loss_config

    def pair_losses_and_logits(self, model, inputs):
        cfg = self.loss_config
        outputs = model(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"], use_cache=False)
        logps, n_tokens = completion_logps(outputs.logits, inputs["input_ids"], inputs["completion_mask"])
        chosen, rejected = logps.chunk(2)
        if cfg.needs_reference:
            ref_chosen, ref_rejected = inputs["ref_chosen_logps"], inputs["ref_rejected_logps"]
        else:  # SimPO scores length-normalised log-probs without a reference
            n_chosen, n_rejected = n_tokens.clamp(min=1).chunk(2)
            chosen, rejected = chosen / n_chosen, rejected / n_rejected
            ref_chosen = ref_rejected = None
        losses = policy_loss(cfg, chosen, rejected, ref_chosen, ref_rejected, inputs["margin"])
        logits = cfg.beta * policy_logits(chosen, rejected, ref_chosen, ref_rejected)
        extra = {"logps/chosen": chosen, "logps/rejected": rejected}
        if ref_chosen is not None:
            extra["rewards/chosen"] = cfg.beta * (chosen - ref_chosen)
            extra["rewards/rejected"] = cfg.beta * (rejected - ref_rejected)
        return losses, logits, extra
