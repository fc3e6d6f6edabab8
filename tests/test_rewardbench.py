"""`mmpo eval --benchmark rewardbench` on a local RewardBench-format file built from real LLMBar and
Anthropic-HH rows: subset accuracies, the official section weighting, both overall scores, and
calibration on the Prior Sets, for a reward model and for a policy (with and without a reference)."""

from __future__ import annotations

import json

import pytest
from helpers import LLMBAR, on_topic_pairs, prior_rows, rewardbench_rows, write_jsonl

from mmpo.cli import main


@pytest.fixture(scope="module")
def benchmark_files(tmp_path_factory, shared_data):
    tmp = tmp_path_factory.mktemp("rb")
    rb = write_jsonl(tmp / "rewardbench.jsonl", rewardbench_rows(shared_data))
    prior = write_jsonl(tmp / "prior.jsonl", prior_rows(shared_data))
    return tmp, rb, prior


def test_reward_model_on_rewardbench_with_prior_sets(benchmark_files, shared_data, capsys, caplog):
    tmp, rb, prior = benchmark_files
    train = write_jsonl(tmp / "train.jsonl", on_topic_pairs(shared_data, 0, 60))
    overrides = [
        "reward_head=frozen_encoder",
        f"data.train_path={train}",
        "max_length=128",
        "max_prompt_length=64",
        "overlong=truncate",
        "train.max_steps=10",
        "train.learning_rate=1e-3",
        "train.report_to=[none]",
        f"train.output_dir={tmp}/rm",
        f"cache_dir={tmp}/cache",
    ]
    assert main(["train", "reward", *overrides]) == 0
    capsys.readouterr()
    # by default evaluation caches in the training run's cache, per text: adding the Prior Sets embeds them alone
    assert main(["eval", "--model", f"{tmp}/rm", "--benchmark", "rewardbench", "--data", rb]) == 0
    capsys.readouterr()
    caplog.set_level("INFO", logger="mmpo")
    caplog.clear()
    out = tmp / "report"
    assert (
        main(
            [
                "eval",
                "--model",
                f"{tmp}/rm",
                "--benchmark",
                "rewardbench",
                "--data",
                rb,
                "--prior-sets",
                prior,
                "--out",
                str(out),
            ]
        )
        == 0
    )
    printed = json.loads(capsys.readouterr().out)
    report = json.loads((out / "report.json").read_text())
    rb_texts = len({t for r in rewardbench_rows(shared_data) for t in (r["prompt"], r["chosen"], r["rejected"])})
    assert f"embeddings: {rb_texts} of " in caplog.text and f"from the cache {tmp}/cache/" in caplog.text
    assert printed["score_4_section_mean"] == pytest.approx(report["score_4_section_mean"])

    # the subset accuracies are those of the model's own preference logits on the same pairs
    from mmpo.config import DataConfig
    from mmpo.evaluation.rewardbench import load_rewardbench
    from mmpo.features.scoring import RewardPairScorer

    pairs = load_rewardbench(rb, DataConfig(), None).pairs
    h = RewardPairScorer(f"{tmp}/rm", 128, 64).preference_logits(pairs)
    for subset in LLMBAR:
        index = [i for i, p in enumerate(pairs) if p.section == subset]
        assert report[f"accuracy/{subset}"] == pytest.approx(float((h[index] > 0).float().mean()))
    counts = {"llmbar-natural": 100, "llmbar-adver-neighbor": 134, "llmbar-adver-GPTOut": 47}
    chat_hard = sum(report[f"accuracy/{s}"] * n for s, n in counts.items()) / sum(counts.values())
    assert report["section/Chat Hard"] == pytest.approx(chat_hard)
    assert report["sections_missing"] == ["Chat", "Safety", "Reasoning"]
    assert report["score_4_section_mean"] == pytest.approx(chat_hard)
    prior_acc = report["prior_sets/accuracy/anthropic_helpful"]
    assert report["score_v1_leaderboard"] == pytest.approx((2 * chat_hard + prior_acc) / 3)
    assert 0.0 <= report["prior_sets/ece"] <= 1.0 and report["prior_sets/pairs"] == 16
    assert (out / "reliability_prior_sets.png").read_bytes()[:4] == b"\x89PNG"
    low, high = report["intervals"]["section/Chat Hard"]  # resampled within each subset
    assert low <= report["section/Chat Hard"] <= high and low < high
    assert report["intervals"]["score_v1_leaderboard"][0] <= report["score_v1_leaderboard"]

    # the same model at another length, compared pair by pair on the RewardBench pairs (accuracy only)
    shorter = tmp / "report_short"
    rb_short = ["eval", "--model", f"{tmp}/rm", "--benchmark", "rewardbench", "--data", rb, "--max-length", "48"]
    assert main([*rb_short, "--max-prompt-length", "24", "--out", str(shorter)]) == 0
    capsys.readouterr()
    assert main(["compare", f"full={out}", f"short={shorter}", "--json"]) == 0
    (difference,) = json.loads(capsys.readouterr().out)["differences"]
    assert (difference["on"], difference["pairs"]) == ("RewardBench", 36)  # the pairs both scored (no Prior Sets)
    assert set(difference) == {"run", "baseline", "on", "pairs", "accuracy"}

    # the frozen encoder honours --max-length (a new embedding key) and refuses more than its positions
    rb_eval = ["eval", "--model", f"{tmp}/rm", "--benchmark", "rewardbench", "--data", rb]
    folders = set((tmp / "cache").glob("embeddings-*"))
    assert main([*rb_eval, "--max-length", "32", "--max-prompt-length", "16"]) == 0
    assert len(set((tmp / "cache").glob("embeddings-*")) - folders) == 1
    capsys.readouterr()
    assert main([*rb_eval, "--max-length", "4096"]) == 2
    assert "reads at most 512 tokens (it was trained at 128)" in capsys.readouterr().err


