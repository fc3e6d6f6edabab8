"""KTO trainer with MMPO-style soft desirability weights (see mmpo.losses.kto and mmpo.data.unpaired).

Batches are pseudo-pairs: the "chosen" slot is the sample, the "rejected" slot a mismatched completion
for the same prompt, used only for the KL reference point z = mean(log pi/pi_ref of the mismatches),
detached and clamped at 0, gathered over all processes as in TRL. The logged logits are
h = beta * (log pi/pi_ref(sample) - z), so accuracy/ECE measure how well the policy's implicit reward
separates desirable (score above the median) from undesirable samples.
"""

from __future__ import annotations

from typing import Any

from mmpo.losses.kto import kto_loss
from mmpo.losses.targets import target_probability
from mmpo.training.base_trainer import PairwiseTrainer
from mmpo.training.logprobs import completion_logps


class KTOTrainer(PairwiseTrainer):
    def __init__(self, *args: Any, beta: float, gamma: float, ece_bins: int = 10, **kwargs: Any) -> None:
        super().__init__(*args, gamma=gamma, ece_bins=ece_bins, **kwargs)
        self.beta = beta

    def pair_losses_and_logits(self, model, inputs):
        outputs = model(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"], use_cache=False)
        logps, _ = completion_logps(outputs.logits, inputs["input_ids"], inputs["completion_mask"])
        sample, mismatch = logps.chunk(2)
        logratio = sample - inputs["ref_chosen_logps"]
        kl = self.accelerator.gather((mismatch - inputs["ref_rejected_logps"]).detach()).mean().clamp(min=0)
        weights = target_probability(inputs["margin"], self.gamma)
        losses = kto_loss(sample, inputs["ref_chosen_logps"], weights, kl, self.beta)
        return losses, self.beta * (logratio.detach() - kl), {"kl": kl.expand_as(sample), "weights": weights}
