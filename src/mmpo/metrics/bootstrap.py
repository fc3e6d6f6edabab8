"""95% bootstrap intervals for the metrics of one evaluation, and paired intervals for the difference of two.

On a few hundred pairs, MMPO and Bradley-Terry can differ by less than the noise of the sample itself; an interval
says so where a point estimate cannot. Every statistic here is a weighted mean over pairs, so a bootstrap resample
is a row of weights (how often each pair was drawn): R resamples are one (R, n) count matrix, and accuracy, soft
NLL, Brier and ECE of all resamples come from a few matrix products. ECE uses ``sum_b |sum_{i in b} (y_i - p_i)|
/ N``, the same quantity as the binned definition in ``calibration.py`` (symmetric bins, ties left out).

The paired interval resamples the *same* pairs for both runs, so what the two share (easy and hard pairs) cancels;
its two-sided p-value is ``2 * min(P*(d <= 0), P*(d >= 0))`` over the resampled differences d.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from mmpo.losses.pairwise import soft_bce_with_logits
from mmpo.losses.targets import target_probability
from mmpo.metrics.rewardbench import rewardbench_scores

METRICS = ("accuracy", "ece", "nll_soft", "brier_soft")
DEFAULT_RESAMPLES = 1000
LEVEL = 0.95


@dataclass(frozen=True)
class Interval:
    low: float
    high: float

    def as_list(self) -> list[float]:
        return [self.low, self.high]


@dataclass(frozen=True)
class Difference:
    """metric(b) - metric(a) on the same pairs: the estimate, its paired interval, and the two-sided p-value."""

    estimate: float
    interval: Interval
    p_value: float


def resample_counts(n: int, resamples: int, seed: int) -> torch.Tensor:
    """(resamples, n) float64 counts: how often each of n pairs is drawn in each resample (n draws each)."""
    generator = torch.Generator().manual_seed(seed)
    draws = torch.randint(0, n, (resamples, n), generator=generator)
    counts = torch.zeros(resamples, n, dtype=torch.float64)
    return counts.scatter_add_(1, draws, torch.ones_like(draws, dtype=torch.float64))


def _per_pair_parts(h: torch.Tensor, m: torch.Tensor, gamma: float, bins: int) -> dict[str, torch.Tensor]:
    """Per pair, the pieces every metric is a weighted sum of."""
    decided = (m != 0).double()
    p = torch.sigmoid(h)
    y = (m > 0).double()
    contribution = torch.zeros(len(h), bins, dtype=torch.float64)  # sum over resampled pairs, bin by bin
    for prob, outcome in ((p, y), (1 - p, 1 - y)):  # symmetric reliability bins, as calibration_bins
        index = torch.clamp((prob * bins).long(), max=bins - 1)
        contribution.scatter_add_(1, index[:, None], ((outcome - prob) * decided)[:, None])
    target = target_probability(m, gamma).double()
    return {
        "decided": decided,
        "correct": ((h > 0) == (m > 0)).double() * decided,
        "nll": soft_bce_with_logits(h, target),
        "brier": (p - target) ** 2,
        "ece_bins": contribution,
    }


def _metrics_of(counts: torch.Tensor, parts: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Each metric under each row of ``counts`` (resample weights), shape (R,)."""
    decided = counts @ parts["decided"]
    total = counts.sum(1)
    return {
        "accuracy": (counts @ parts["correct"]) / decided,
        "ece": (counts @ parts["ece_bins"]).abs().sum(1) / (2 * decided),
        "nll_soft": (counts @ parts["nll"]) / total,
        "brier_soft": (counts @ parts["brier"]) / total,
    }


def _quantiles(values: torch.Tensor) -> Interval:
    finite = values[torch.isfinite(values)]
    low, high = torch.quantile(finite, torch.tensor([(1 - LEVEL) / 2, (1 + LEVEL) / 2], dtype=torch.float64))
    return Interval(low.item(), high.item())


def _tensors(preference_logits, margins) -> tuple[torch.Tensor, torch.Tensor]:
    h = torch.as_tensor(preference_logits, dtype=torch.float64).flatten()
    m = torch.as_tensor(margins, dtype=torch.float64).flatten()
    if h.shape != m.shape:
        raise ValueError(f"preference logits {tuple(h.shape)} and margins {tuple(m.shape)} differ in shape")
    return h, m


def metric_intervals(
    preference_logits: Sequence[float] | torch.Tensor,
    margins: Sequence[float] | torch.Tensor,
    gamma: float,
    bins: int = 10,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
) -> dict[str, Interval]:
    """95% percentile-bootstrap intervals of accuracy, ECE, soft NLL and Brier."""
    h, m = _tensors(preference_logits, margins)
    resampled = _metrics_of(resample_counts(len(h), resamples, seed), _per_pair_parts(h, m, gamma, bins))
    return {name: _quantiles(values) for name, values in resampled.items()}


def paired_differences(
    logits_a: Sequence[float] | torch.Tensor,
    logits_b: Sequence[float] | torch.Tensor,
    margins: Sequence[float] | torch.Tensor,
    gamma: float,
    bins: int = 10,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
) -> dict[str, Difference]:
    """metric(b) - metric(a) for two models scored on the same pairs (same order, same margins)."""
    h_a, m = _tensors(logits_a, margins)
    h_b, _ = _tensors(logits_b, margins)
    if h_a.shape != h_b.shape:
        raise ValueError("the two runs were scored on different numbers of pairs")
    counts = resample_counts(len(m), resamples, seed)
    whole = torch.ones(1, len(m), dtype=torch.float64)
    parts_a, parts_b = _per_pair_parts(h_a, m, gamma, bins), _per_pair_parts(h_b, m, gamma, bins)
    resampled_a, resampled_b = _metrics_of(counts, parts_a), _metrics_of(counts, parts_b)
    point_a, point_b = _metrics_of(whole, parts_a), _metrics_of(whole, parts_b)
    differences = {}
    for name in METRICS:
        d = resampled_b[name] - resampled_a[name]
        d = d[torch.isfinite(d)]
        p_value = min(1.0, 2 * min((d <= 0).double().mean().item(), (d >= 0).double().mean().item()))
        differences[name] = Difference((point_b[name] - point_a[name]).item(), _quantiles(d), p_value)
    return differences


def rewardbench_intervals(
    correct_by_subset: dict[str, torch.Tensor],
    correct_by_prior_set: dict[str, torch.Tensor],
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
) -> dict[str, Interval]:
    """95% intervals of the section scores and the overall scores, resampling the pairs of each subset (and each
    Prior Set) within it: a subset's size is fixed by the benchmark, and its weight in a section is its size."""
    generator = torch.Generator().manual_seed(seed)

    def resampled_accuracy(groups: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        out = {}
        for name, correct in groups.items():
            flags = correct.double().flatten()
            draws = torch.randint(0, len(flags), (resamples, len(flags)), generator=generator)
            out[name] = flags[draws].mean(1)
        return out

    subsets, priors = resampled_accuracy(correct_by_subset), resampled_accuracy(correct_by_prior_set)
    values: dict[str, list[float]] = {}
    for r in range(resamples):
        scores = rewardbench_scores(
            {k: v[r].item() for k, v in subsets.items()}, {k: v[r].item() for k, v in priors.items()}
        )
        for key, value in scores.items():
            if isinstance(value, float):
                values.setdefault(key, []).append(value)
    return {key: _quantiles(torch.tensor(v, dtype=torch.float64)) for key, v in values.items()}
