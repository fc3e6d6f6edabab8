"""`mmpo margins --plot`: the margin distribution, margin vs response similarity (the MMPO paper's Figure 7) and a
trained policy's implicit margin vs the data's; and `mmpo eval` scoring a reference-free policy as it was trained."""

from __future__ import annotations

import json
import math

import matplotlib.image
import pytest
from helpers import write_jsonl

from mmpo.cli import main
from mmpo.metrics.plots import spearman


def test_spearman_hand_values_with_ties():
    assert spearman([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert spearman([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    # ties get the mean rank: ranks (0, 1.5, 1.5, 3) against (0, 1, 2, 3): r = 0.9486832980505138
    assert spearman([1, 2, 2, 3], [1, 2, 3, 4]) == pytest.approx(0.9486832980505138, rel=1e-12)
    assert math.isnan(spearman([1, 1, 1], [1, 2, 3]))


def _rows() -> list[dict]:
    """Near-identical responses with small margins and unrelated ones with large margins: the similarity panel
    must find the negative relation the paper's Figure 7 shows."""
    rows = []
    for i in range(24):
        base = f"The capital of country number {i} is a large city on a river."
        if i % 2:
            chosen, rejected, margin = base, base.replace("large", "big"), 0.5
        else:
            chosen, rejected, margin = base, f"Bananas are yellow and grow in bunches ({i}).", 6.0
        rows.append(
            {
                "prompt": f"Question {i}?",
                "chosen": chosen,
                "rejected": rejected,
                "score_chosen": 3.0 + margin,
                "score_rejected": 3.0,
            }
        )
    return rows


def test_margins_plot_shows_margin_against_response_similarity(tmp_path, capsys):
    data = write_jsonl(tmp_path / "pairs.jsonl", _rows())
    plot = tmp_path / "diag" / "margins.png"
    assert main(["margins", "--data", data, "--plot", str(plot)]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["plot"] == str(plot) and summary["pairs"] == 24
    assert summary["similarity_spearman"] < -0.8  # alike responses, small margins
    image = matplotlib.image.imread(plot)
    assert image.shape[1] > 2 * image.shape[0]  # two panels side by side


def test_margins_plot_refuses_a_policy_without_a_plot_and_a_non_png(tmp_path, capsys):
    data = write_jsonl(tmp_path / "pairs.jsonl", _rows())
    assert main(["margins", "--data", data, "--policy", str(tmp_path)]) == 2
    assert main(["margins", "--data", data, "--plot", str(tmp_path / "m.pdf")]) == 2
    assert main(["margins", "--data", data, "--plot", str(tmp_path / "m.png"), "--policy", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 3 and "--plot" in err[0] and ".png" in err[1] and "not a trained mmpo run" in err[2]


def test_a_reference_free_policy_is_evaluated_and_plotted_as_it_was_trained(tmp_path, tiny_llama_dir, capsys):
    """A RePO policy (mean log-probs, no reference): `mmpo eval` scores it without a reference on the mean log-prob
    per token, so its held-out accuracy and mean preference logit equal those of training's own evaluation; and
    `margins --plot --policy` correlates the same implicit margins with the data's."""
    from test_training import policy_config

    from mmpo.training.run import train_from_config

    result = train_from_config(policy_config(tmp_path, tiny_llama_dir, "loss.loss_type=repo"))
    evaluation = str(tmp_path / "peval.jsonl")
    assert (
        main(
            [
                "eval",
                "--model",
                str(result.output_dir),
                "--kind",
                "policy",
                "--data",
                evaluation,
                "--out",
                str(tmp_path / "report"),
            ]
        )
        == 0
    )
    capsys.readouterr()
    report = json.loads((tmp_path / "report" / "report.json").read_text())
    assert report["accuracy"] == pytest.approx(result.metrics["eval_accuracy"])
    assert report["mean_preference_logit"] == pytest.approx(result.metrics["eval_mean_preference_logit"], rel=1e-3)
    scored = [json.loads(line) for line in (tmp_path / "report" / "pair_scores.jsonl").read_text().splitlines()]

    plot = tmp_path / "policy_margins.png"
    argv = ["margins", "--data", evaluation, "--plot", str(plot), "--policy", str(result.output_dir)]
    assert main([*argv, "chat_template=never"]) == 0
    summary = json.loads(capsys.readouterr().out)
    margins = [r["margin"] for r in scored]
    h = [r["preference_logit"] for r in scored]
    assert summary["implicit_margin_spearman"] == pytest.approx(round(spearman(h, margins), 4), abs=1e-4)
    assert plot.exists()