def test_policy_on_rewardbench_with_and_without_reference(benchmark_files, tiny_llama_dir, capsys, tmp_path, caplog):
    tmp, rb, prior = benchmark_files
    common = ["eval", "--model", str(tiny_llama_dir), "--kind", "policy", "--beta", "0.1", "--benchmark", "rewardbench"]
    common += ["--data", rb, "--max-length", "256", "--max-prompt-length", "128"]
    common += ["--scoring", "mmpo", "--set", "chat_template=never"]
    # the model as its own reference: h = 0 for every pair, so no pair counts as right
    assert main([*common, "--ref-model", str(tiny_llama_dir)]) == 0
    report = json.loads(capsys.readouterr().out)
    assert all(report[f"accuracy/{s}"] == 0.0 for s in LLMBAR)
    assert main([*common, "--reference-free", "--prior-sets", prior]) == 0
    free = json.loads(capsys.readouterr().out)
    assert 0.0 < free["score_4_section_mean"] < 1.0 and "score_v1_leaderboard" in free
    # evaluation caches log-probs like training does: scoring the same model on the same pairs again reuses them
    caplog.set_level("INFO", logger="mmpo")
    caplog.clear()
    assert main([*common, "--reference-free", "--prior-sets", prior, "--cache-dir", str(tmp_path / "c")]) == 0
    assert "reusing cache" not in caplog.text
    assert main([*common, "--reference-free", "--prior-sets", prior, "--cache-dir", str(tmp_path / "c")]) == 0
    assert "reusing cache" in caplog.text


def test_prior_sets_score_and_ece_cover_the_same_sets():
    """The Prior Sets score and the pooled ECE are over anthropic_helpful, anthropic_hhh, shp and summarize only;
    any other set given is reported on its own; each set has its own ECE."""
    import torch

    from mmpo.evaluation.pair_eval import PairScores
    from mmpo.evaluation.rewardbench import prior_sets_report
    from mmpo.metrics.calibration import pairwise_calibration
    from mmpo.metrics.rewardbench import rewardbench_scores
    from mmpo.records import Pair

    sections = ["shp"] * 4 + ["summarize"] * 4 + ["pku_safer"] * 4
    pairs = [Pair("q", "a", "b", 1.0, i, s) for i, s in enumerate(sections)]
    chosen = torch.tensor([2.0, 1.0, -1.0, 3.0, 0.5, -2.0, 1.5, 1.0, -3.0, -3.0, -3.0, -3.0], dtype=torch.float64)
    scores = PairScores(chosen, torch.zeros(12, dtype=torch.float64))
    accuracy, report, pooled = prior_sets_report(scores, pairs, bins=10)
    assert report["prior_sets/other"] == ["pku_safer"] and report["prior_sets/pairs"] == 8
    assert report["prior_sets/ece"] == pooled.ece == pytest.approx(pairwise_calibration(chosen[:8], [1.0] * 8, 10).ece)
    assert report["prior_sets/ece/pku_safer"] == pytest.approx(pairwise_calibration(chosen[8:], [1.0] * 4, 10).ece)
    assert rewardbench_scores({}, accuracy)["section/Prior Sets"] == pytest.approx((0.75 + 0.75) / 2)
