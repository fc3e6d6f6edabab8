"""Every bad input or setting is one line on stderr and exit status 2, before any heavy work; runs cannot
mix; stdout stays strict JSON. Files are built in the test, one case per kind of mistake."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from helpers import on_topic_pairs, write_jsonl, yes_no_pairs
from safetensors.torch import load_file

from mmpo.cli import main

GOOD_ROW = {"prompt": "q", "chosen": "good", "rejected": "bad", "score_chosen": 8, "score_rejected": 3}


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def one_line_error(capsys, *argv: str) -> str:
    """Run the CLI, demand exit 2 and exactly one stderr line, and return that line's message."""
    code, out, err = run_cli(capsys, *argv)
    lines = err.strip().splitlines()
    assert code == 2, err
    assert len(lines) == 1 and "Traceback" not in err, err
    assert out == ""
    return lines[0].removeprefix("mmpo: error: ").removeprefix("mmpo margins: error: ")


@pytest.fixture()
def good_file(tmp_path) -> str:
    return write_jsonl(tmp_path / "good.jsonl", [GOOD_ROW, {**GOOD_ROW, "prompt": "q2"}])


# --- files -------------------------------------------------------------------------------------------------


def test_non_utf8_bytes_name_the_line(tmp_path, capsys):
    path = tmp_path / "latin1.jsonl"
    path.write_bytes(json.dumps(GOOD_ROW).encode() + b"\n" + '{"prompt": "caf\xe9"}\n'.encode("latin-1"))
    message = one_line_error(capsys, "margins", "--data", str(path))
    assert message == f"{path}: line 2 is not UTF-8 text (byte 0xe9); re-save it as UTF-8"


def test_a_folder_given_as_data_file(tmp_path, capsys):
    message = one_line_error(capsys, "margins", "--data", str(tmp_path))
    assert message == (
        f"{tmp_path} is a folder but not a dataset saved with save_to_disk; give a .jsonl/.json/.parquet/.csv file"
    )


def test_empty_file(tmp_path, capsys):
    (tmp_path / "empty.jsonl").write_text("")
    assert one_line_error(capsys, "margins", "--data", str(tmp_path / "empty.jsonl")) == (
        f"{tmp_path / 'empty.jsonl'}: the file is empty"
    )


def test_truncated_last_line_names_its_line(tmp_path, capsys):
    path = tmp_path / "cut.jsonl"
    path.write_text(json.dumps(GOOD_ROW) + "\n" + json.dumps(GOOD_ROW) + "\n" + json.dumps(GOOD_ROW)[:20] + "\n")
    message = one_line_error(capsys, "margins", "--data", str(path))
    assert message.startswith(f"{path}: line 3 is not valid JSON (Unterminated string")


def test_broken_line_mid_file_names_its_line(tmp_path, capsys):
    path = tmp_path / "mid.jsonl"
    path.write_text(json.dumps(GOOD_ROW) + "\n{prompt: q}\n" + json.dumps(GOOD_ROW) + "\n")
    message = one_line_error(capsys, "margins", "--data", str(path))
    assert message.startswith(f"{path}: line 2 is not valid JSON (Expecting property name")


def test_json_array_error_names_line_and_column(tmp_path, capsys):
    path = tmp_path / "array.json"
    path.write_text('[\n  {"prompt": "q", "chosen": "a"},\n  {"prompt": "q" "chosen": "b"}\n]\n')
    message = one_line_error(capsys, "margins", "--data", str(path))
    assert message == f"{path}: line 3 column 18: not valid JSON (Expecting ',' delimiter)"


def test_missing_file(tmp_path, capsys):
    assert one_line_error(capsys, "margins", "--data", str(tmp_path / "nope.jsonl")) == (
        f"data file {str(tmp_path / 'nope.jsonl')!r} does not exist"
    )


