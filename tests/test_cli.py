"""The `mmpo` command as a user runs it: train -> eval -> bon, margins, and one-line errors."""

from __future__ import annotations

import json

import pytest
import yaml
from helpers import on_topic_pairs, write_jsonl

from mmpo.cli import main


@pytest.fixture(scope="module")
def trained_reward(tmp_path_factory, shared_data):
    tmp = tmp_path_factory.mktemp("cli")
    config = {
        "kind": "reward",
        "model": "bundled:all-minilm-l6-v2",
        "reward_head": "frozen_encoder",
        "max_length": 96,
        "max_prompt_length": 48,
        "overlong": "truncate",
        "data": {
            "train_path": write_jsonl(tmp / "train.jsonl", on_topic_pairs(shared_data, 0, 160)),
            "eval_path": write_jsonl(tmp / "eval.jsonl", on_topic_pairs(shared_data, 300, 60)),
        },
        "train": {
            "output_dir": str(tmp / "rm"),
            "num_train_epochs": 8,
            "learning_rate": 2e-3,
            "per_device_train_batch_size": 16,
            "report_to": ["tensorboard"],
            "disable_tqdm": True,
        },
    }
    (tmp / "rm.yaml").write_text(yaml.safe_dump(config))
    return tmp


def test_train_writes_model_metrics_and_tensorboard(trained_reward, capsys):
    tmp = trained_reward
    assert main(["train", "reward", "--config", str(tmp / "rm.yaml"), "loss.gamma=2"]) == 0
    printed = capsys.readouterr().out
    metrics = json.loads(printed[printed.rindex("{\n") : printed.rindex("}") + 1])  # our indented summary
    assert metrics["eval_accuracy"] >= 0.85
    assert list((tmp / "rm").rglob("events.out.tfevents*")), "TensorBoard events missing"
    saved = yaml.safe_load((tmp / "rm" / "mmpo_config.yaml").read_text())
    assert saved["loss"]["gamma"] == 2.0

    # `mmpo eval` on the same pairs reproduces the trainer's own evaluation
    assert (
        main(
            [
                "eval",
                "--model",
                str(tmp / "rm"),
                "--data",
                str(tmp / "eval.jsonl"),
                "--gamma",
                "2",
                "--out",
                str(tmp / "report"),
            ]
        )
        == 0
    )
    report = json.loads((tmp / "report" / "report.json").read_text())
    assert report["accuracy"] == pytest.approx(metrics["eval_accuracy"])
    assert report["ece"] == pytest.approx(metrics["eval_ece"], abs=1e-6)
    trained = json.loads((tmp / "rm" / "eval_metrics.json").read_text())
    assert report["intervals"]["accuracy"] == pytest.approx(trained["intervals"]["eval_accuracy"])  # same pairs
    assert report["bootstrap"] == {"resamples": 1000, "level": 0.95}
    scored = [json.loads(line) for line in (tmp / "report" / "pair_scores.jsonl").read_text().splitlines()]
    assert [r["pair"] for r in scored] == [f"#{i}" for i in range(60)]
    assert (tmp / "report" / "reliability.png").stat().st_size > 1000

    # best-of-n: the on-topic answer should be picked among off-topic ones
    rows = []
    source = [json.loads(line) for line in (tmp / "eval.jsonl").open()]
    for i in range(20):
        good = source[i]["chosen"]
        others = [source[(i + 7) % 60]["chosen"], source[(i + 13) % 60]["chosen"]]
        rows.append({"prompt": source[i]["prompt"], "responses": [others[0], good, others[1]], "scores": [1, 9, 1]})
    data = write_jsonl(tmp / "bon.jsonl", rows)
    capsys.readouterr()
    assert (
        main(
            [
                "bon",
                "--reward-model",
                str(tmp / "rm"),
                "--data",
                data,
                "--scores-column",
                "scores",
                "--out",
                str(tmp / "bon_out.jsonl"),
            ]
        )
        == 0
    )
    result = json.loads(capsys.readouterr().out)
    assert result["judge_score_selected"] > result["judge_score_random"] + 3
    assert len((tmp / "bon_out.jsonl").read_text().splitlines()) == 20


def test_margins_command_on_ultrafeedback(shared_data, capsys, tmp_path):
    path = str(shared_data / "ultrafeedback" / "train_clean.jsonl")
    assert (
        main(["margins", "--data", path, "--set", "on_empty=drop", "--gamma", "2", "--out", str(tmp_path / "m.jsonl")])
        == 0
    )
    summary = json.loads(capsys.readouterr().out)
    assert summary["pairs"] == 998 and summary["ties"] == 111
    first = json.loads((tmp_path / "m.jsonl").read_text().splitlines()[0])
    assert first["target"] == pytest.approx(1 / (1 + 2.718281828459045 ** (-2 * first["margin"])), rel=1e-6)


