"""Policy trainer for the DPO family (MMPO, DPO, cDPO, IPO, robust, hinge, SimPO, ODPO) and the margin-aware family
(gamma-PO, AMaPO, MADPO, beta-DPO, BPO, RePO).

Reference log-probs are precomputed once (see mmpo.features.reference) and travel in the batch, so
training needs only the policy in memory and every epoch and every gamma of a sweep reuses them. What a loss needs
(reference, length-averaged log-probs, batch statistics) is read from its row in ``mmpo.losses.table``.
"""

from __future__ import annotations

import dataclasses

from mmpo.features.logprobs import batch_sequence_logps
from mmpo.losses import policy_delta, policy_loss
from mmpo.losses.inputs import BatchStatistics
from mmpo.losses.table import loss_spec
from mmpo.training.base_trainer import PairOutputs, PairwiseTrainer
from mmpo.training.batch_statistics import RunningMarginStatistics, filter_generator, gathered_statistics


class PolicyTrainer(PairwiseTrainer):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.spec = loss_spec(self.loss_config.loss_type)
        if self.spec.running_statistics:
            self.add_callback(RunningMarginStatistics(self.loss_config.beta_dpo.momentum))
        # (global step, micro-batches seen at that step), for training and for evaluation: seeds beta-DPO's filter
        self._micro_step = {True: (-1, 0), False: (-1, 0)}

    @property
    def running_statistics(self) -> RunningMarginStatistics | None:
        """beta-DPO's moving averages, looked up among the callbacks each time: with
        ``restore_callback_states_from_checkpoint`` transformers replaces the instance on resume."""
        found = [c for c in self.callback_handler.callbacks if isinstance(c, RunningMarginStatistics)]
        return found[0] if found else None

    def evaluate(self, *args, **kwargs):
        self._micro_step[False] = (-1, 0)  # every evaluation draws beta-DPO's filters alike, however often it runs
        return super().evaluate(*args, **kwargs)

    def batch_statistics(self, model, deltas) -> BatchStatistics:
        """The gathered statistics of this micro-batch. beta-DPO's moving averages advance on training batches only;
        an evaluation uses them as training left them (before any step, the batch's own)."""
        step, training = self.state.global_step, model.training
        last_step, last_micro = self._micro_step[training]
        micro = last_micro + 1 if last_step == step else 0
        self._micro_step[training] = (step, micro)
        generator = filter_generator(self.args.seed, step, micro if training else -1 - micro)
        running = self.running_statistics
        stats = gathered_statistics(
            deltas, self.accelerator.gather, self.accelerator.process_index, running if training else None, generator
        )
        if running is None or training:
            return stats
        own = BatchStatistics.of_batch(stats.deltas)
        mean, std = (own.running_mean, own.running_std) if running.mean is None else (running.mean, running.std)
        return dataclasses.replace(stats, running_mean=mean, running_std=std)

    def pair_outputs(self, model, inputs) -> PairOutputs:
        cfg, spec = self.loss_config, self.spec
        logps, n_tokens = batch_sequence_logps(model, inputs)
        chosen, rejected = logps.chunk(2)
        if spec.length_averaged:  # SimPO, gamma-PO, AMaPO, RePO score mean log-probs per token
            n_chosen, n_rejected = n_tokens.clamp(min=1).chunk(2)
            chosen, rejected = chosen / n_chosen, rejected / n_rejected
        if spec.needs_reference:
            ref_chosen, ref_rejected = inputs["ref_chosen_logps"], inputs["ref_rejected_logps"]
        else:
            ref_chosen = ref_rejected = None
        delta = policy_delta(chosen, rejected, ref_chosen, ref_rejected)
        batch = self.batch_statistics(model, delta) if spec.batch_statistics else None
        losses = policy_loss(cfg, chosen, rejected, ref_chosen, ref_rejected, inputs["margin"], batch)
        extra = {"logps/chosen": chosen, "logps/rejected": rejected}
        if ref_chosen is not None:
            extra["rewards/chosen"] = cfg.beta * (chosen - ref_chosen)
            extra["rewards/rejected"] = cfg.beta * (rejected - ref_rejected)
        return PairOutputs(losses, cfg.beta * delta, extra)