# --- settings that used to fail late --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "override,message",
    [
        ("loss.beta=0", "loss.beta must be a finite number > 0 (got 0.0)"),
        ("loss.label_smoothing=0.7", "loss.label_smoothing must be in [0, 0.5) (got 0.7)"),
        ("train.per_device_train_batch_size=0", "train.per_device_train_batch_size must be > 0 (got 0)"),
        ("train.extra.bogus_arg=1", "train.extra.bogus_arg is not a transformers.TrainingArguments field"),
        (
            "train.extra.learning_rate=1",
            "train.extra.learning_rate is set by mmpo; use the train.learning_rate setting",
        ),
        (
            "train.extra.activation_checkpointing=true",
            "train.extra.activation_checkpointing is set by mmpo; use the train.gradient_checkpointing setting",
        ),
        ("train.checkpoint_saves=matmuls", "train.checkpoint_saves = matmuls chooses what checkpointing keeps; it"),
        ("data.margin_scale=-1", "data.margin_scale must be > 0 (got -1)"),
        ("train.num_train_epochs=-1", "train.num_train_epochs must be > 0 (got -1)"),
        ("train.max_steps=0", "train.max_steps must be > 0, or -1 to train by epochs (got 0)"),
        ("train.report_to=[wandb]", "train.report_to includes 'wandb' but it is not installed: pip install wandb"),
        ("train.report_to=[tensorbord]", "train.report_to: unknown backend(s) ['tensorbord']; choose from"),
        (
            "train.resume_from_checkpoint=/no/such/checkpoint",
            "train.resume_from_checkpoint: '/no/such/checkpoint' does not exist",
        ),
        ("data.eval_path=/no/such.jsonl", "data.eval_path: '/no/such.jsonl' does not exist"),
        ("train.log_completions=2", "train.log_completions answers eval prompts; set data.eval_path"),
        ("train.log_completions=-1", "train.log_completions must be >= 0 (got -1)"),
        ("train.push_to_hub=true", "train.push_to_hub needs train.hub_model_id as org/name (got '')"),
        ("attn_implementation=flash", "attn_implementation = 'flash'; choose one of"),
        (
            "attn_implementation=flash_attention_2",
            "attn_implementation flash_attention_2 needs the flash_attn package; it is not installed",
        ),
    ],
)
def test_bad_settings_fail_before_loading(override, message, good_file, tmp_path, capsys):
    if override.startswith("train.report_to=[wandb]"):
        pytest.importorskip("nonexistent_module_to_skip") if _installed("wandb") else None
    if override.endswith("flash_attention_2") and _installed("flash_attn"):
        pytest.skip("flash-attn is installed here")
    start = time.perf_counter()
    got = one_line_error(
        capsys, "train", "policy", f"data.train_path={good_file}", f"train.output_dir={tmp_path}/out", override
    )
    assert got.startswith(message), got
    assert time.perf_counter() - start < 2.0  # nothing heavy was loaded
    assert not (tmp_path / "out").exists()


