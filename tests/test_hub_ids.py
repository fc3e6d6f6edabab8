"""Models and datasets by hub id, from a real hub cache folder built from the bundled models and data,
under HF_HUB_OFFLINE=1 (no mocks of from_pretrained or load_dataset): a warm cache trains and evaluates,
a cold one is one line naming the id."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import on_topic_pairs, write_jsonl

REVISION = "0123456789abcdef0123456789abcdef01234567"


def add_to_hub_cache(cache: Path, repo_id: str, files: dict[str, Path], repo_type: str = "model") -> None:
    """The layout huggingface_hub writes: <type>s--org--name/snapshots/<rev>/... and refs/main."""
    org, name = repo_id.split("/")
    repo = cache / f"{repo_type}s--{org}--{name}"
    snapshot = repo / "snapshots" / REVISION
    for relative, source in files.items():
        (snapshot / relative).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(source, snapshot / relative)
    (repo / "refs").mkdir(parents=True, exist_ok=True)
    (repo / "refs" / "main").write_text(REVISION)


@pytest.fixture(scope="module")
def hub_cache(tmp_path_factory, shared_data, smollm2_tokenizer) -> Path:
    from tiny_models import tiny_llama

    from mmpo.models.loading import default_encoder_path

    root = tmp_path_factory.mktemp("hub")
    cache = root / "cache"
    encoder = default_encoder_path()
    add_to_hub_cache(
        cache, "test-org/minilm", {p.name: p for p in encoder.rglob("*") if p.is_file() and p.parent == encoder}
    )
    tiny = root / "tiny"
    tiny_llama(len(smollm2_tokenizer)).save_pretrained(tiny)
    smollm2_tokenizer.save_pretrained(tiny)
    add_to_hub_cache(cache, "test-org/tiny-llama", {p.name: p for p in tiny.iterdir()})
    data = root / "data"
    data.mkdir()
    write_jsonl(data / "train.jsonl", on_topic_pairs(shared_data, 0, 160))
    write_jsonl(data / "test.jsonl", on_topic_pairs(shared_data, 300, 60))
    add_to_hub_cache(
        cache,
        "test-org/pairs",
        {
            "data/train-00000-of-00001.jsonl": data / "train.jsonl",
            "data/test-00000-of-00001.jsonl": data / "test.jsonl",
        },
        repo_type="dataset",
    )
    return cache


def mmpo(cache: Path, *argv: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_CACHE": str(cache), "HF_HUB_OFFLINE": "1", "HF_HOME": str(cache.parent / "home")}
    return subprocess.run(
        [sys.executable, "-m", "mmpo.cli", *argv], capture_output=True, text=True, env=env, timeout=600
    )


def test_reward_model_and_data_by_hub_id_offline(hub_cache, tmp_path):
    done = mmpo(
        hub_cache,
        "train",
        "reward",
        "model=test-org/minilm",
        "reward_head=frozen_encoder",
        "data.train_path=test-org/pairs",
        "data.eval_path=test-org/pairs:test",
        "max_length=64",
        "max_prompt_length=32",
        "overlong=truncate",
        "train.num_train_epochs=8",
        "train.learning_rate=2e-3",
        "train.per_device_train_batch_size=16",
        "train.report_to=[none]",
        f"train.output_dir={tmp_path}/rm",
    )
    assert done.returncode == 0, done.stderr[-2000:]
    summary = json.loads(done.stdout)
    assert summary["eval_accuracy"] >= 0.8  # the on-topic task is learnable: the model really trained
    done = mmpo(hub_cache, "eval", "--model", f"{tmp_path}/rm", "--data", "test-org/pairs:test")
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout)["pairs"] == 60


def test_policy_by_hub_id_with_revision_offline(hub_cache, tmp_path):
    done = mmpo(
        hub_cache,
        "train",
        "policy",
        f"model=test-org/tiny-llama@{REVISION}",
        "data.train_path=test-org/pairs:train",
        "data.chat_template=never",
        "max_length=96",
        "max_prompt_length=48",
        "overlong=truncate",
        "train.max_steps=2",
        "train.report_to=[none]",
        f"train.output_dir={tmp_path}/policy",
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert (tmp_path / "policy" / "model.safetensors").exists()


def test_cold_cache_is_one_line_naming_the_id(hub_cache, tmp_path):
    done = mmpo(hub_cache, "train", "policy", "model=test-org/not-cached", "data.train_path=test-org/pairs")
    assert done.returncode == 2
    assert done.stderr.strip() == (
        "mmpo: error: model 'test-org/not-cached' is not in the Hugging Face cache and HF_HUB_OFFLINE=1 is set; "
        "run once online, or `huggingface-cli download test-org/not-cached`"
    )
    done = mmpo(hub_cache, "margins", "--data", "test-org/no-such-data")
    assert done.returncode == 2
    assert done.stderr.strip() == (
        "mmpo: error: dataset 'test-org/no-such-data' is not in the Hugging Face cache and HF_HUB_OFFLINE=1 is "
        "set; run once online, or `huggingface-cli download --repo-type dataset test-org/no-such-data`"
    )
    done = mmpo(hub_cache, "margins", "--data", "test-org/pairs:validation")
    assert done.returncode == 2
    assert "has no split 'validation'; splits: ['test', 'train']" in done.stderr


def test_pickled_weights_are_refused_by_default(tmp_path, smollm2_tokenizer):
    import torch
    from tiny_models import tiny_llama

    from mmpo.errors import ConfigError
    from mmpo.models.loading import LoadOptions, load_causal_lm

    folder = tmp_path / "pickled"
    model = tiny_llama(len(smollm2_tokenizer))
    model.config.save_pretrained(folder)
    torch.save(model.state_dict(), folder / "pytorch_model.bin")  # an old-style pickled checkpoint
    with pytest.raises(ConfigError, match="could not be loaded"):
        load_causal_lm(str(folder))
    assert load_causal_lm(str(folder), LoadOptions(allow_pickle=True)) is not None


def test_rewardbench_by_hub_id_equals_local_files(hub_cache, tmp_path, shared_data):
    """allenai/reward-bench and allenai/pref-test-sets by hub id give the report the same rows give as local
    files: splits name the Prior Sets (a split's own 'subset' column is a sub-subset, as reward-bench reads it)
    and splits outside the Prior Sets (pku_safer) are not read."""
    from helpers import rewardbench_rows

    rb_rows = rewardbench_rows(shared_data, per_subset=3)
    helpful = [
        {
            "prompt": [{"role": "user", "content": f"How do I keep basil fresh, {i}?"}],
            "chosen": "Put it in water.",
            "rejected": "Freeze it solid.",
            "subset": "helpful-base",  # every split has the same columns, as there
            "id": i,
        }
        for i in range(4)
    ]
    hhh = [{**row, "subset": "helpful", "chosen": row["rejected"], "rejected": row["chosen"]} for row in helpful]
    data = tmp_path / "data"
    data.mkdir()
    files = {
        "filtered": write_jsonl(data / "filtered.jsonl", rb_rows),
        "anthropic_helpful": write_jsonl(data / "anthropic_helpful.jsonl", helpful),
        "anthropic_hhh": write_jsonl(data / "anthropic_hhh.jsonl", hhh),
        "pku_safer": write_jsonl(data / "pku_safer.jsonl", helpful),
    }
    add_to_hub_cache(
        hub_cache,
        "allenai/reward-bench",
        {"data/filtered-00000-of-00001.jsonl": Path(files["filtered"])},
        repo_type="dataset",
    )
    add_to_hub_cache(
        hub_cache,
        "allenai/pref-test-sets",
        {
            f"data/{name}-00000-of-00001.jsonl": Path(files[name])
            for name in ("anthropic_helpful", "anthropic_hhh", "pku_safer")
        },
        repo_type="dataset",
    )
    local_priors = [
        write_jsonl(data / "helpful_local.jsonl", [{**r, "subset": "anthropic_helpful"} for r in helpful]),
        write_jsonl(data / "hhh_local.jsonl", [{**r, "subset": "anthropic_hhh"} for r in hhh]),
    ]
    common = ["eval", "--model", "test-org/tiny-llama", "--kind", "policy", "--reference-free", "--beta", "1"]
    common += ["--benchmark", "rewardbench", "--cache-dir", ""]
    by_id = mmpo(hub_cache, *common, "--data", "allenai/reward-bench", "--prior-sets", "allenai/pref-test-sets")
    assert by_id.returncode == 0, by_id.stderr[-2000:]
    local = mmpo(hub_cache, *common, "--data", files["filtered"], "--prior-sets", *local_priors)
    assert local.returncode == 0, local.stderr[-2000:]
    hub_report, local_report = json.loads(by_id.stdout), json.loads(local.stdout)
    assert hub_report["prior_sets/pairs"] == 8 and "prior_sets/other" not in hub_report
    assert hub_report["prior_sets/n_total/anthropic_hhh"] == 4
    numbers = {k: v for k, v in local_report.items() if isinstance(v, (int, float))}
    assert {k: hub_report[k] for k in numbers} == numbers
