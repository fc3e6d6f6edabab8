"""Real training runs, CPU-sized: held-out accuracy must improve, checkpoints must resume exactly."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
import torch
import yaml
from helpers import on_topic_pairs, write_jsonl, yes_no_pairs
from PIL import Image
from safetensors.torch import load_file
from transformers import TrainerCallback

from mmpo.cli import main
from mmpo.config import load_config
from mmpo.errors import ConfigError
from mmpo.host_memory import freed_memory_kept, user_chose_allocator_settings
from mmpo.training.run import train_from_config


def eval_report(tmp_path, model_dir, kind: str, data, *options: str) -> dict:
    """Run `mmpo eval` as a user would and read back its report.json."""
    out = tmp_path / f"eval-{kind}"
    assert (
        main(["eval", "--model", str(model_dir), "--kind", kind, "--data", str(data), *options, "--out", str(out)]) == 0
    )
    return json.loads((out / "report.json").read_text())


def reward_overrides(tmp_path, shared_data, *overrides, train_pairs: int = 240, eval_pairs: int = 80) -> list[str]:
    """KEY=VALUE settings of the toy reward run (frozen MiniLM head), usable in-process and on the command line."""
    train = write_jsonl(tmp_path / "train.jsonl", on_topic_pairs(shared_data, 0, train_pairs))
    evaluation = write_jsonl(tmp_path / "eval.jsonl", on_topic_pairs(shared_data, 300, eval_pairs))
    return [
        "model=bundled:all-minilm-l6-v2",
        "reward_head=frozen_encoder",
        "max_length=96",
        "max_prompt_length=48",
        "overlong=truncate",
        f"data.train_path={train}",
        f"data.eval_path={evaluation}",
        "loss.gamma=1.0",
        "train.num_train_epochs=8",
        "train.learning_rate=2e-3",
        "train.per_device_train_batch_size=16",
        "train.report_to=[none]",
        "train.disable_tqdm=true",
        f"train.output_dir={tmp_path}/run",
        f"cache_dir={tmp_path}/cache",
        *overrides,
    ]


def reward_config(tmp_path, shared_data, *overrides):
    return load_config(None, ["kind=reward", *reward_overrides(tmp_path, shared_data, *overrides)])


@pytest.mark.parametrize("loss_type", ["mmpo", "bt"])
def test_reward_head_training_improves_heldout_accuracy(tmp_path, shared_data, loss_type):
    trained = train_from_config(reward_config(tmp_path, shared_data, f"loss.loss_type={loss_type}"))
    untrained = train_from_config(
        reward_config(
            tmp_path,
            shared_data,
            f"loss.loss_type={loss_type}",
            "train.learning_rate=0",
            f"train.output_dir={tmp_path}/lr0",
        )
    )
    assert untrained.metrics["eval_accuracy"] < 0.7
    assert trained.metrics["eval_accuracy"] >= 0.85
    assert trained.metrics["eval_nll_soft"] < untrained.metrics["eval_nll_soft"]
    out = trained.output_dir
    assert (out / "model.safetensors").exists() and (out / "reliability.png").exists()
    assert json.loads((out / "eval_metrics.json").read_text())["eval_accuracy"] == trained.metrics["eval_accuracy"]


class CrashAt(TrainerCallback):
    """Simulates a killed process right after a given optimizer step."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == self.step:
            raise KeyboardInterrupt(f"simulated kill at step {self.step}")


def test_killed_reward_run_resumes_to_identical_weights(tmp_path, shared_data):
    common = ["train.max_steps=24", "train.save_steps=8", "train.eval_steps=8", "train.save_total_limit=5"]
    straight = train_from_config(reward_config(tmp_path, shared_data, *common, f"train.output_dir={tmp_path}/a"))
    cfg = reward_config(tmp_path, shared_data, *common, f"train.output_dir={tmp_path}/b")
    with pytest.raises(KeyboardInterrupt):
        train_from_config(cfg, callbacks=[CrashAt(13)])
    assert (tmp_path / "b" / "checkpoint-8").exists() and not (tmp_path / "b" / "checkpoint-16").exists()
    resumed = train_from_config(cfg)  # same command again: picks up checkpoint-8 automatically
    state = json.loads((tmp_path / "b" / "checkpoint-24" / "trainer_state.json").read_text())
    assert state["global_step"] == 24
    a = load_file(str(straight.output_dir / "model.safetensors"))
    b = load_file(str(resumed.output_dir / "model.safetensors"))
    for name in a:
        torch.testing.assert_close(a[name], b[name], rtol=0, atol=1e-6, msg=name)