def _installed(name: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(name) is not None


def test_bogus_scheduler_lists_the_real_ones(good_file, capsys):
    got = one_line_error(capsys, "train", "reward", f"data.train_path={good_file}", "train.lr_scheduler_type=bogus")
    assert got.startswith("train.lr_scheduler_type = 'bogus'; choose one of [") and "'cosine'" in got


def test_broken_yaml_names_the_line(tmp_path, capsys):
    path = tmp_path / "bad.yaml"
    path.write_text("kind: reward\ndata:\n  train_path: [unclosed\n  eval_path: x\n")
    got = one_line_error(capsys, "train", "reward", "--config", str(path))
    assert got.startswith(f"{path}: line ") and "is not valid YAML" in got


@pytest.mark.parametrize(
    "argv,message",
    [
        (["margins", "--gamma", "0"], "argument --gamma: must be > 0 or inf (got 0) (see mmpo margins --help)"),
        (
            ["eval", "--model", "m", "--gamma", "0"],
            "argument --gamma: must be > 0 or inf (got 0) (see mmpo eval --help)",
        ),
        (["eval", "--model", "m", "--bins", "0"], "argument --bins: must be > 0 (got 0) (see mmpo eval --help)"),
    ],
)
def test_bad_flags_are_one_line(argv, message, good_file, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([*argv, "--data", good_file])
    err = capsys.readouterr().err.strip().splitlines()
    assert exit_info.value.code == 2 and len(err) == 1
    assert err[0].split(": error: ", 1)[1] == message


@pytest.mark.parametrize(
    "argv,message",
    [
        (["margins", "annotate", "--judge", "openai:x", "--limit", "-1"], "argument --limit: must be >= 0 (got -1)"),
        (
            ["margins", "annotate", "--judge", "openai:x", "--retries", "-2"],
            "argument --retries: must be >= 0 (got -2)",
        ),
        (["serve", "--port", "0"], "argument --port: a port is 1..65535 (got 0)"),
        (["serve", "--port", "70000"], "argument --port: a port is 1..65535 (got 70000)"),
        (["serve", "--request-time-limit", "0"], "argument --request-time-limit: must be > 0 (got 0)"),
        (["serve", "--max-body-bytes", "-5"], "argument --max-body-bytes: must be > 0 (got -5)"),
    ],
)
def test_counts_and_ports_out_of_range_are_one_line(argv, message, tmp_path, capsys):
    needs = {"margins": ["--data", "d.jsonl", "--out", str(tmp_path / "o.jsonl")], "serve": ["--model", "m"]}
    with pytest.raises(SystemExit) as exit_info:
        main([*argv, *needs[argv[0]]])
    err = capsys.readouterr().err.strip().splitlines()
    assert exit_info.value.code == 2 and len(err) == 1
    assert err[0].split(": error: ", 1)[1].rsplit(" (see ", 1)[0] == message


def _fake_model_folder(path: Path, architecture: str) -> Path:
    """Only config.json: the kind check reads it before any weights would be loaded."""
    path.mkdir()
    (path / "config.json").write_text(json.dumps({"architectures": [architecture], "model_type": "bert"}))
    return path


def test_eval_kind_mismatch_and_non_model_folder(tmp_path, good_file, capsys):
    reward = _fake_model_folder(tmp_path / "rm", "BertForSequenceClassification")
    assert one_line_error(capsys, "eval", "--model", str(reward), "--kind", "policy", "--data", good_file) == (
        f"--model {reward} is a reward model, not a policy model; use --kind reward"
    )
    policy = _fake_model_folder(tmp_path / "lm", "LlamaForCausalLM")
    assert one_line_error(capsys, "eval", "--model", str(policy), "--data", good_file) == (
        f"--model {policy} is a causal LM (a policy), not a reward model; use --kind policy"
    )
    (tmp_path / "notamodel").mkdir()
    assert one_line_error(capsys, "eval", "--model", str(tmp_path / "notamodel"), "--data", good_file) == (
        f"{tmp_path / 'notamodel'} is not a model folder (no config.json, adapter_config.json or reward_head.json)"
    )


# --- silent wrong results that are now errors -----------------------------------------------------------------


@pytest.mark.parametrize(
    "row,message",
    [
        (
            {"prompt": "p", "responses": ["a", "b", "c"], "scores": [1, 2]},
            "row 0: column 'scores' has 2 scores for 3 candidates",
        ),
        (
            {"prompt": "p", "responses": ["a", "b"], "scores": [1, 2, 3]},
            "row 0: column 'scores' has 3 scores for 2 candidates",
        ),
        (
            {"prompt": "p", "responses": ["a", "b"], "scores": [1, "x"]},
            "row 0: column 'scores' holds 'x', not a number",
        ),
        ({"prompt": "p", "responses": ["a", "b"]}, "row 0: column 'scores' is missing or not a list of scores"),
        ({"question": "p", "responses": ["a", "b"], "scores": [1, 2]}, "row 0: column 'prompt' is missing or not text"),
    ],
)
def test_bon_checks_its_rows_before_loading_the_model(row, message, tmp_path, capsys):
    reward = _fake_model_folder(tmp_path / "rm", "BertForSequenceClassification")
    data = write_jsonl(tmp_path / "bon.jsonl", [row])
    got = one_line_error(capsys, "bon", "--reward-model", str(reward), "--data", data, "--scores-column", "scores")
    assert got.startswith(message), got


def test_unknown_chat_role_is_refused(tmp_path, capsys):
    row = {
        "prompt": [{"role": "usr", "content": "hi"}],
        "chosen": [{"role": "assistant", "content": "hello"}],
        "rejected": [{"role": "assistant", "content": "go"}],
        "score_chosen": 2,
        "score_rejected": 1,
    }
    got = one_line_error(capsys, "margins", "--data", write_jsonl(tmp_path / "chat.jsonl", [row]))
    assert got == "row 0: prompt message 0 has role 'usr'; expected one of ('system', 'user', 'assistant', 'tool')"


def test_frozen_encoder_honours_overlong_error(tmp_path, capsys, shared_data):
    rows = [{**GOOD_ROW, "prompt": f"question {i}"} for i in range(4)]
    rows[1]["chosen"] = "word " * 400
    train = write_jsonl(tmp_path / "t.jsonl", rows)
    got = one_line_error(
        capsys,
        "train",
        "reward",
        f"data.train_path={train}",
        "reward_head=frozen_encoder",
        "max_length=128",
        "max_prompt_length=64",
        "overlong=error",
        f"train.output_dir={tmp_path}/rm",
    )
    assert got.startswith("row 1: chosen is 40") and got.endswith(
        "tokens, over max_length 128; raise max_length or set overlong to 'truncate' or 'drop'"
    )


def test_label_swaps_are_counted_in_the_log(shared_data, caplog):
    from mmpo.config import DataConfig
    from mmpo.data import build_pairs, load_records

    path = shared_data / "llmbar" / "Natural" / "dataset.json"
    labels = [str(r["label"]) for r in json.loads(path.read_text())]
    cfg = DataConfig(
        prompt_column="input",
        chosen_column="output_1",
        rejected_column="output_2",
        label_column="label",
        margin_source="constant",
    )
    caplog.set_level("INFO", logger="mmpo")
    _, stats = build_pairs(load_records(str(path)), cfg)
    stats.log("llmbar")
    assert stats.swapped_by_label == labels.count("2") > 0
    assert f"{labels.count('2')} swapped by their label" in caplog.text


def test_error_hints_use_the_real_set_syntax(shared_data, capsys):
    path = str(shared_data / "ultrafeedback" / "train_clean.jsonl")
    got = one_line_error(capsys, "margins", "--data", path)
    assert got == "row 478: column 'rejected' is empty; fix the row or add data.on_empty=drop"
    code, out, _ = run_cli(capsys, "margins", "--data", path, "data.on_empty=drop")  # as the hint says
    assert code == 0 and json.loads(out)["pairs"] == 998
    code, out, _ = run_cli(capsys, "margins", "--data", path, "--set", "on_empty=drop")  # the older spelling
    assert code == 0 and json.loads(out)["pairs"] == 998


# --- output -------------------------------------------------------------------------------------------------


def _strict_json(text: str):
    def refuse(constant):
        raise ValueError(f"non-standard JSON constant {constant}")

    return json.loads(text, parse_constant=refuse)


def test_stdout_is_strict_json(shared_data, capsys):
    code, out, _ = run_cli(
        capsys, "margins", "--data", str(shared_data / "ultrafeedback" / "eval_clean.jsonl"), "--gamma", "inf"
    )
    assert code == 0 and _strict_json(out)["gamma"] == "inf"


def test_train_stdout_is_only_the_json_summary(tmp_path, shared_data):
    train = write_jsonl(tmp_path / "t.jsonl", on_topic_pairs(shared_data, 0, 40))
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "mmpo.cli",
            "train",
            "reward",
            f"data.train_path={train}",
            f"data.eval_path={train}",
            "reward_head=frozen_encoder",
            "max_length=64",
            "max_prompt_length=32",
            "overlong=truncate",
            "train.max_steps=6",
            "train.logging_steps=1",
            "train.report_to=[none]",
            f"train.output_dir={tmp_path}/rm",
            f"cache_dir={tmp_path}/cache",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    summary = _strict_json(done.stdout)  # the whole of stdout is one JSON document
    assert summary["output_dir"] == f"{tmp_path}/rm" and "eval_accuracy" in summary
    assert "step 6/6 (100%)" in done.stderr  # progress went to stderr, at a low rate (not a TTY)
    assert "\r" not in done.stderr


def test_loading_local_data_sends_nothing_over_the_network(shared_data, capsys, monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("HF_DATASETS_OFFLINE", raising=False)
    attempts = []

    def refuse(*args, **kwargs):
        attempts.append(args)
        raise OSError("network access during a local run")

    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)
    code, out, err = run_cli(capsys, "margins", "--data", str(shared_data / "ultrafeedback" / "eval_clean.jsonl"))
    assert code == 0, err
    assert attempts == []


# --- runs that cannot mix -------------------------------------------------------------------------------------


def policy_argv(tmp_path: Path, model_dir: Path, out: str, *extra: str) -> list[str]:
    train = write_jsonl(tmp_path / "ptrain.jsonl", yes_no_pairs(48))
    return [
        "train",
        "policy",
        f"model={model_dir}",
        "max_length=64",
        "max_prompt_length=32",
        f"data.train_path={train}",
        "data.chat_template=never",
        "loss.beta=0.5",
        "train.learning_rate=3e-3",
        "train.per_device_train_batch_size=4",
        "train.warmup_ratio=0",
        "train.report_to=[none]",
        "train.save_total_limit=50",
        f"train.output_dir={out}",
        f"cache_dir={tmp_path}/refcache",
        *extra,
    ]


def test_foreign_checkpoint_is_refused_on_resume(tmp_path, tiny_llama_dir, capsys):
    first = policy_argv(tmp_path, tiny_llama_dir, f"{tmp_path}/a", "train.max_steps=2", "train.save_steps=2")
    code, _, err = run_cli(capsys, *first)
    assert code == 0, err
    other = policy_argv(
        tmp_path,
        tiny_llama_dir,
        f"{tmp_path}/b",
        "loss.gamma=3",
        "train.max_steps=4",
        f"train.resume_from_checkpoint={tmp_path}/a/checkpoint-2",
    )
    got = one_line_error(capsys, *other)
    assert got.startswith(f"{tmp_path}/a/checkpoint-2 holds a run with different loss; resuming it would mix")


def test_kill_9_then_resume_matches_an_uninterrupted_run_and_the_folder_is_locked(tmp_path, tiny_llama_dir, capsys):
    """A real SIGKILL mid-run: while it runs, a second run on the same folder is refused; after the kill the
    lock is gone with the process, and the same command resumes to the weights of an uninterrupted run."""
    steps = ["train.max_steps=150", "train.save_steps=5", "train.logging_steps=5"]
    code, _, err = run_cli(capsys, *policy_argv(tmp_path, tiny_llama_dir, f"{tmp_path}/straight", *steps))
    assert code == 0, err

    argv = policy_argv(tmp_path, tiny_llama_dir, f"{tmp_path}/killed", *steps)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        [sys.executable, "-m", "mmpo.cli", *argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env
    )
    checkpoint = tmp_path / "killed" / "checkpoint-10"
    deadline = time.time() + 240
    while not (checkpoint / "trainer_state.json").exists():
        assert process.poll() is None, process.stderr.read().decode()[-2000:]
        assert time.time() < deadline, "the run never reached checkpoint-10"
        time.sleep(0.02)
    got = one_line_error(capsys, *argv)  # same folder while the first run holds it
    assert got.startswith(f"{tmp_path}/killed is in use by a running mmpo run (pid {process.pid})")
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL
    assert not (tmp_path / "killed" / "checkpoint-150").exists(), "the kill came too late to test anything"

    code, out, err = run_cli(capsys, *argv)  # the same command again resumes
    assert code == 0, err
    a = load_file(str(tmp_path / "straight" / "model.safetensors"))
    b = load_file(str(tmp_path / "killed" / "model.safetensors"))
    for name in a:
        torch.testing.assert_close(a[name], b[name], rtol=0, atol=1e-6, msg=name)


# --- RewardBench scoring -----------------------------------------------------------------------------------


def rb_file(tmp_path) -> str:
    return write_jsonl(tmp_path / "rb.jsonl", [{"prompt": "q", "chosen": "a", "rejected": "b", "subset": "hep-go"}])


def test_rewardbench_scoring_refuses_plain_text_rendering(tmp_path, tiny_llama_dir, capsys):
    argv = ["eval", "--model", str(tiny_llama_dir), "--kind", "policy", "--beta", "1", "--reference-free"]
    message = one_line_error(
        capsys, *argv, "--benchmark", "rewardbench", "--data", rb_file(tmp_path), "--set", "chat_template=never"
    )
    assert message == (
        "data.chat_template=never: reward-bench scoring always renders with the chat template; use --scoring mmpo"
    )


def test_rewardbench_scoring_refuses_a_tokenizer_without_chat_template(tmp_path, tiny_llama_dir, capsys):
    config = json.loads((tiny_llama_dir / "tokenizer_config.json").read_text())
    config.pop("chat_template", None)
    (tiny_llama_dir / "tokenizer_config.json").write_text(json.dumps(config))
    for name in ("chat_template.jinja", "chat_template.json"):
        (tiny_llama_dir / name).unlink(missing_ok=True)
    argv = ["eval", "--model", str(tiny_llama_dir), "--kind", "policy", "--beta", "1", "--reference-free"]
    message = one_line_error(capsys, *argv, "--benchmark", "rewardbench", "--data", rb_file(tmp_path))
    assert "has none (reward-bench would use a FastChat template); use --scoring mmpo" in message


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (["--ref-free-type", "avg"], "--ref-free-type needs --reference-free"),
        (["--max-length", "128"], "--max-prompt-length (128) must be below --max-length (128)"),
    ],
)
def test_rewardbench_length_and_reduction_flags(tmp_path, capsys, extra, expected):
    argv = ["eval", "--model", str(tmp_path), "--kind", "policy", "--benchmark", "rewardbench"]
    assert one_line_error(capsys, *argv, "--data", rb_file(tmp_path), *extra) == expected


