"""What the reward-model, policy and KTO trainers share, on top of ``transformers.Trainer``.

Each maps a batch to per-pair losses and preference logits h (predicted log-odds that chosen beats
rejected); everything else (metric logging, evaluation, ECE) is defined once here in terms of h and the
quality margins. Only the public ``compute_loss`` / ``prediction_step`` / ``log`` hooks are overridden, so
the usual Trainer machinery (accelerate, DeepSpeed, FSDP, checkpointing, callbacks) applies unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from transformers import EvalPrediction, Trainer

from mmpo.losses import LossConfig
from mmpo.metrics.calibration import preference_report
from mmpo.training.progress import use_stderr_progress


@dataclass(frozen=True)
class PairOutputs:
    """One batch through a trainer: per-pair losses (B,), preference logits h (B,), and extra per-pair
    tensors logged as their means (rewards, log-probs, KL)."""

    losses: torch.Tensor
    preference_logits: torch.Tensor
    extra: dict[str, torch.Tensor]


@dataclass(frozen=True)
class EvalSnapshot:
    """The preference logits and margins of the latest evaluation, kept so that reliability diagrams need
    no second pass over the evaluation set."""

    step: int
    preference_logits: list[float]
    margins: list[float]


class PairwiseTrainer(Trainer):
    """Subclasses implement ``pair_outputs``. ``loss`` is the one validated loss configuration; NLL/Brier
    are always measured against p = sigmoid(target_gamma * m) (the run's ``eval_target_gamma``), whatever the
    loss type and its own gamma, so that an MMPO run and its DPO/BT baseline are scored against the same soft
    targets; the metrics name that gamma (``target_gamma``)."""

    def __init__(
        self, *args: Any, loss: LossConfig, ece_bins: int = 10, target_gamma: float = 1.0, **kwargs: Any
    ) -> None:
        kwargs.setdefault("compute_metrics", self._compute_and_keep_metrics)
        super().__init__(*args, **kwargs)
        # Our losses are per-batch means; tell Trainer so it divides by the gradient-accumulation steps
        # (models whose forward takes **kwargs would otherwise be assumed to normalise by token counts).
        self.model_accepts_loss_kwargs = False
        use_stderr_progress(self, self.args.disable_tqdm)
        self.loss_config = loss
        self.ece_bins = ece_bins
        self.target_gamma = target_gamma
        self.last_eval: EvalSnapshot | None = None
        self._train_logits: list[torch.Tensor] = []
        self._train_margins: list[torch.Tensor] = []
        self._train_extra: dict[str, list[float]] = {}
        # training pairs this process put through the loss in this invocation: gathered at the end of a run, it
        # shows each rank trained on its own share (a run that silently fell back to one process shows [all])
        self.train_pairs_seen = 0

    def pair_outputs(self, model: torch.nn.Module, inputs: dict[str, torch.Tensor]) -> PairOutputs:
        raise NotImplementedError

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        outputs = self.pair_outputs(model, inputs)
        loss = outputs.losses.mean()
        if model.training:
            self.train_pairs_seen += len(inputs["margin"])
            gather = self.accelerator.gather
            self._train_logits.append(gather(outputs.preference_logits.detach().float()).cpu())
            self._train_margins.append(gather(inputs["margin"].detach().float()).cpu())
            for key, value in outputs.extra.items():
                self._train_extra.setdefault(key, []).append(gather(value.detach().float()).mean().item())
        return (loss, {"preference_logits": outputs.preference_logits}) if return_outputs else loss

    def prediction_step(self, model, inputs, prediction_loss_only, ignore_keys=None):
        inputs = self._prepare_inputs(inputs)
        with torch.no_grad(), self.compute_loss_context_manager():
            outputs = self.pair_outputs(model, inputs)
        loss = outputs.losses.mean().detach()
        if prediction_loss_only:
            return loss, None, None
        return loss, outputs.preference_logits.detach().float(), inputs["margin"].detach().float()

    def _compute_and_keep_metrics(self, prediction: EvalPrediction) -> dict[str, float]:
        """compute_metrics for Trainer.evaluate: predictions are the preference logits h, labels the margins."""
        h = torch.as_tensor(prediction.predictions).flatten()
        margins = torch.as_tensor(prediction.label_ids).flatten()
        self.last_eval = EvalSnapshot(self.state.global_step, h.tolist(), margins.tolist())
        report = preference_report(h, margins, self.target_gamma, self.ece_bins)
        metrics = {k: v for k, v in report.items() if isinstance(v, float)}
        metrics["target_gamma"] = float(self.target_gamma)
        return metrics

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        """Add accuracy/ECE/mean preference logit of the training pairs seen since the last log."""
        if "loss" in logs and self._train_logits:
            report = preference_report(
                torch.cat(self._train_logits), torch.cat(self._train_margins), self.target_gamma, self.ece_bins
            )
            for key in ("accuracy", "ece", "mean_preference_logit"):
                logs[key] = round(report[key], 6)
            for key, values in self._train_extra.items():
                logs[key] = round(sum(values) / len(values), 6)
            self._train_logits, self._train_margins, self._train_extra = [], [], {}
        super().log(logs, start_time)