def policy_overrides(tmp_path, model_dir, *overrides) -> list[str]:
    """KEY=VALUE settings of the toy policy run, usable in-process and on the command line."""
    train = write_jsonl(tmp_path / "ptrain.jsonl", yes_no_pairs(48))
    evaluation = write_jsonl(tmp_path / "peval.jsonl", yes_no_pairs(16, offset=1000))
    return [
        f"model={model_dir}",
        "max_length=64",
        "max_prompt_length=32",
        f"data.train_path={train}",
        f"data.eval_path={evaluation}",
        "data.chat_template=never",
        "loss.beta=0.5",
        "loss.gamma=1.0",
        "train.num_train_epochs=3",
        "train.learning_rate=3e-3",
        "train.per_device_train_batch_size=8",
        "train.warmup_ratio=0",
        "train.report_to=[none]",
        "train.disable_tqdm=true",
        f"train.output_dir={tmp_path}/policy",
        f"cache_dir={tmp_path}/refcache",
        *overrides,
    ]


def policy_config(tmp_path, model_dir, *overrides):
    return load_config(None, ["kind=policy", *policy_overrides(tmp_path, model_dir, *overrides)])


def test_policy_training_improves_heldout_accuracy_and_reuses_reference_cache(tmp_path, tiny_llama_dir, caplog):
    caplog.set_level("INFO", logger="mmpo")
    result = train_from_config(policy_config(tmp_path, tiny_llama_dir))
    assert result.metrics["eval_accuracy"] == 1.0
    assert result.metrics["eval_mean_preference_logit"] > 0.5
    caches = list((tmp_path / "refcache").glob("logp_stats-*.safetensors"))
    assert len(caches) == 2  # train and eval
    assert "reusing cache" not in caplog.text
    caplog.clear()
    dpo = train_from_config(
        policy_config(tmp_path, tiny_llama_dir, "loss.gamma=inf", f"train.output_dir={tmp_path}/dpo")
    )
    assert caplog.text.count("reusing cache") == 2  # the gamma sweep reuses the reference log-probs
    assert len(list((tmp_path / "refcache").glob("logp_stats-*.safetensors"))) == 2
    assert dpo.metrics["eval_accuracy"] == 1.0
    assert freed_memory_kept() == (not user_chose_allocator_settings())  # train.reuse_freed_memory, on by default
    # held-out NLL against the one stated target (eval_target_gamma, default 1), not the run's own gamma=inf
    from mmpo.metrics.calibration import soft_target_nll

    assert dpo.metrics["eval_target_gamma"] == result.metrics["eval_target_gamma"] == 1.0
    assert dpo.metrics["eval_nll_soft"] == pytest.approx(
        soft_target_nll(dpo.eval_preference_logits, dpo.eval_margins, 1.0), rel=1e-6
    )
    # hard labels push the implicit margin further than soft targets whose p < 1
    assert dpo.metrics["eval_mean_preference_logit"] > result.metrics["eval_mean_preference_logit"]
    assert (result.output_dir / "preference_logit_history.png").exists()


def test_policy_with_lora_trains_only_adapters(tmp_path, tiny_llama_dir):
    result = train_from_config(
        policy_config(
            tmp_path,
            tiny_llama_dir,
            "lora.enabled=true",
            "lora.r=4",
            "train.learning_rate=1e-2",
            f"train.output_dir={tmp_path}/lora",
        )
    )
    assert (result.output_dir / "adapter_model.safetensors").exists()
    assert result.metrics["eval_accuracy"] >= 0.9
    # `mmpo eval` loads the adapter onto its base model and reproduces the trainer's evaluation, scoring with the
    # run's own max_length 64, max_prompt_length 32 and chat_template never (mmpo_config.yaml), none of them given
    report = eval_report(tmp_path, result.output_dir, "policy", tmp_path / "peval.jsonl")
    assert report["accuracy"] == pytest.approx(result.metrics["eval_accuracy"])
    assert report["mean_preference_logit"] == pytest.approx(result.metrics["eval_mean_preference_logit"], rel=1e-3)