# --- runs and files that must not be silently replaced or trusted ---------------------------------------------------


def test_starting_fresh_over_an_earlier_runs_checkpoints_is_refused(good_file, tmp_path, capsys):
    """With resume_from_checkpoint=none the old checkpoints would stay the newest, and a later plain re-run of the same
    command would resume from them and overwrite the fresh model: the folder is refused before anything loads."""
    old = tmp_path / "out" / "checkpoint-40"
    old.mkdir(parents=True)
    (old / "trainer_state.json").write_text("{}")
    got = one_line_error(
        capsys,
        "train",
        "policy",
        f"data.train_path={good_file}",
        f"train.output_dir={tmp_path}/out",
        "train.resume_from_checkpoint=none",
    )
    assert got == (
        f"train.resume_from_checkpoint=none, but {tmp_path}/out holds checkpoints of an earlier run (checkpoint-40); "
        "choose a new train.output_dir, or remove them to start over there"
    )


def test_an_unreadable_cache_file_is_named_removed_and_computed_again(tmp_path, tiny_llama_dir, caplog):
    """A reference log-prob cache cut short and an embedding shard of garbage: each is named in a warning, removed,
    and computed again; the numbers equal a run that had no cache at all."""
    from safetensors.torch import save_file

    from mmpo.features.reference import cached_logp_stats
    from mmpo.features.tokenize import LengthPolicy, tokenize_policy_pairs
    from mmpo.models import BUNDLED_ENCODER, load_causal_lm, load_tokenizer
    from mmpo.models.embeddings import SentenceEmbedder
    from mmpo.records import Pair

    tokenizer = load_tokenizer(str(tiny_llama_dir))
    model = load_causal_lm(str(tiny_llama_dir))
    pairs = [Pair(f"Is {i} even?", " yes", " no, it is odd", 1.0, i) for i in range(6)]
    features = tokenize_policy_pairs(pairs, tokenizer, LengthPolicy(64, 32))
    fresh = cached_logp_stats(model, features, tokenizer.pad_token_id, tmp_path / "a")
    (cache_file,) = (tmp_path / "a").glob("logp_stats-*.safetensors")
    cache_file.write_bytes(cache_file.read_bytes()[:100])  # cut short, as a full disk or a killed copy leaves it
    with caplog.at_level("WARNING", logger="mmpo"):
        again = cached_logp_stats(model, features, tokenizer.pad_token_id, tmp_path / "a")
    assert again[2] is False  # not a hit: computed again
    assert f"cache file {cache_file} is unreadable" in caplog.text
    torch.testing.assert_close(again[0].total, fresh[0].total)
    assert cached_logp_stats(model, features, tokenizer.pad_token_id, tmp_path / "a")[2] is True  # rewritten

    embedder = SentenceEmbedder(BUNDLED_ENCODER, max_length=32)
    texts = ["one text", "another text"]
    expected = embedder.cached_embed(texts, tmp_path / "emb")
    (shard,) = (tmp_path / "emb").glob("embeddings-*/*.safetensors")
    save_file({"something": torch.zeros(2)}, str(shard))  # readable, but not an embedding shard
    caplog.clear()
    with caplog.at_level("WARNING", logger="mmpo"):
        got = embedder.cached_embed(texts, tmp_path / "emb")
    assert f"cache file {shard} is unreadable (no digests, embeddings in it)" in caplog.text
    torch.testing.assert_close(got, expected)


