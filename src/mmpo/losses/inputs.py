"""What a policy loss is given: one typed record per call, so a loss that needs batch statistics or a margin
says so in its table row and reads them from here, and the signature of every loss stays the same."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from mmpo.losses.pairwise import check_same_shape


def policy_delta(
    policy_chosen_logps: torch.Tensor,
    policy_rejected_logps: torch.Tensor,
    ref_chosen_logps: torch.Tensor | None,
    ref_rejected_logps: torch.Tensor | None,
) -> torch.Tensor:
    """delta = chosen log-ratio minus rejected log-ratio (reference omitted when both refs are None)."""
    check_same_shape("policy_chosen_logps", policy_chosen_logps, "policy_rejected_logps", policy_rejected_logps)
    delta = policy_chosen_logps - policy_rejected_logps
    if ref_chosen_logps is None and ref_rejected_logps is None:
        return delta
    if ref_chosen_logps is None or ref_rejected_logps is None:
        raise ValueError("pass both reference log-probs or neither")
    check_same_shape("policy_chosen_logps", policy_chosen_logps, "ref_chosen_logps", ref_chosen_logps)
    check_same_shape("policy_rejected_logps", policy_rejected_logps, "ref_rejected_logps", ref_rejected_logps)
    return delta - (ref_chosen_logps - ref_rejected_logps)


@dataclass(frozen=True)
class BatchStatistics:
    """The detached preference deltas of the whole micro-batch across processes, gathered by the trainer.

    Losses that adapt to the batch (AMaPO's Z-normalised margin, beta-DPO's batch beta and filter, gamma-PO's
    margins) must see every process's pairs, as their reference code does with ``all_gather``; computing them per
    process would make a run on N processes differ from one process with N times the batch. ``deltas`` holds every
    pair of the global micro-batch in rank order and ``offset`` is where this process's pairs start.
    ``running_mean`` / ``running_std`` are beta-DPO's moving averages M0 and sigma0, already updated with this batch
    (as the reference code updates them before the loss); ``generator`` draws its filter, seeded alike on every rank.
    """

    deltas: torch.Tensor
    offset: int = 0
    running_mean: float | None = None
    running_std: float | None = None
    generator: torch.Generator | None = None

    @classmethod
    def of_batch(cls, deltas: torch.Tensor) -> BatchStatistics:
        """One process, no trainer: the batch is the given pairs, and the moving averages are its own statistics."""
        deltas = deltas.detach()
        std = deltas.std().item() if deltas.numel() > 1 else 0.0
        return cls(deltas, 0, deltas.mean().item(), std)

    def local(self, size: int) -> slice:
        """This process's pairs within ``deltas`` (refused if they do not fit: a short slice would broadcast)."""
        if self.offset < 0 or self.offset + size > self.deltas.numel():
            raise ValueError(
                f"batch statistics hold {self.deltas.numel()} pairs; pairs {self.offset}..{self.offset + size} asked"
            )
        return slice(self.offset, self.offset + size)


@dataclass(frozen=True)
class PolicyLossInputs:
    """Per-pair (B,) policy log-probs (summed, or length-averaged where the loss's row says so), the reference's,
    the quality margin, and the batch statistics; a loss reads only what its row in ``losses/table.py`` declares."""

    chosen_logps: torch.Tensor
    rejected_logps: torch.Tensor
    ref_chosen_logps: torch.Tensor | None = None
    ref_rejected_logps: torch.Tensor | None = None
    margin: torch.Tensor | None = None
    batch: BatchStatistics | None = None

    @property
    def delta(self) -> torch.Tensor:
        """delta = chosen log-ratio minus rejected log-ratio (log-probs alone without a reference)."""
        return policy_delta(self.chosen_logps, self.rejected_logps, self.ref_chosen_logps, self.ref_rejected_logps)
