"""What the reward-model and policy trainers share, on top of ``transformers.Trainer``.

Both map a batch to per-pair losses and logits h (predicted log-odds that chosen beats rejected);
everything else (metric logging, evaluation, ECE) is defined once here in terms of h and the margins.
Only the public ``compute_loss`` / ``prediction_step`` / ``log`` hooks are overridden, so the usual
Trainer machinery (accelerate, DeepSpeed, FSDP, checkpointing, callbacks) applies unchanged.
"""

from __future__ import annotations

from typing import Any

import torch
from transformers import EvalPrediction, Trainer

from mmpo.evaluation.metrics import preference_report


class PairwiseTrainer(Trainer):
    """Subclasses implement ``pair_losses_and_logits``."""

    def __init__(self, *args: Any, gamma: float = 1.0, ece_bins: int = 10, **kwargs: Any) -> None:
        kwargs.setdefault("compute_metrics", self._compute_and_keep_metrics)
        super().__init__(*args, **kwargs)
        # Our losses are per-batch means; tell Trainer so it divides by the gradient-accumulation steps
        # (models whose forward takes **kwargs would otherwise be assumed to normalise by token counts).
        self.model_accepts_loss_kwargs = False
        # (global_step, logits h, margins) of the latest evaluation, so callers can draw reliability
        # diagrams without running the evaluation set through the model a second time.
        self.last_eval: tuple[int, list[float], list[float]] | None = None
        self.gamma = gamma
        self.ece_bins = ece_bins
        self._train_logits: list[torch.Tensor] = []
        self._train_margins: list[torch.Tensor] = []
        self._train_extra: dict[str, list[float]] = {}

    def pair_losses_and_logits(
        self, model: torch.nn.Module, inputs: dict[str, torch.Tensor]
    ) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
        """Return (per-pair losses (B,), logits h (B,), extra per-pair tensors to log as means)."""
        raise NotImplementedError

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        losses, logits, extra = self.pair_losses_and_logits(model, inputs)
        loss = losses.mean()
        if model.training:
            self._train_logits.append(self.accelerator.gather(logits.detach().float()).cpu())
            self._train_margins.append(self.accelerator.gather(inputs["margin"].detach().float()).cpu())
            for key, value in extra.items():
                self._train_extra.setdefault(key, []).append(
                    self.accelerator.gather(value.detach().float()).mean().item()
                )
        return (loss, {"logits": logits}) if return_outputs else loss

    def prediction_step(self, model, inputs, prediction_loss_only, ignore_keys=None):
        inputs = self._prepare_inputs(inputs)
        with torch.no_grad(), self.compute_loss_context_manager():
            losses, logits, _ = self.pair_losses_and_logits(model, inputs)
        loss = losses.mean().detach()
        if prediction_loss_only:
            return loss, None, None
        return loss, logits.detach().float(), inputs["margin"].detach().float()

    def _compute_and_keep_metrics(self, prediction: EvalPrediction) -> dict[str, float]:
        """compute_metrics for Trainer.evaluate: predictions are the logits h, label_ids the margins."""
        logits = torch.as_tensor(prediction.predictions).flatten()
        margins = torch.as_tensor(prediction.label_ids).flatten()
        self.last_eval = (self.state.global_step, logits.tolist(), margins.tolist())
        report = preference_report(logits, margins, self.gamma, self.ece_bins)
        return {k: v for k, v in report.items() if isinstance(v, float)}

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        """Add accuracy/ECE/implicit margin of the training pairs seen since the last log."""
        if "loss" in logs and self._train_logits:
            report = preference_report(
                torch.cat(self._train_logits), torch.cat(self._train_margins), self.gamma, self.ece_bins
            )
            for key in ("accuracy", "ece", "implicit_margin"):
                logs[key] = round(report[key], 6)
            for key, values in self._train_extra.items():
                logs[key] = round(sum(values) / len(values), 6)
            self._train_logits, self._train_margins, self._train_extra = [], [], {}
        super().log(logs, start_time)