def test_policy_bf16_and_gradient_checkpointing_step(tmp_path, tiny_llama_dir):
    result = train_from_config(
        policy_config(
            tmp_path,
            tiny_llama_dir,
            "train.bf16=true",
            "train.gradient_checkpointing=true",
            "train.max_steps=3",
            f"train.output_dir={tmp_path}/gc",
        )
    )
    history = json.loads((result.output_dir / "checkpoint-3" / "trainer_state.json").read_text())["log_history"]
    losses = [entry["loss"] for entry in history if "loss" in entry]
    assert losses and all(torch.isfinite(torch.tensor(losses)))
    assert result.metrics["eval_accuracy"] > 0.5


def test_resuming_with_a_different_loss_is_refused(tmp_path, shared_data):
    train_from_config(reward_config(tmp_path, shared_data, "train.max_steps=4", "train.save_steps=2"))
    with pytest.raises(ConfigError, match="different loss"):
        train_from_config(reward_config(tmp_path, shared_data, "train.max_steps=4", "loss.gamma=3"))
    # extending the schedule of the same experiment is fine
    result = train_from_config(reward_config(tmp_path, shared_data, "train.max_steps=6", "train.save_steps=2"))
    assert json.loads((result.output_dir / "checkpoint-6" / "trainer_state.json").read_text())["global_step"] == 6


def test_gradient_accumulation_matches_the_large_batch(tmp_path, shared_data):
    common = ["train.max_steps=6", "head_dropout=0", "train.save_steps=6", "train.eval_steps=6"]
    big = train_from_config(
        reward_config(
            tmp_path, shared_data, *common, "train.per_device_train_batch_size=16", f"train.output_dir={tmp_path}/big"
        )
    )
    accumulated = train_from_config(
        reward_config(
            tmp_path,
            shared_data,
            *common,
            "train.per_device_train_batch_size=8",
            "train.gradient_accumulation_steps=2",
            f"train.output_dir={tmp_path}/accumulated",
        )
    )
    a = load_file(str(big.output_dir / "model.safetensors"))
    b = load_file(str(accumulated.output_dir / "model.safetensors"))
    for name in a:
        if name == "mlp.3.bias":
            # r_w - r_l cancels the output bias: its true gradient is 0 and Adam amplifies float noise there
            continue
        torch.testing.assert_close(a[name], b[name], rtol=1e-4, atol=1e-6, msg=name)


def test_lora_sequence_classification_reward_model_round_trips_through_eval(tmp_path, shared_data):
    cfg = reward_config(
        tmp_path,
        shared_data,
        "reward_head=sequence_classification",
        "lora.enabled=true",
        "lora.r=4",
        "train.max_steps=3",
        "train.learning_rate=1e-3",
        "train.per_device_train_batch_size=4",
        "max_length=64",
        "max_prompt_length=24",
    )
    result = train_from_config(cfg)
    assert (result.output_dir / "adapter_model.safetensors").exists()
    report = eval_report(tmp_path, result.output_dir, "reward", cfg.data.eval_path)  # the run's lengths: 64 / 24
    # the merged base + adapter + trained head reproduces the trainer's own evaluation
    assert (
        abs(result.metrics["eval_mean_preference_logit"]) > 1e-3
    )  # trained away from zero, so equality means something
    assert report["mean_preference_logit"] == pytest.approx(
        result.metrics["eval_mean_preference_logit"], rel=1e-3, abs=1e-5
    )
    assert report["accuracy"] == pytest.approx(result.metrics["eval_accuracy"])