def test_an_unreadable_feature_table_is_built_again(tmp_path, smollm2_tokenizer, caplog):
    from mmpo.features.feature_table import build_feature_table, features_key
    from mmpo.features.tokenize import LengthPolicy, tokenize_policy_pairs
    from mmpo.records import Pair

    pairs = [Pair(f"Is {i} even?", " yes", " no", 1.0, i) for i in range(5)]
    length = LengthPolicy(64, 32)
    key = features_key(pairs, smollm2_tokenizer, "policy", length)

    def featurize(batch):
        return tokenize_policy_pairs(batch, smollm2_tokenizer, length, report=False)

    first = build_feature_table(pairs, featurize, key, tmp_path).to_list()
    (arrow,) = (tmp_path / f"features-{key}").glob("*.arrow")
    arrow.write_bytes(arrow.read_bytes()[:64])
    with caplog.at_level("WARNING", logger="mmpo"):
        again = build_feature_table(pairs, featurize, key, tmp_path)
    assert "is unreadable" in caplog.text and f"features-{key}" in caplog.text
    assert again.to_list() == first


def test_a_key_given_twice_in_a_config_names_both_lines(tmp_path, capsys):
    path = tmp_path / "twice.yaml"
    path.write_text("kind: policy\ntrain:\n  learning_rate: 1.0e-5\n  seed: 3\n  learning_rate: 1.0e-3\n")
    got = one_line_error(capsys, "train", "policy", "--config", str(path))
    assert got == f"{path}: line 5 column 3 is not valid YAML (duplicate key 'learning_rate' (first at line 3))"