def test_errors_are_one_clear_line(tmp_path, capsys, shared_data):
    assert main(["train", "reward", "train.learning_rte=1", "data.train_path=x.jsonl"]) == 2
    assert "unknown config key 'train.learning_rte'" in capsys.readouterr().err
    assert main(["margins", "--data", str(shared_data / "ultrafeedback" / "train_clean.jsonl")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("mmpo: error: row 478: column 'rejected' is empty") and "Traceback" not in err
    assert main(["train", "reward", "data.train_path=x.jsonl", "loss.gamma=-1"]) == 2
    assert "gamma" in capsys.readouterr().err


def test_demo_prints_side_by_side_table(tmp_path, shared_data, capsys):
    train = write_jsonl(tmp_path / "train.jsonl", on_topic_pairs(shared_data, 0, 120))
    evaluation = write_jsonl(tmp_path / "eval.jsonl", on_topic_pairs(shared_data, 300, 40))
    code = main(
        [
            "demo",
            "--output-dir",
            str(tmp_path / "demo"),
            f"data.train_path={train}",
            f"data.eval_path={evaluation}",
            "max_length=64",
            "max_prompt_length=32",
            f"cache_dir={tmp_path}/cache",
            "train.report_to=[none]",
            "train.disable_tqdm=true",
        ]
    )
    assert code == 0
    out = capsys.readouterr().out
    table = [line for line in out.splitlines() if line.startswith("| MMPO") or line.startswith("| BT")]
    assert len(table) == 2
    assert (tmp_path / "demo" / "reliability_mmpo_vs_bt.png").exists()
    assert (tmp_path / "demo" / "mmpo" / "model.safetensors").exists() and (tmp_path / "demo" / "bt").is_dir()

    # `mmpo compare`: the two runs side by side, one of them merged with an `mmpo eval` report
    assert (
        main(["eval", "--model", str(tmp_path / "demo" / "bt"), "--data", evaluation, "--out", str(tmp_path / "ev")])
        == 0
    )
    capsys.readouterr()
    runs = [str(tmp_path / "demo" / "mmpo"), f"BT={tmp_path / 'demo' / 'bt'},{tmp_path / 'ev' / 'report.json'}"]
    assert main(["compare", *runs, "--out", str(tmp_path / "cmp")]) == 0
    table = capsys.readouterr().out.strip().splitlines()
    assert table[0].startswith("| run | held-out acc. | held-out ECE | held-out NLL | acc. | ECE |")
    metrics = json.loads((tmp_path / "demo" / "mmpo" / "eval_metrics.json").read_text())
    (acc_low, acc_high), (ece_low, ece_high) = (metrics["intervals"][k] for k in ("eval_accuracy", "eval_ece"))
    assert table[2].startswith(
        f"| mmpo | {metrics['eval_accuracy']:.3f} [{acc_low:.3f}, {acc_high:.3f}] "
        f"| {metrics['eval_ece']:.3f} [{ece_low:.3f}, {ece_high:.3f}] |"
    )
    assert table[2].endswith("| — | — | — |") and table[3].startswith("| BT |")
    assert (tmp_path / "cmp" / "compare.md").read_text().strip().splitlines() == table
    assert (tmp_path / "cmp" / "reliability_held_out.png").stat().st_size > 1000


def test_loss_type_is_checked_against_the_model_kind(capsys):
    assert main(["train", "reward", "data.train_path=x.jsonl", "loss.loss_type=dpo"]) == 2
    assert "loss.loss_type = 'dpo' for a reward model" in capsys.readouterr().err


def test_eval_data_options_are_validated(capsys, shared_data):
    path = str(shared_data / "ultrafeedback" / "eval_clean.jsonl")
    assert main(["margins", "--data", path, "--set", "on_tie=sometimes"]) == 2
    assert "data.on_tie = 'sometimes'" in capsys.readouterr().err


def test_eval_flag_choices_are_the_library_names():
    """cli.py spells the choices out (importing the library would load torch before any argument is read)."""
    from mmpo.cli import build_parser
    from mmpo.evaluation.pair_eval import SCORING_MODES
    from mmpo.features.logprobs import LOGP_REDUCTIONS

    eval_parser = build_parser()._subparsers._group_actions[0].choices["eval"]
    choices = {a.dest: set(a.choices) for a in eval_parser._actions if a.choices}
    assert choices["scoring"] == set(SCORING_MODES)
    assert choices["ref_free_type"] == set(LOGP_REDUCTIONS)


def test_the_data_keys_in_help_are_the_data_settings():
    import dataclasses

    from mmpo.cli.arguments import DATA_KEYS
    from mmpo.config.schema import DataConfig

    assert DATA_KEYS == [f.name for f in dataclasses.fields(DataConfig)]


def test_data_settings_are_key_value_for_every_command(shared_data, capsys):
    """`mmpo margins --data F KEY=VALUE` as `mmpo train ... KEY=VALUE`; --set stays as the older spelling."""
    path = str(shared_data / "ultrafeedback" / "eval_clean.jsonl")
    assert main(["margins", "--data", path, "margin_source=constant", "data.constant_margin=2", "--gamma", "1"]) == 0
    plain = json.loads(capsys.readouterr().out)
    assert plain["margin_quantiles_0_25_50_75_100"] == [2.0] * 5
    assert main(["margins", "--data", path, "--set", "margin_source=constant", "constant_margin=2"]) == 0
    assert json.loads(capsys.readouterr().out) == plain
