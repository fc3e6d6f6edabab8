"""KTO trainer with MMPO's per-sample weights (see mmpo.losses.kto and mmpo.data.unpaired).

Batches are pseudo-pairs: the "chosen" slot is the sample, the "rejected" slot the completion of another sample
of the same batch (TRL's rotation, never the same prompt's other response), used only for the KL reference point
z = mean(log pi/pi_ref of the mismatches), detached, averaged over all processes and clamped at 0 as in TRL.
Batches are taken in dataset order (TRL's "sequential" sampling for KTO), so each training batch is exactly the
group its mismatches were drawn from. The logged preference logits are h = beta * (log pi/pi_ref(sample) - z), so
accuracy/ECE measure how well the policy's implicit reward separates desirable (score above the median) from
undesirable samples.
"""

from __future__ import annotations

from torch.utils.data import SequentialSampler

from mmpo.features.logprobs import batch_sequence_logps
from mmpo.losses import kto_loss, target_probability
from mmpo.training.base_trainer import PairOutputs, PairwiseTrainer


class KTOTrainer(PairwiseTrainer):
    def _get_train_sampler(self, *args, **kwargs):
        return SequentialSampler(self.train_dataset)

    def pair_outputs(self, model, inputs) -> PairOutputs:
        beta = self.loss_config.beta
        logps, _ = batch_sequence_logps(model, inputs)
        sample, mismatch = logps.chunk(2)
        logratio = sample - inputs["ref_chosen_logps"]
        kl = self.accelerator.gather((mismatch - inputs["ref_rejected_logps"]).detach().mean()).mean().clamp(min=0)
        losses = kto_loss(self.loss_config, sample, inputs["ref_chosen_logps"], inputs["margin"], kl)
        weights = target_probability(inputs["margin"], self.loss_config.gamma)
        return PairOutputs(losses, beta * (logratio.detach() - kl), {"kl": kl.expand_as(sample), "weights": weights})
