"""Batch statistics for the losses that adapt to the batch, gathered across processes by the trainer.

AMaPO, beta-DPO and gamma-PO read the preference deltas of the whole micro-batch, on every process the same
(their reference code ``all_gather``s them); a statistic computed per process would make N processes with batch b
train differently from one process with batch N*b. The pure losses get the gathered deltas in a
``BatchStatistics`` record and never talk to other processes themselves.

beta-DPO also keeps moving averages (M0, sigma0) of the batch mean and standard deviation. They are state of the
run: ``RunningMarginStatistics`` is an ``ExportableState`` callback, so transformers writes it into every
checkpoint's ``trainer_state.json``, and it reads itself back from there when a run resumes.
"""

from __future__ import annotations

import torch
from transformers import TrainerCallback
from transformers.trainer_callback import ExportableState

from mmpo.losses.inputs import BatchStatistics


class RunningMarginStatistics(TrainerCallback, ExportableState):
    """beta-DPO's M0 and sigma0: moving averages (``momentum``) of the gathered batch's mean and unbiased standard
    deviation of delta. The reference code starts both at 0 and warms them with its first evaluation; here the first
    training batch sets them, so the first filter is not ten times too narrow. Updated on training batches only."""

    def __init__(self, momentum: float = 0.9, mean: float | None = None, std: float | None = None) -> None:
        self.momentum = momentum
        self.mean = mean
        self.std = std

    def update(self, deltas: torch.Tensor) -> None:
        """Fold in one gathered batch; a batch of one pair (a last, partial one) moves the mean only."""
        mean = deltas.mean().item()
        std = deltas.std().item() if deltas.numel() > 1 else None
        if self.mean is None or self.std is None:
            self.mean, self.std = mean, std if std is not None else 0.0
            return
        m = self.momentum
        self.mean = m * self.mean + (1 - m) * mean
        if std is not None:
            self.std = m * self.std + (1 - m) * std

    def state(self) -> dict:
        return {"args": {"momentum": self.momentum}, "attributes": {"mean": self.mean, "std": self.std}}

    def on_train_begin(self, args, state, control, **kwargs):
        """A resumed run: take the averages saved with the checkpoint it resumes from."""
        saved = (state.stateful_callbacks or {}).get(type(self).__name__)
        if isinstance(saved, dict) and state.global_step > 0:
            attributes = saved.get("attributes", {})
            self.mean, self.std = attributes.get("mean"), attributes.get("std")


def filter_generator(seed: int, global_step: int, micro_step: int) -> torch.Generator:
    """beta-DPO's random filter: the same draw on every process (they hold the same gathered deltas), and the same
    draw again when a run resumes at this step."""
    return torch.Generator().manual_seed(seed * 1_000_003 + global_step * 1_009 + micro_step)


def gathered_statistics(
    local_deltas: torch.Tensor,
    gather,
    process_index: int,
    running: RunningMarginStatistics | None = None,
    generator: torch.Generator | None = None,
) -> BatchStatistics:
    """The micro-batch's deltas from every process (``gather`` is the accelerator's), this process's offset, and
    the moving averages after this batch. Every process must hold the same number of pairs, as accelerate's even
    batches guarantee."""
    deltas = gather(local_deltas.detach().float().contiguous()).cpu()
    size = local_deltas.numel()
    if deltas.numel() % size:
        raise RuntimeError(f"gathered {deltas.numel()} deltas for batches of {size}: batches differ across processes")
    if running is not None:
        running.update(deltas)
    return BatchStatistics(
        deltas.to(local_deltas.device),
        process_index * size,
        running.mean if running is not None else None,
        running.std if running is not None else None,
        generator,
    )
