"""Evaluation metrics against hand computation."""

import math

import pytest
import torch

from mmpo.metrics.calibration import (
    calibration_bins,
    pairwise_accuracy,
    preference_report,
    section_weighted_accuracy,
    soft_target_brier,
    soft_target_nll,
)
from mmpo.metrics.plots import plot_reliability


def test_accuracy_ignores_ties():
    assert pairwise_accuracy([1.0, -1.0, 2.0, 5.0], [1.0, 1.0, 0.0, 2.0]) == pytest.approx(2 / 3)
    assert math.isnan(pairwise_accuracy([1.0], [0.0]))


def test_ece_by_hand_unsymmetrised_and_symmetrised():
    p = [0.05, 0.15, 0.95, 0.92]
    y = [0.0, 1.0, 1.0, 0.0]
    # bins: [0,.1): p .05 y 0 -> |0-.05|; [.1,.2): .15 vs 1 -> .85; [.9,1]: mean p .935, acc .5 -> .435
    plain = calibration_bins(p, y, n_bins=10, symmetric=False)
    assert plain.ece == pytest.approx((0.05 + 0.85 + 2 * 0.435) / 4)
    assert plain.counts[0] == 1 and plain.counts[9] == 2
    sym = calibration_bins(p, y, n_bins=10, symmetric=True)
    # with mirrors (1-p, 1-y): bin 0 holds (.05,0) (.05,0) (.08,1) -> |1/3 - .06|; bin 1 (.15,1) -> .85;
    # bin 8 (.85,0) -> .85; bin 9 (.95,1) (.92,0) (.95,1) -> |2/3 - .94|
    assert sym.ece == pytest.approx((3 * abs(1 / 3 - 0.06) + 0.85 + 0.85 + 3 * abs(2 / 3 - 0.94)) / 8)
    assert sum(sym.counts) == 8


def test_symmetrised_ece_does_not_depend_on_pair_order():
    g = torch.Generator().manual_seed(0)
    h = torch.randn(200, generator=g) * 2
    m = torch.rand(200, generator=g) * 3 + 0.1
    flip = torch.rand(200, generator=g) < 0.5
    r1 = preference_report(h, m, gamma=1.0)
    # listing the responses the other way round negates both h and m
    r2 = preference_report(torch.where(flip, -h, h), torch.where(flip, -m, m), gamma=1.0)
    assert r1["ece"] == pytest.approx(r2["ece"], abs=1e-12)
    assert r1["accuracy"] == pytest.approx(r2["accuracy"])


def test_soft_nll_and_brier_by_hand():
    h, m, gamma = [0.5, -1.0], [1.0, 0.0], 2.0
    p = [1 / (1 + math.exp(-2.0)), 0.5]
    s = [1 / (1 + math.exp(-0.5)), 1 / (1 + math.exp(1.0))]
    nll = sum(-(pi * math.log(si) + (1 - pi) * math.log(1 - si)) for pi, si in zip(p, s)) / 2
    brier = sum((si - pi) ** 2 for pi, si in zip(p, s)) / 2
    assert soft_target_nll(h, m, gamma) == pytest.approx(nll)
    assert soft_target_brier(h, m, gamma) == pytest.approx(brier)


def test_section_weighted_accuracy_averages_sections_not_pairs():
    h = [1, 1, 1, 1, 1, 1, 1, 1, -1, -1]
    m = [1] * 10
    sections = ["big"] * 8 + ["small"] * 2  # big: 8/8 correct, small: 0/2
    score, per = section_weighted_accuracy(h, m, sections)
    assert per == {"big": 1.0, "small": 0.0}
    assert score == pytest.approx(0.5)  # a pair-level average would say 0.8
    weighted, _ = section_weighted_accuracy(h, m, sections, weights={"big": 3.0, "small": 1.0})
    assert weighted == pytest.approx(0.75)


def test_reliability_png_is_written(tmp_path):
    bins = calibration_bins([0.2, 0.8, 0.6], [0, 1, 1])
    path = plot_reliability({"model": bins}, tmp_path / "r.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_rewardbench_sections_follow_the_official_example_counts():
    from mmpo.metrics.rewardbench import rewardbench_scores

    subsets = {"llmbar-natural": 1.0, "llmbar-adver-neighbor": 0.5, "math-prm": 0.25, "hep-python": 1.0}
    priors = {"anthropic_helpful": 0.6, "shp": 0.8, "anthropic_harmless": 0.0}  # harmless is not a Prior Set
    got = rewardbench_scores(subsets, priors)
    chat_hard = (100 * 1.0 + 134 * 0.5) / (100 + 134)
    reasoning = (984 * 0.25 + 164 * 1.0) / (984 + 164)  # math-prm weighs 984, as much as the six code subsets
    assert got["section/Chat Hard"] == pytest.approx(chat_hard)
    assert got["section/Reasoning"] == pytest.approx(reasoning)
    assert got["sections_missing"] == ["Chat", "Safety"]
    assert got["score_4_section_mean"] == pytest.approx((chat_hard + reasoning) / 2)
    assert got["section/Prior Sets"] == pytest.approx(0.7)
    assert got["score_v1_leaderboard"] == pytest.approx((2 * chat_hard + 2 * reasoning + 0.7) / 5)


def test_v1_score_is_the_papers_rewardbench_average():
    """The MMPO paper's RewardBench table of policies reports "Avg" with the v1 weights (2, 2, 2, 2, 1): its rows
    (sections in %, as published) give their published averages, and the plain mean would not."""
    from mmpo.metrics.rewardbench import rewardbench_scores

    rows = {  # Chat, Chat Hard, Safety, Reasoning, Prior Sets -> Avg
        "Gemma-DPO 2B": ((95.0, 45.6, 51.9, 49.6, 50.1), 59.4),
        "Gemma-MMPO 7B": ((97.5, 62.9, 71.1, 75.0, 67.7), 75.6),
        "Gemma-DPO 7B": ((96.6, 59.9, 73.7, 69.0, 58.3), 73.0),
    }
    one_subset_each = ("alpacaeval-easy", "mt-bench-hard", "refusals-dangerous", "math-prm")
    for (*sections, prior), average in rows.values():
        scores = rewardbench_scores(
            {s: v / 100 for s, v in zip(one_subset_each, sections)}, {"anthropic_helpful": prior / 100}
        )
        assert round(100 * scores["score_v1_leaderboard"], 1) == average
        assert round(100 * scores["score_5_section_mean"], 1) != average