def test_kto_with_soft_weights_learns_desirability(tmp_path, tiny_llama_dir):
    samples = [
        {
            "prompt": f"Is {i} a number? Answer:",
            "completion": " yes, it is." if i % 2 else " no, it is not.",
            "score": 8.0 + (i % 3) if i % 2 else 2.0 + (i % 3),
        }
        for i in range(64)
    ]
    train = write_jsonl(tmp_path / "kto_train.jsonl", samples[:48])
    evaluation = write_jsonl(tmp_path / "kto_eval.jsonl", samples[48:])
    overrides = [
        o
        for o in policy_overrides(tmp_path, tiny_llama_dir, "loss.loss_type=kto")
        if not o.startswith(("data.train_path", "data.eval_path"))
    ]
    cfg = load_config(None, ["kind=kto", f"data.train_path={train}", f"data.eval_path={evaluation}", *overrides])
    result = train_from_config(cfg)
    # eval margins are score - median(train): desirable samples must end with h > 0, undesirable with h < 0
    assert result.metrics["eval_accuracy"] == 1.0
    assert sorted(set(m > 0 for m in result.eval_margins)) == [False, True]
    history = json.loads((result.output_dir / "checkpoint-18" / "trainer_state.json").read_text())["log_history"]
    assert any("kl" in entry for entry in history)


def test_kto_unpairs_pair_files(shared_data):
    from mmpo.config import DataConfig
    from mmpo.data.unpaired import median_score, scored_samples

    samples = scored_samples(DataConfig(on_empty="drop"), str(shared_data / "ultrafeedback" / "eval_clean.jsonl"))
    assert len(samples) == 400
    raw = json.loads((shared_data / "ultrafeedback" / "eval_clean.jsonl").read_text().splitlines()[0])
    assert samples[0].score == raw["metadata"]["score_chosen"] and samples[1].score == raw["metadata"]["score_rejected"]
    assert 1.0 <= median_score(samples) <= 10.0


@pytest.mark.parametrize("checkpointing", [False, True])
def test_padding_free_training_matches_padded_training(tmp_path, tiny_llama_dir, checkpointing, caplog):
    """The same run with packed batches (SDPA per packed sequence, with or without activation checkpointing)
    ends with the padded run's weights (and its reference log-probs)."""
    common = ["train.max_steps=3", "train.save_steps=3", "train.eval_steps=3"]
    padded = train_from_config(
        policy_config(tmp_path, tiny_llama_dir, *common, "padding_free=false", f"train.output_dir={tmp_path}/pad")
    )
    packed_settings = ["padding_free=true", f"train.gradient_checkpointing={str(checkpointing).lower()}"]
    caplog.clear()
    with caplog.at_level("INFO", logger="mmpo"):
        packed = train_from_config(
            policy_config(tmp_path, tiny_llama_dir, *common, *packed_settings, f"train.output_dir={tmp_path}/packed")
        )
    assert "padding-free batches: attention by SDPA per packed sequence" in caplog.text
    a = load_file(str(padded.output_dir / "model.safetensors"))
    b = load_file(str(packed.output_dir / "model.safetensors"))
    for name in a:
        torch.testing.assert_close(a[name], b[name], rtol=1e-4, atol=1e-5, msg=name)
    assert packed.metrics["eval_loss"] == pytest.approx(padded.metrics["eval_loss"], rel=1e-4)


def test_models_without_per_sequence_attention_train_on_padded_batches(tmp_path, tiny_llama_dir, caplog):
    """attn_implementation=eager would need a dense mask over a packed row: mmpo pads instead, and says so."""
    settings = ["train.max_steps=1", "attn_implementation=eager", f"train.output_dir={tmp_path}/eager"]
    with caplog.at_level("INFO", logger="mmpo"):
        train_from_config(policy_config(tmp_path, tiny_llama_dir, *settings))
    assert "padded batches: padding_free needs SDPA or FlashAttention" in caplog.text
    assert "this model uses eager" in caplog.text


# huggingface/trl v0.19.0 (5b3ea9d), trl/trainer/kto_trainer.py: _get_kl_dataset, copied verbatim; TRL maps it over
# the dataset with batched=True and batch_size=per_device_train_batch_size.
def _get_kl_dataset(batch: dict) -> dict:
    batch["answer_input_ids"] = [batch["answer_input_ids"][-1]] + batch["answer_input_ids"][:-1]
    batch["answer_attention_mask"] = [batch["answer_attention_mask"][-1]] + batch["answer_attention_mask"][:-1]
    return batch


