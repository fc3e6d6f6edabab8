"""Bootstrap intervals: each resample's metrics equal the metrics of that resample materialised (calibration.py's
own functions on the drawn pairs), intervals hold the estimate, and paired differences behave as they must."""

from __future__ import annotations

import pytest
import torch

from mmpo.metrics.bootstrap import _metrics_of, _per_pair_parts, metric_intervals, paired_differences, resample_counts
from mmpo.metrics.calibration import pairwise_accuracy, pairwise_calibration, soft_target_brier, soft_target_nll


def sample(n: int = 300, seed: int = 0, skill: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    margins = torch.randint(-4, 5, (n,), generator=generator).double()
    h = skill * margins / 2 + torch.randn(n, generator=generator, dtype=torch.float64)
    return h, margins


def test_each_resample_equals_its_materialised_pairs():
    h, m = sample()
    counts = resample_counts(len(h), 5, seed=3)
    resampled = _metrics_of(counts, _per_pair_parts(h, m, gamma=1.0, bins=10))
    for r in range(5):
        drawn = torch.repeat_interleave(torch.arange(len(h)), counts[r].long())
        hr, mr = h[drawn], m[drawn]
        assert resampled["accuracy"][r].item() == pytest.approx(pairwise_accuracy(hr, mr), abs=1e-12)
        assert resampled["ece"][r].item() == pytest.approx(pairwise_calibration(hr, mr, 10).ece, abs=1e-12)
        assert resampled["nll_soft"][r].item() == pytest.approx(soft_target_nll(hr, mr, 1.0), abs=1e-12)
        assert resampled["brier_soft"][r].item() == pytest.approx(soft_target_brier(hr, mr, 1.0), abs=1e-12)


def test_intervals_hold_the_estimate_and_shrink_with_more_pairs():
    small, large = sample(100), sample(2000)
    for h, m in (small, large):
        intervals = metric_intervals(h, m, gamma=1.0)
        assert intervals["accuracy"].low <= pairwise_accuracy(h, m) <= intervals["accuracy"].high
        assert intervals["ece"].low <= pairwise_calibration(h, m).ece <= intervals["ece"].high
    width = {k: metric_intervals(*s, gamma=1.0)["accuracy"] for k, s in (("small", small), ("large", large))}
    assert width["large"].high - width["large"].low < 0.5 * (width["small"].high - width["small"].low)


def test_paired_differences_are_zero_for_one_model_and_significant_for_a_better_one():
    h, m = sample(400)
    same = paired_differences(h, h, m, gamma=1.0)
    assert all(d.estimate == 0 and d.interval.low == d.interval.high == 0 and d.p_value == 1.0 for d in same.values())
    better = 2 * m + 0.5 * torch.randn(len(m), generator=torch.Generator().manual_seed(9), dtype=torch.float64)
    diff = paired_differences(h, better, m, gamma=1.0)
    assert diff["accuracy"].estimate == pytest.approx(pairwise_accuracy(better, m) - pairwise_accuracy(h, m))
    assert diff["accuracy"].interval.low > 0 and diff["accuracy"].p_value < 0.01
    noisy = h + 0.01 * torch.randn(len(m), generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    assert paired_differences(h, noisy, m, gamma=1.0)["accuracy"].p_value > 0.05


def test_rewardbench_section_intervals_resample_within_each_subset():
    from mmpo.metrics.bootstrap import rewardbench_intervals
    from mmpo.metrics.rewardbench import rewardbench_scores

    generator = torch.Generator().manual_seed(0)
    subsets = {
        name: torch.rand(n, generator=generator) < p
        for name, n, p in (
            ("alpacaeval-easy", 60, 0.9),
            ("mt-bench-hard", 40, 0.6),
            ("refusals-dangerous", 50, 0.7),
        )
    }
    priors = {"shp": torch.rand(80, generator=generator) < 0.55}
    intervals = rewardbench_intervals(subsets, priors, resamples=400)
    point = rewardbench_scores(
        {k: v.double().mean().item() for k, v in subsets.items()},
        {k: v.double().mean().item() for k, v in priors.items()},
    )
    for key in ("section/Chat", "section/Chat Hard", "section/Safety", "section/Prior Sets", "score_v1_leaderboard"):
        assert intervals[key].low <= point[key] <= intervals[key].high, key
        assert intervals[key].high - intervals[key].low > 0
    # a subset where every pair is right has no uncertainty of its own
    certain = rewardbench_intervals({"alpacaeval-easy": torch.ones(30, dtype=torch.bool)}, {}, resamples=100)
    assert certain["section/Chat"].low == certain["section/Chat"].high == 1.0