def test_an_alias_bomb_is_refused_at_once_and_its_value_is_never_printed(tmp_path, capsys):
    """Nine levels of ten aliases each would be 10^9 strings: refused at the first alias, in well under a second."""
    lines = ['a0: &a0 "xxxxxxxxxx"'] + [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 10)]
    path = tmp_path / "bomb.yaml"
    path.write_text("\n".join([*lines, "model: *a9"]) + "\n")
    start = time.perf_counter()
    got = one_line_error(capsys, "train", "reward", "--config", str(path))
    assert time.perf_counter() - start < 2.0
    assert got == f"{path}: line 2 column 10 is not valid YAML (aliases (*a0) are not allowed in mmpo configs)"
    assert len(got) < 300


def test_an_enormous_bad_value_is_shown_cut_short(good_file, tmp_path, capsys):
    got = one_line_error(
        capsys,
        "train",
        "reward",
        f"data.train_path={good_file}",
        f"train.output_dir={tmp_path}/o",
        "overlong=" + "x" * 10**6,
    )
    assert got.startswith("overlong = 'xxxx") and got.endswith("; choose one of ('error', 'truncate', 'drop')")
    assert "(1,000,002 characters)" in got and len(got) < 400


def test_a_model_that_needs_its_own_code_is_refused_without_running_it(tmp_path, tiny_llama_dir, good_file, capsys):
    """config.json's auto_map names Python files shipped with the model; with remote code off (the default) mmpo
    names them and stops in one line: no `[y/N]` question, and the file never runs."""
    config_path = tiny_llama_dir / "config.json"
    config = json.loads(config_path.read_text())
    config.update(
        model_type="someone_elses_llama",
        architectures=["TheirForCausalLM"],
        auto_map={"AutoConfig": "their_code.TheirConfig", "AutoModelForCausalLM": "their_code.TheirForCausalLM"},
    )
    config_path.write_text(json.dumps(config))
    marker = tmp_path / "ran"
    (tiny_llama_dir / "their_code.py").write_text(f"open({str(marker)!r}, 'w').write('the model code ran')\n")
    expected = (
        f"{tiny_llama_dir} needs code of its own to load (config.json auto_map: their_code.TheirConfig, "
        "their_code.TheirForCausalLM); mmpo runs no model code unless trust_remote_code: true is set, which only a "
        "model you trust should get"
    )
    train = [
        "train",
        "policy",
        f"model={tiny_llama_dir}",
        f"data.train_path={good_file}",
        f"train.output_dir={tmp_path}/o",
    ]
    assert one_line_error(capsys, *train) == expected
    evaluation = [
        "eval",
        "--model",
        str(tiny_llama_dir),
        "--kind",
        "policy",
        "--data",
        good_file,
        "--out",
        str(tmp_path),
    ]
    assert one_line_error(capsys, *evaluation) == f"{expected}"
    assert not marker.exists()


