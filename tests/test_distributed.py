"""Several processes train one model: real `torchrun` runs on CPU (gloo), compared with one process.

accelerate's own check (`accelerate.test_utils.scripts.test_script`) is the model: N processes with per-device
batch b must see the same global batches as one process with batch N*b, log the same losses and end with the same
weights. Each run reports the world size and how many training pairs each rank put through the loss, so a run that
silently fell back to one process fails here (`accelerate launch --cpu --num_processes 2` starts one process; only
torchrun starts several on a machine without GPUs).
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from filelock import FileLock
from helpers import write_jsonl
from safetensors.torch import load_file
from test_training import policy_overrides, reward_overrides

from mmpo.cli import main


def launch(nproc: int, *program: str, timeout: int = 600) -> subprocess.CompletedProcess:
    """``program`` (a script and its arguments, or -m and a module) on ``nproc`` local processes under torchrun."""
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}", *program]
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout)


def torchrun(nproc: int, *mmpo_args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    return launch(nproc, "-m", "mmpo.cli", *mmpo_args, timeout=timeout)


def report(done: subprocess.CompletedProcess) -> dict:
    """The one JSON report on stdout (only the main process prints it)."""
    assert done.returncode == 0, done.stderr[-4000:]
    assert done.stdout.count('"output_dir"') == 1, done.stdout
    return json.loads(done.stdout[done.stdout.index("{") : done.stdout.rindex("}") + 1])


def logged_losses(run_dir: Path) -> list[float]:
    checkpoints = sorted(run_dir.glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[1]))
    history = json.loads((checkpoints[-1] / "trainer_state.json").read_text())["log_history"]
    return [entry["loss"] for entry in history if "loss" in entry]


def assert_same_run(two: Path, one: Path, weights_atol: float) -> None:
    """Same losses at every logged step (relative 1e-3) and the same final weights."""
    losses_two, losses_one = logged_losses(two), logged_losses(one)
    assert len(losses_two) == len(losses_one) > 2
    torch.testing.assert_close(torch.tensor(losses_two), torch.tensor(losses_one), rtol=1e-3, atol=1e-6)
    weights_two, weights_one = load_file(str(two / "model.safetensors")), load_file(str(one / "model.safetensors"))
    assert weights_two.keys() == weights_one.keys()
    for name in weights_one:
        torch.testing.assert_close(weights_two[name], weights_one[name], rtol=0, atol=weights_atol, msg=name)


def test_two_processes_train_a_policy_as_one_process_with_twice_the_batch(tmp_path, tiny_llama_dir):
    """DPO-family policy: 2 ranks x 4 pairs per step equal 1 rank x 8, step by step and in the final weights. The
    two-rank run scores the reference log-probs in two shares and gathers them; the one-process run scores them
    whole in a cache of its own, and both caches hold the same numbers. A second two-rank run finds the cache."""
    common = ["train.logging_steps=1", "train.num_train_epochs=2"]
    two = policy_overrides(
        tmp_path,
        tiny_llama_dir,
        *common,
        "train.per_device_train_batch_size=4",
        f"train.output_dir={tmp_path}/two",
        f"cache_dir={tmp_path}/cache-two",
    )
    summary = report(torchrun(2, "train", "policy", *two))
    assert summary["world_size"] == 2
    assert summary["train_pairs_per_rank"] == [48, 48]  # 48 pairs x 2 epochs, half on each rank
    assert json.loads((tmp_path / "two" / "eval_metrics.json").read_text())["world_size"] == 2

    one = policy_overrides(
        tmp_path,
        tiny_llama_dir,
        *common,
        "train.per_device_train_batch_size=8",
        f"train.output_dir={tmp_path}/one",
        f"cache_dir={tmp_path}/cache-one",
    )
    assert main(["train", "policy", *one]) == 0
    assert json.loads((tmp_path / "one" / "eval_metrics.json").read_text())["world_size"] == 1
    caches = [sorted((tmp_path / name).glob("logp_stats-*.safetensors")) for name in ("cache-two", "cache-one")]
    assert [p.name for p in caches[0]] == [p.name for p in caches[1]] and len(caches[0]) == 2  # train and eval
    for gathered, whole in zip(*caches, strict=True):
        for side in ("chosen", "rejected"):
            torch.testing.assert_close(
                load_file(str(gathered))[side], load_file(str(whole))[side], rtol=1e-6, atol=1e-5
            )
    # 1e-5: on CPUs with AMX / AVX512 kernels (Intel Xeon) a matmul of 4 rows and one of 8 sum in other orders, and
    # after 12 Adam steps at lr 3e-3 the weights differ by up to 3e-6 (the session-start code too); a rank training on
    # the wrong share (one process at half the global batch) ends 3e-2 away
    assert_same_run(tmp_path / "two", tmp_path / "one", weights_atol=1e-5)

    again = policy_overrides(
        tmp_path,
        tiny_llama_dir,
        *common,
        "train.per_device_train_batch_size=4",
        f"train.output_dir={tmp_path}/again",
        f"cache_dir={tmp_path}/cache-two",
    )
    done = torchrun(2, "train", "policy", *again)
    report(done)
    assert "train reference log-probs from cache" in done.stderr
    assert "reference log-probs computed" not in done.stderr


def test_two_processes_train_a_reward_model_as_one_process_with_twice_the_batch(tmp_path, shared_data):
    """Bradley-Terry/MMPO reward head on frozen embeddings: the main process embeds (and caches) first, the other
    rank reads the cache; 2 x 8 pairs per step equal 1 x 16."""
    common = reward_overrides(
        tmp_path,
        shared_data,
        "head_dropout=0",  # dropout draws differ per rank
        "train.num_train_epochs=2",
        "train.logging_steps=1",
        train_pairs=96,
        eval_pairs=32,
    )
    two = [*common, "train.per_device_train_batch_size=8", f"train.output_dir={tmp_path}/two"]
    summary = report(torchrun(2, "train", "reward", *two))
    assert summary["world_size"] == 2 and summary["train_pairs_per_rank"] == [96, 96]
    one = [*common, "train.per_device_train_batch_size=16", f"train.output_dir={tmp_path}/one"]
    assert main(["train", "reward", *one]) == 0
    assert_same_run(tmp_path / "two", tmp_path / "one", weights_atol=1e-6)


def test_two_processes_train_kto(tmp_path, tiny_llama_dir):
    """KTO under torchrun: each rank trains on its own batches (its KL mismatches drawn inside them), and the KL
    reference point is the mean over both ranks."""
    rows = [
        {"prompt": f"Is {i} a number? Answer:", "completion": " yes." if i % 2 else " no.", "score": 8.0 - 5 * (i % 2)}
        for i in range(40)
    ]
    train = write_jsonl(tmp_path / "kto.jsonl", rows[:32])
    evaluation = write_jsonl(tmp_path / "kto_eval.jsonl", rows[32:])
    overrides = [
        *(o for o in policy_overrides(tmp_path, tiny_llama_dir) if not o.startswith(("data.", "train.output_dir"))),
        "data.chat_template=never",
        f"data.train_path={train}",
        f"data.eval_path={evaluation}",
        "loss.loss_type=kto",
        "train.num_train_epochs=1",
        "train.per_device_train_batch_size=4",
        f"train.output_dir={tmp_path}/kto",
    ]
    summary = report(torchrun(2, "train", "kto", *overrides))
    assert summary["world_size"] == 2 and summary["train_pairs_per_rank"] == [16, 16]
    assert (tmp_path / "kto" / "model.safetensors").exists()


def test_a_busy_output_folder_stops_every_rank_at_once(tmp_path, tiny_llama_dir):
    """The main process takes the lock; when it cannot, every rank stops with the same one-line error (none waits
    in a collective for the main process that left)."""
    out = tmp_path / "busy"
    out.mkdir()
    lock = FileLock(str(out / ".mmpo.lock"))
    lock.acquire()
    try:
        started = time.monotonic()
        done = torchrun(2, "train", "policy", *policy_overrides(tmp_path, tiny_llama_dir, f"train.output_dir={out}"))
        elapsed = time.monotonic() - started
    finally:
        lock.release()
    assert done.returncode != 0
    assert done.stderr.count("is in use by a running mmpo run") == 2, done.stderr[-3000:]  # one line per rank
    assert elapsed < 120
    assert not (out / "mmpo_config.yaml").exists()


@pytest.mark.parametrize("nproc", [2])
def test_each_rank_resumes_from_the_checkpoint_the_main_process_chose(tmp_path, tiny_llama_dir, nproc):
    """A stopped two-process run resumes on both ranks from its last checkpoint and ends where an uninterrupted
    two-process run ends."""
    common = [
        "train.per_device_train_batch_size=4",
        "train.save_steps=3",
        "train.logging_steps=1",
        "train.lr_scheduler_type=constant",  # the 3-step run's schedule must be the 6-step run's first half
    ]
    first = policy_overrides(tmp_path, tiny_llama_dir, *common, "train.max_steps=3", f"train.output_dir={tmp_path}/r")
    report(torchrun(nproc, "train", "policy", *first))
    resumed = policy_overrides(tmp_path, tiny_llama_dir, *common, "train.max_steps=6", f"train.output_dir={tmp_path}/r")
    done = torchrun(nproc, "train", "policy", *resumed)
    report(done)
    assert "resuming from" in done.stderr and "checkpoint-3" in done.stderr
    straight = policy_overrides(
        tmp_path, tiny_llama_dir, *common, "train.max_steps=6", f"train.output_dir={tmp_path}/straight"
    )
    report(torchrun(nproc, "train", "policy", *straight))
    assert_same_run(tmp_path / "r", tmp_path / "straight", weights_atol=1e-6)


def run_sharded_worker(tmp_path: Path, mode: str, layout: str) -> dict:
    out = tmp_path / f"{mode}-{layout}"
    out.mkdir()
    done = launch(2, str(Path(__file__).parent / "sharded_worker.py"), mode, str(out), layout)
    assert done.returncode == 0, done.stderr[-4000:]
    return json.loads((out / "result.json").read_text())


def assert_same_gradients(seen: dict) -> None:
    """Two ranks with half the pairs each, averaged by the sharding wrapper, equal one process with all pairs."""
    assert seen["world_size"] == 2
    assert sorted(seen["gradients"]) == sorted(seen["reference_gradients"])
    for name, reference in seen["reference_gradients"].items():
        torch.testing.assert_close(torch.tensor(seen["gradients"][name]), torch.tensor(reference), rtol=0, atol=1e-6)


@pytest.mark.parametrize("layout", ["padded", "packed"])
def test_fsdp2_sharded_policy_gradients_equal_one_process(tmp_path, layout):
    """torch FSDP2 (`fully_shard` per decoder layer and at the root, on a 2-process gloo CPU mesh) over mmpo's
    log-prob and loss path. The head weight is a DTensor shard outside the forward, yet the chunked LM head is
    used (it runs inside the head's own forward, where FSDP has gathered the weight). The weights after one step,
    gathered as a full state dict (what accelerate's FULL_STATE_DICT final save writes), reload with
    from_pretrained and score as the sharded model did.

    accelerate itself cannot run FSDP on CPU (with `use_cpu` it sets up plain multi-CPU DDP), so the Trainer-level
    path (configs/accelerate/fsdp.yaml) is exercised by benchmarks/gpu_check.sh on a GPU; these are its pieces."""
    from transformers import AutoModelForCausalLM

    from mmpo.features.collators import PolicyCollator
    from mmpo.features.logprobs import batch_sequence_logps

    sys.path.insert(0, str(Path(__file__).parent))
    from sharded_worker import features

    seen = run_sharded_worker(tmp_path, "fsdp2", layout)
    assert seen["head_weight_type"] == "DTensor"
    assert seen["attention"] == "SDPA per packed sequence"
    assert_same_gradients(seen)
    reloaded = AutoModelForCausalLM.from_pretrained(tmp_path / f"fsdp2-{layout}" / "saved")
    with torch.no_grad():
        logps = batch_sequence_logps(reloaded, PolicyCollator(0)(features()))[0]
    torch.testing.assert_close(logps, torch.tensor(seen["logps_before_save"]), rtol=0, atol=1e-5)


@pytest.mark.parametrize("layout", ["padded", "packed"])
def test_zero3_engine_unwraps_to_the_model_and_its_sharded_head_is_chunked(tmp_path, layout):
    """DeepSpeed ZeRO-3 on 2 CPU processes: the engine (which has a `.config` of its own) unwraps to the
    transformers model, so packed-sequence bounds reach attention; the head weight is an empty shard outside the
    forward and the chunked LM head still runs (inside the head's forward, where ZeRO-3 gathers it, and again in
    its backward); the gradients equal one process's."""
    pytest.importorskip("deepspeed")
    seen = run_sharded_worker(tmp_path, "zero3", layout)
    assert seen["unwrapped"] == "LlamaForCausalLM"
    assert seen["head_weight_shape_outside_forward"] == [0]
    assert seen["attention"] == "SDPA per packed sequence"
    assert seen["packed_kwargs"] == ["cu_seq_lens_k", "cu_seq_lens_q", "max_length_k", "max_length_q"]
    assert_same_gradients(seen)


def test_a_sweep_under_torchrun_trains_every_cell_on_both_ranks(tmp_path, shared_data):
    """`mmpo sweep` launched as `mmpo train` is: every cell trains on 2 ranks (world_size in its metrics), the
    main process alone writes the sweep's files and prints the one summary."""
    settings = [o for o in reward_overrides(tmp_path, shared_data) if not o.startswith("train.output_dir")]
    out = tmp_path / "sweep"
    done = torchrun(2, "sweep", "reward", *settings, "train.num_train_epochs=1", "loss.gamma=1,inf", "--out", str(out))
    assert done.returncode == 0, done.stderr[-4000:]
    assert done.stdout.count('"selected"') == 1, done.stdout
    record = json.loads((out / "sweep.json").read_text())
    cells = [run for setting in record["settings"] for run in setting["runs"]]
    assert cells == ["loss.gamma=1", "loss.gamma=inf"]
    for cell in cells:
        assert json.loads((out / cell / "eval_metrics.json").read_text())["world_size"] == 2


@pytest.mark.parametrize("loss", ["amapo", "gammapo"])
def test_batch_statistics_are_gathered_so_two_ranks_train_as_one_process(tmp_path, tiny_llama_dir, loss):
    """AMaPO's Z-normalised margin and gamma-PO's solved margins read the whole micro-batch: the trainer gathers the
    deltas of both ranks, so 2 ranks x 4 pairs train exactly as 1 x 8 (statistics of each rank's own 4 pairs would
    give other margins, other losses and other weights)."""
    common = ["train.logging_steps=1", "train.num_train_epochs=1", f"loss.loss_type={loss}", "loss.beta=2.0"]
    two = policy_overrides(
        tmp_path, tiny_llama_dir, *common, "train.per_device_train_batch_size=4", f"train.output_dir={tmp_path}/two"
    )
    summary = report(torchrun(2, "train", "policy", *two))
    assert summary["world_size"] == 2 and summary["train_pairs_per_rank"] == [24, 24]
    one = policy_overrides(
        tmp_path, tiny_llama_dir, *common, "train.per_device_train_batch_size=8", f"train.output_dir={tmp_path}/one"
    )
    assert main(["train", "policy", *one]) == 0
    # AMaPO's margin beta * exp(z * mu) magnifies the rounding of a mean summed in another order; per-rank
    # statistics move the weights by orders of magnitude more than this
    assert_same_run(tmp_path / "two", tmp_path / "one", weights_atol=2e-5 if loss == "amapo" else 1e-6)


def test_beta_dpo_on_two_ranks_draws_one_filter_from_the_gathered_batch(tmp_path, tiny_llama_dir):
    """beta-DPO under torchrun (the gathered margins, the moving averages and the seeded filter on both ranks): it
    trains on both, and the checkpoint carries its moving averages."""
    common = ["loss.loss_type=beta_dpo", "train.logging_steps=1", "train.num_train_epochs=1", "train.save_steps=6"]
    two = policy_overrides(
        tmp_path, tiny_llama_dir, *common, "train.per_device_train_batch_size=4", f"train.output_dir={tmp_path}/two"
    )
    summary = report(torchrun(2, "train", "policy", *two))
    assert summary["world_size"] == 2 and summary["train_pairs_per_rank"] == [24, 24]
    state = json.loads((tmp_path / "two" / "checkpoint-6" / "trainer_state.json").read_text())
    averages = state["stateful_callbacks"]["RunningMarginStatistics"]["attributes"]
    assert averages["mean"] is not None and averages["std"] > 0
    assert all(math.isfinite(entry["loss"]) for entry in state["log_history"] if "loss" in entry)


def test_ranks_that_gather_and_exit_at_once_leave_cleanly(tmp_path):
    """A gloo rank that exits right after a gather aborted about one torchrun run in 30 (the CLI) and two runs of
    four ranks in three (this worker) when left to the interpreter's exit: its worker thread freed the gathered
    tensors while the interpreter was finalizing. ``exit_process`` runs the atexit handlers and flushes, then
    leaves without finalizing: four runs of four ranks all end with status 0 (with ``sys.exit`` instead, this
    test fails with probability about 1 - (1/3)^4 = 0.99), every rank's atexit handler ran and its output, printed
    without a newline, reached the pipe."""
    worker = Path(__file__).parent / "gather_and_exit_worker.py"
    for attempt in range(4):
        out = tmp_path / str(attempt)
        out.mkdir()
        done = launch(4, str(worker), str(out), timeout=300)
        assert done.returncode == 0, done.stderr[-3000:]
        assert sorted(p.name for p in out.iterdir()) == [f"rank-{r}.exited" for r in range(4)]
        assert all((out / f"rank-{r}.exited").read_text() == "4" for r in range(4))
        last_words = done.stdout.replace("done", "done\n").split("\n")[:-1]
        assert sorted(last_words) == [f"rank {r} of 4 done" for r in range(4)]


def test_exit_process_without_a_process_group_exits_normally():
    """One process with no group (the CLI in one process, pytest itself) keeps the ordinary exit: SystemExit."""
    from mmpo.distributed import exit_process

    assert not torch.distributed.is_initialized()
    with pytest.raises(SystemExit) as exited:
        exit_process(3)
    assert exited.value.code == 3