def test_kl_mismatches_rotate_within_each_batch_as_trl(shared_data):
    from mmpo.config import DataConfig
    from mmpo.data.unpaired import kl_partners, scored_samples

    expected: list[int] = []
    for start in range(0, 10, 4):  # the last batch is short, as TRL's map leaves it
        index = list(range(start, min(start + 4, 10)))
        expected += _get_kl_dataset({"answer_input_ids": index, "answer_attention_mask": index})["answer_input_ids"]
    assert kl_partners([f"prompt {i}" for i in range(10)], 4) == expected
    # a pair file unpaired: chosen and rejected of a row are neighbours, and never each other's mismatch
    samples = scored_samples(DataConfig(on_empty="drop"), str(shared_data / "ultrafeedback" / "eval_clean.jsonl"))
    prompts = [repr(s.prompt) for s in samples]
    partners = kl_partners(prompts, 8)
    assert all(prompts[k] != prompts[j] for j, k in enumerate(partners))
    assert all(j // 8 == k // 8 for j, k in enumerate(partners))  # still the batch's own completions


def _front_matter(card: str) -> dict:
    import yaml

    assert card.startswith("---\n")
    return yaml.safe_load(card.split("---\n")[1])


def test_a_trained_folder_has_a_model_card_and_is_pushed_only_when_complete(tmp_path, shared_data, monkeypatch):
    """The card's Hub front-matter, loss, data and the final metrics; the push happens last, with the card, the
    run config, the metrics and the frozen head's reward_head.json already in the folder (the Hub itself is not
    reachable here: its client records what the folder held when the upload began)."""
    import huggingface_hub

    uploads: list[dict] = []

    class RecordingHub:
        def create_repo(self, repo_id, private=True, exist_ok=False):
            uploads.append({"created": repo_id, "private": private})

        def upload_folder(self, repo_id, folder_path, ignore_patterns, commit_message):
            files = sorted(p.name for p in Path(folder_path).iterdir())
            uploads.append({"repo_id": repo_id, "files": files, "ignore": ignore_patterns})
            return "https://huggingface.co/org/rm/commit/0"

    monkeypatch.setattr(huggingface_hub, "HfApi", RecordingHub)
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")  # a push is asked for; every model and file here is local
    extra = ["train.num_train_epochs=1", "train.push_to_hub=true", "train.hub_model_id=org/mmpo-rm"]
    result = train_from_config(reward_config(tmp_path, shared_data, *extra))
    card = (result.output_dir / "README.md").read_text()
    meta = _front_matter(card)
    assert meta["library_name"] == "mmpo" and "mmpo" in meta["tags"] and "reward-model" in meta["tags"]
    assert "base_model" not in meta  # a bundled model has no hub id
    assert "| `loss.gamma` | 1 |" in card and "| `loss.loss_type` | mmpo |" in card
    accuracy = json.loads((result.output_dir / "eval_metrics.json").read_text())["eval_accuracy"]
    assert f"| accuracy | {accuracy:.4g} |" in card
    assert "kim2024margin" in card and "mmpo eval --model org/mmpo-rm" in card
    assert uploads[0] == {"created": "org/mmpo-rm", "private": True}
    pushed = uploads[1]
    assert pushed["repo_id"] == "org/mmpo-rm"
    for needed in ("README.md", "mmpo_config.yaml", "eval_metrics.json", "reward_head.json", "model.safetensors"):
        assert needed in pushed["files"], needed
    assert "checkpoint-*" in pushed["ignore"] and ".mmpo.lock" in pushed["ignore"]


def test_a_policy_card_names_its_hub_base_model_and_datasets(tmp_path):
    from mmpo.config.paths import resolve_config_path
    from mmpo.training.model_card import model_card

    cfg = load_config(
        resolve_config_path("paper_gemma2b_ultrafeedback_policy"),
        ["data.train_path=HuggingFaceH4/ultrafeedback_binarized:train_prefs", "data.eval_path="],
        kind="policy",
    )
    meta = _front_matter(model_card(cfg, {"eval_accuracy": 0.75}))
    assert meta["library_name"] == "transformers" and meta["pipeline_tag"] == "text-generation"
    assert meta["base_model"] == cfg.model and meta["datasets"] == ["HuggingFaceH4/ultrafeedback_binarized"]
    assert {"mmpo", "dpo"} <= set(meta["tags"])


def test_push_settings_are_checked_before_anything_loads(tmp_path, shared_data, monkeypatch):
    from mmpo.errors import ConfigError
    from mmpo.training.preflight import preflight

    with pytest.raises(ConfigError, match="train.push_to_hub needs train.hub_model_id as org/name"):
        reward_config(tmp_path, shared_data, "train.push_to_hub=true")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    cfg = reward_config(tmp_path, shared_data, "train.push_to_hub=true", "train.hub_model_id=org/x")
    with pytest.raises(ConfigError, match="HF_HUB_OFFLINE=1: the run could not be pushed"):
        preflight(cfg)
    with pytest.raises(ConfigError, match="train.extra.push_to_hub is set by mmpo; use the train.push_to_hub"):
        preflight(reward_config(tmp_path, shared_data, "train.extra.push_to_hub=true"))


def test_a_mixture_trains_from_the_command_line(tmp_path, shared_data, capsys):
    first = write_jsonl(tmp_path / "first.jsonl", on_topic_pairs(shared_data, 0, 60))
    second = write_jsonl(tmp_path / "second.jsonl", on_topic_pairs(shared_data, 100, 40))
    overrides = [o for o in reward_overrides(tmp_path, shared_data) if not o.startswith("data.train_path")]
    mixture = f"data.train_mixture=[{{path: {first}, count: 30}}, {{path: {second}, fraction: 0.5}}]"
    argv = ["train", "reward", *overrides, mixture, "train.num_train_epochs=1"]
    assert main(argv) == 0
    assert json.loads(capsys.readouterr().out)["train_pairs_per_rank"] == [50]
    card = (tmp_path / "run" / "README.md").read_text()
    assert f"a mixture of `{first}` (30 pairs), `{second}` (0.5 of its pairs)" in card


def test_completions_are_logged_at_every_evaluation(tmp_path, tiny_llama_dir):
    """As TRL's LogCompletionsCallback: the policy's greedy answers to eval prompts, per evaluation step, in
    completions.jsonl and in TensorBoard's text tab, beside the preference logit of that prompt's pair."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    cfg = policy_config(
        tmp_path,
        tiny_llama_dir,
        "train.num_train_epochs=1",
        "train.eval_steps=3",
        "train.log_completions=2",
        "train.log_completions_max_new_tokens=5",
        "train.report_to=[tensorboard]",
    )
    result = train_from_config(cfg)
    rows = [json.loads(line) for line in (result.output_dir / "completions.jsonl").read_text().splitlines()]
    steps = sorted({r["step"] for r in rows})
    assert steps == [3, 6] and all(sum(r["step"] == s for r in rows) == 2 for s in steps)
    evaluation = [json.loads(line) for line in (tmp_path / "peval.jsonl").read_text().splitlines()]
    assert [r["prompt"] for r in rows[:2]] == [e["prompt"] for e in evaluation[:2]]
    assert all(isinstance(r["completion"], str) and isinstance(r["preference_logit"], float) for r in rows)
    assert rows[-1]["preference_logit"] == pytest.approx(result.eval_preference_logits[1])  # the final evaluation's
    events = EventAccumulator(str(next((result.output_dir).rglob("events.out.tfevents*")).parent))
    events.Reload()
    texts = events.Tensors("eval/completions/text_summary")
    assert [t.step for t in texts] == [3, 6]
    assert rows[0]["completion"].replace("|", "\\|").replace("\n", " ") in texts[0].tensor_proto.string_val[0].decode()


def test_compare_gives_intervals_and_paired_differences_of_two_runs(tmp_path, shared_data, capsys):
    """An MMPO and a BT reward model on the same eval pairs: `mmpo compare` shows each metric with its bootstrap
    interval, and the paired difference of the second run to the first with its interval and p-value, computed
    from the pair-by-pair scores both runs wrote (the estimate is exactly the difference of their metrics)."""
    mmpo_run = train_from_config(reward_config(tmp_path, shared_data, "train.num_train_epochs=2"))
    bt_cfg = reward_config(
        tmp_path, shared_data, "train.num_train_epochs=2", "loss.loss_type=bt", f"train.output_dir={tmp_path}/bt"
    )
    bt_run = train_from_config(bt_cfg)
    saved = json.loads((mmpo_run.output_dir / "eval_metrics.json").read_text())
    low, high = saved["intervals"]["eval_accuracy"]
    assert low <= saved["eval_accuracy"] <= high and high - low > 0
    assert len((mmpo_run.output_dir / "eval_pair_scores.jsonl").read_text().splitlines()) == 80
    capsys.readouterr()
    assert main(["compare", f"MMPO={mmpo_run.output_dir}", f"BT={bt_run.output_dir}", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    (difference,) = result["differences"]
    assert (difference["run"], difference["baseline"], difference["pairs"]) == ("BT", "MMPO", 80)
    expected = bt_run.metrics["eval_accuracy"] - mmpo_run.metrics["eval_accuracy"]
    assert difference["accuracy"]["estimate"] == pytest.approx(expected, abs=1e-9)
    assert difference["nll_soft"]["estimate"] == pytest.approx(
        bt_run.metrics["eval_nll_soft"] - mmpo_run.metrics["eval_nll_soft"], rel=1e-4
    )
    lo, hi = difference["accuracy"]["interval"]
    assert lo <= difference["accuracy"]["estimate"] <= hi and 0 <= difference["accuracy"]["p_value"] <= 1
    assert f"{saved['eval_accuracy']:.3f} [{low:.3f}, {high:.3f}]" in result["table"]
    assert "| BT - MMPO | held-out | 80 |" in result["table"]


def test_a_sweep_trains_its_grid_selects_on_eval_and_skips_finished_cells(tmp_path, shared_data, capsys, caplog):
    import statistics

    caplog.set_level("INFO", logger="mmpo")
    settings = [o for o in reward_overrides(tmp_path, shared_data) if not o.startswith("train.output_dir")]
    argv = ["sweep", "reward", *settings, "train.num_train_epochs=2", "loss.gamma=0.5,inf", "seed=1,2"]
    argv += ["--out", str(tmp_path / "sweep")]
    assert main(argv) == 0
    summary = json.loads(capsys.readouterr().out)
    record = json.loads((tmp_path / "sweep" / "sweep.json").read_text())
    assert [s["setting"] for s in record["settings"]] == [{"loss.gamma": "0.5"}, {"loss.gamma": "inf"}]
    for setting in record["settings"]:
        runs = [json.loads((tmp_path / "sweep" / r / "eval_metrics.json").read_text()) for r in setting["runs"]]
        assert len(runs) == 2 and runs[0]["eval_nll_soft"] != runs[1]["eval_nll_soft"]  # two seeds, two runs
        values = [r["eval_nll_soft"] for r in runs]
        assert setting["mean"]["nll_soft"] == pytest.approx(statistics.fmean(values))
        assert setting["std"]["nll_soft"] == pytest.approx(statistics.stdev(values))
    best = min(record["settings"], key=lambda s: s["mean"]["nll_soft"])
    assert summary["selected"] == record["selected"] == best
    assert "(selected)" in (tmp_path / "sweep" / "sweep.md").read_text()
    assert Image.open(tmp_path / "sweep" / "sweep.png").size[0] > 100
    saved = yaml.safe_load((tmp_path / "sweep" / "loss.gamma=inf__train.seed=2" / "mmpo_config.yaml").read_text())
    assert saved["loss"]["gamma"] == float("inf") and saved["train"]["seed"] == 2
    reused = [r.getMessage() for r in caplog.records if "embeddings: 480 of 480 texts from the cache" in r.getMessage()]
    assert len(reused) >= 3  # the cells after the first embed nothing: one cache for every cell
    caplog.clear()
    assert main(argv) == 0  # again: every cell is read back, none trained
    assert json.loads(capsys.readouterr().out)["selected"] == best
    assert sum("(done, read back)" in r.getMessage() for r in caplog.records) == 4
    assert not any("step 1/" in r.getMessage() for r in caplog.records)

    # one self-contained report of two cells and the sweep: every image embedded, and every one decodes
    cells = [tmp_path / "sweep" / name for name in ("loss.gamma=0.5__train.seed=1", "loss.gamma=inf__train.seed=1")]
    out = tmp_path / "report"
    compare = ["compare", f"soft={cells[0]}", f"hard={cells[1]}", "--out", str(out), "--sweep", str(tmp_path / "sweep")]
    assert main(compare) == 0
    page = (out / "index.html").read_text()
    images = html_images(page)
    captions = [alt for alt, _ in images]
    assert "reliability: held-out" in captions and "each metric against the swept key" in captions
    assert "soft: mean preference logit h by step" in captions and "hard: mean preference logit h by step" in captions
    for _, png in images:
        assert Image.open(io.BytesIO(png)).size[0] > 100
    assert "| hard - soft |" not in page and "<td>hard - soft</td>" in page  # the paired differences, as HTML
    assert "(selected)" in page and "http" not in page.replace("http-equiv", "")  # nothing fetched


def html_images(page: str) -> list[tuple[str, bytes]]:
    """(alt, decoded PNG bytes) of every <img> in the page; an image that is not embedded fails."""
    import base64
    from html.parser import HTMLParser

    found: list[tuple[str, bytes]] = []

    class Images(HTMLParser):
        def handle_starttag(self, tag, attrs):
            if tag == "img":
                attributes = dict(attrs)
                source = attributes["src"]
                assert source.startswith("data:image/png;base64,"), source[:40]
                found.append((attributes["alt"], base64.b64decode(source.split(",", 1)[1], validate=True)))

    Images().feed(page)
    return found


def test_a_sweep_checks_every_cell_before_training(tmp_path, shared_data, capsys):
    settings = [o for o in reward_overrides(tmp_path, shared_data) if not o.startswith("train.output_dir")]
    argv = ["sweep", "reward", *settings, "loss.gamma=1,-2", "--out", str(tmp_path / "sweep")]
    assert main(argv) == 2
    assert capsys.readouterr().err.strip().startswith("mmpo: error: loss.gamma must be > 0 or inf (got -2.0)")
    assert not (tmp_path / "sweep").exists()


def test_a_sweep_of_policies_and_of_kto_runs_each_cell(tmp_path, tiny_llama_dir, capsys):
    """The same grid for the other kinds: DPO-family policies and KTO (reference log-probs computed once)."""
    base = [o for o in policy_overrides(tmp_path, tiny_llama_dir) if not o.startswith("train.output_dir")]
    base = [*base, "train.max_steps=2"]
    assert main(["sweep", "policy", *base, "loss.gamma=1,inf", "--out", str(tmp_path / "policy")]) == 0
    policy = json.loads(capsys.readouterr().out)
    assert policy["cells"] == 2 and policy["selected"]["setting"]["loss.gamma"] in ("1", "inf")
    samples = [
        {
            "prompt": f"Is {i} a number? Answer:",
            "completion": " yes." if i % 2 else " no.",
            "score": float(i % 2 * 6 + 2),
        }
        for i in range(32)
    ]
    kto = [o for o in base if not o.startswith(("data.train_path", "data.eval_path"))]
    kto += [f"data.train_path={write_jsonl(tmp_path / 'k.jsonl', samples[:24])}"]
    kto += [f"data.eval_path={write_jsonl(tmp_path / 'ke.jsonl', samples[24:])}"]
    assert main(["sweep", "kto", *kto, "seed=1,2", "--out", str(tmp_path / "kto"), "--select", "accuracy"]) == 0
    record = json.loads((tmp_path / "kto" / "sweep.json").read_text())
    assert record["criterion"] == "accuracy" and len(record["selected"]["runs"]) == 2