def test_max_length_beyond_the_models_positions_is_refused_before_loading(tmp_path, tiny_llama_dir, good_file, capsys):
    config = json.loads((tiny_llama_dir / "config.json").read_text())
    config["max_position_embeddings"] = 128
    (tiny_llama_dir / "config.json").write_text(json.dumps(config))
    got = one_line_error(
        capsys,
        "train",
        "policy",
        f"model={tiny_llama_dir}",
        f"data.train_path={good_file}",
        f"train.output_dir={tmp_path}/o",
        "max_length=512",
    )
    assert got == f"max_length 512 is beyond the 128 positions {tiny_llama_dir} was built for; set max_length <= 128"


def test_scores_whose_difference_overflows_name_their_row(tmp_path, capsys):
    rows = [GOOD_ROW, {**GOOD_ROW, "score_chosen": 1e308, "score_rejected": -1e308}]
    data = write_jsonl(tmp_path / "huge.jsonl", rows)
    got = one_line_error(capsys, "margins", "--data", data)
    assert got == (
        "row 1: the margin is inf, beyond what training holds (|m| <= 3.4e+38); rescale the scores or set "
        "data.margin_scale"
    )


def test_a_null_score_in_the_first_row_names_the_row_and_column(tmp_path, capsys):
    data = write_jsonl(tmp_path / "null.jsonl", [{**GOOD_ROW, "score_rejected": None}, GOOD_ROW])
    got = one_line_error(capsys, "margins", "--data", data)
    assert got == "row 0: score column 'score_rejected' is missing or null"


def test_identical_responses_with_a_margin_are_named(tmp_path, capsys, caplog):
    rows = [GOOD_ROW, {**GOOD_ROW, "prompt": "q2", "chosen": "same", "rejected": "same"}]
    data = write_jsonl(tmp_path / "same.jsonl", rows)
    with caplog.at_level("WARNING", logger="mmpo"):
        assert main(["margins", "--data", data]) == 0
    assert json.loads(capsys.readouterr().out)["pairs"] == 2  # kept, as the data says
    assert "1 rows have the same chosen and rejected text but a non-zero margin (first: [1])" in caplog.text


def test_compare_refuses_two_runs_of_one_name(tmp_path, capsys):
    for parent in ("a", "b"):
        run = tmp_path / parent / "mmpo"
        run.mkdir(parents=True)
        (run / "eval_metrics.json").write_text(json.dumps({"eval_accuracy": 0.5}))
    first, second = str(tmp_path / "a" / "mmpo"), str(tmp_path / "b" / "mmpo")
    got = one_line_error(capsys, "compare", first, second)
    assert got == f"two runs are named 'mmpo' ({first} and {second}); name them apart with NAME=PATH"
    assert main(["compare", f"a={first}", f"b={second}"]) == 0


def test_a_ragged_csv_names_the_line_and_the_cause(tmp_path, capsys):
    path = tmp_path / "ragged.csv"
    path.write_text("prompt,chosen,rejected,score_chosen,score_rejected\nq,a,b,8,3\nq2,a, b,8,3\nq3,a,b,c,8,3\n")
    assert one_line_error(capsys, "margins", "--data", str(path)) == (
        f"{path}: cannot be read as CSV (line 4 has 6 fields where the header has 5; quote values that contain commas)"
    )


def test_a_nan_string_score_is_named_as_a_string(tmp_path, capsys):
    """A column of text is read as text; in a column of numbers datasets would have read the word as null."""
    first = write_jsonl(tmp_path / "first.jsonl", [{**GOOD_ROW, "score_rejected": s} for s in ("NaN", "2")])
    assert one_line_error(capsys, "margins", "--data", first) == (
        "row 0: score column 'score_rejected' holds the string 'NaN' (NaN/inf scores are not allowed)"
    )
    later = write_jsonl(tmp_path / "later.jsonl", [GOOD_ROW, {**GOOD_ROW, "score_rejected": "Infinity"}])
    assert one_line_error(capsys, "margins", "--data", later) == (
        f"{later}: row 1: column 'score_rejected' holds the string 'Infinity' where row 0 holds a number; "
        "NaN/inf scores are not allowed (fix or drop the row)"
    )


def test_a_response_holding_a_user_turn_is_refused(tmp_path, capsys):
    prompt = [{"role": "user", "content": "q"}]
    ok = {**GOOD_ROW, "prompt": prompt, "chosen": [*prompt, {"role": "assistant", "content": "a"}]}
    bad = {**ok, "rejected": [{"role": "assistant", "content": "b"}, {"role": "user", "content": "and?"}]}
    path = write_jsonl(tmp_path / "roles.jsonl", [ok, bad])
    assert one_line_error(capsys, "margins", "--data", path) == (
        "row 1: column 'rejected': message 1 has role 'user'; a response holds the assistant's turn only "
        "(put earlier turns in the prompt column)"
    )


def test_damaged_weights_in_a_model_folder_are_named(tmp_path, tiny_llama_dir, good_file, capsys):
    weights = tiny_llama_dir / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])  # a copy cut short
    argv = ["eval", "--model", str(tiny_llama_dir), "--kind", "policy", "--data", good_file, "--beta", "0.1"]
    argv += ["--reference-free"]
    message = one_line_error(capsys, *argv, "--set", "chat_template=never", "--cache-dir", "")
    assert message.startswith(f"model '{tiny_llama_dir}': {weights} is damaged (")
    assert message.endswith("); copy it again or retrain")


def _mount_namespace_available() -> bool:
    try:
        return subprocess.run(["unshare", "-m", "true"], capture_output=True).returncode == 0
    except OSError:
        return False


def run_on_a_small_disk(folder: Path, mount_options: str, argv: list[str]) -> subprocess.CompletedProcess:
    """``mmpo argv`` with ``folder`` a fresh tmpfs mounted with ``mount_options`` ('ro', 'size=200k'), in a mount
    namespace of its own: a real read-only or full file system, with no change to this machine's mounts.
    Without the rights to mount, a non-root user gets the read-only case from a folder's permissions."""
    folder.mkdir(exist_ok=True)
    command = [sys.executable, "-m", "mmpo.cli", *argv]
    if _mount_namespace_available():
        script = f'mount -t tmpfs -o {mount_options} tmpfs "{folder}" && exec "$@"'
        command = ["unshare", "-m", "sh", "-c", script, "sh", *command]
    elif mount_options == "ro" and os.geteuid() != 0:
        folder.chmod(0o555)
    else:
        pytest.skip("no mount namespace here to make a full or read-only file system")
    return subprocess.run(command, capture_output=True, text=True, timeout=600)


def test_a_read_only_output_folder_is_refused_before_anything_loads(tmp_path, good_file):
    locked = tmp_path / "locked"
    margins = run_on_a_small_disk(locked, "ro", ["margins", "--data", good_file, "--out", f"{locked}/m.jsonl"])
    assert (margins.returncode, margins.stderr.strip()) == (
        2,
        f"mmpo: error: --out's folder '{locked}' cannot be written ({_read_only_reason()})",
    )
    train = run_on_a_small_disk(
        locked, "ro", ["train", "reward", "--config", "embedded_reward", f"train.output_dir={locked}/run"]
    )
    assert train.returncode == 2
    assert train.stderr.strip().splitlines()[-1] == (
        f"mmpo: error: train.output_dir '{locked}/run' cannot be written ({_read_only_reason()})"
    )
    assert "step" not in train.stderr  # refused before training


def _read_only_reason() -> str:
    return "read-only file system" if _mount_namespace_available() else "permission denied"


def test_a_full_disk_mid_run_is_one_line_that_says_so(tmp_path, tiny_llama_dir):
    small = tmp_path / "small"
    argv = policy_argv(tmp_path, tiny_llama_dir, f"{small}/run", "train.max_steps=2", "train.save_steps=1")
    result = run_on_a_small_disk(small, "size=256k", argv)
    assert result.returncode == 2, result.stderr[-2000:]
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("mmpo: error: no space left on device")
    assert last.endswith("free some space, then run the same command again (training resumes from its last checkpoint)")
    assert "Traceback" not in result.stderr
