"""mmpo PolicyTrainer vs TRL DPOTrainer: training throughput and peak memory, same model, data and loss.

Both train the same causal LM for one epoch on the same UltraFeedback pairs with the sigmoid DPO loss
(mmpo: loss_type=mmpo, gamma=inf, shown equal to TRL's loss in tests/test_trl_equivalence.py), the same
batch size, learning rate and max length, and both precompute reference log-probs (TRL:
precompute_ref_log_probs=True), which is included in the timing, as is tokenisation. Each framework runs in its own
subprocess so peak memory (GPU: max allocated; CPU: max RSS) is not shared. Prints tokens/s and the ratio.

    .venv/bin/python benchmarks/throughput_vs_trl.py                # tiny Llama, CPU-sized
    .venv/bin/python benchmarks/throughput_vs_trl.py --model smollm2 --pairs 16 --batch-size 4 --max-length 1024
    .venv/bin/python benchmarks/throughput_vs_trl.py --model smollm2 --pairs 16 --batch-size 4 \\
        --max-length 256 512 1024 2048 --longest    # scaling table on the longest pairs
The last line is JSON with throughput_ratio and peak_memory_ratio (mmpo / TRL) at the last max_length.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # tiny_models: toy Llama built from a config


def peak_memory_mb() -> float:
    import torch

    if torch.cuda.is_available():
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class RssSampler:
    """Peak resident memory above the level when timing started (CPU): what training itself adds, without the
    peak that loading (and de-quantising) the model leaves in ru_maxrss for both frameworks alike."""

    def __init__(self) -> None:
        import threading

        self.baseline = self.peak = self.current()
        self.running = True
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    @staticmethod
    def current() -> float:
        with open("/proc/self/status") as handle:
            line = next(x for x in handle if x.startswith("VmRSS:"))
        return int(line.split()[1]) / 1024

    def _run(self) -> None:
        while self.running:
            self.peak = max(self.peak, self.current())
            time.sleep(0.02)

    def stop(self) -> float:
        self.running = False
        self.thread.join()
        return self.peak - self.baseline


def peak_tflops(args) -> float | None:
    """The peak MFU is quoted against: --peak-tflops (the parent passes the one it measured or looked up), else the
    GPU's dense bf16 peak by name (machine_peak.py); None if neither is known."""
    import torch

    if args.peak_tflops:
        return args.peak_tflops
    if not torch.cuda.is_available():
        return None
    from machine_peak import machine_peaks

    return machine_peaks()["bf16_gflops"] / 1e3


def model_flops(model, lengths: list[int]) -> float:
    """Model FLOPs of one epoch over sequences of these lengths, as MFU counts them: per token, 2 FLOPs per weight
    of every matmul (all Linear layers, the LM head included, on every position) plus causal attention's
    4 * layers * width * (position + 1) for its scores and weighted sum; 3x that for a trained sequence (forward and
    backward) and 1x for the reference pass. Recomputation (activation checkpointing, the head's backward) and
    element-wise work are not counted, and the count is the same for both frameworks whatever each computes."""
    import torch

    matmul_weights = sum(m.weight.numel() for m in model.modules() if isinstance(m, torch.nn.Linear))
    config = model.config.get_text_config() if hasattr(model.config, "get_text_config") else model.config
    layers = config.num_hidden_layers
    width = config.num_attention_heads * getattr(config, "head_dim", config.hidden_size // config.num_attention_heads)
    forward = sum(2 * matmul_weights * t + 2 * layers * width * t * (t + 1) for t in lengths)
    return 4.0 * forward


class StepRecorder:
    """Per optimizer step of mmpo's trainer: its sequences' lengths and its wall time (from the start of its first
    micro-batch to the end of the step, optimizer included), so that MFU can be read per step: the first steps of a
    CPU run pay one-time costs (memory faulted in for the first time, kernel selection) that a long run does not."""

    def __init__(self, trainer) -> None:
        import torch
        from transformers import TrainerCallback

        def now() -> float:  # a GPU's work is asynchronous: wait for it, or the step's time is only its launch
            if torch.cuda.is_available():
                torch.cuda.synchronize()
            return time.perf_counter()

        self.steps: list[dict] = []
        self.started: float | None = None
        self.lengths: list[int] = []
        step_of_trainer = trainer.training_step
        recorder = self

        def training_step(model, inputs, *args, **kwargs):
            if recorder.started is None:
                recorder.started = now()
            recorder.lengths += sequence_lengths(inputs)
            return step_of_trainer(model, inputs, *args, **kwargs)

        class EndOfStep(TrainerCallback):
            def on_step_end(self, *args, **kwargs):
                recorder.steps.append({"lengths": recorder.lengths, "seconds": now() - recorder.started})
                recorder.started, recorder.lengths = None, []

        trainer.training_step = training_step
        trainer.add_callback(EndOfStep())


def sequence_lengths(inputs: dict) -> list[int]:
    """The real lengths of the sequences of one mmpo batch: a packed row restarts its position ids at each sequence;
    a padded batch's attention mask counts each row's tokens."""
    if "position_ids" in inputs:
        positions = inputs["position_ids"][0]
        starts = (positions == 0).nonzero().flatten().tolist() + [positions.numel()]
        return [end - start for start, end in zip(starts[:-1], starts[1:], strict=True)]
    return inputs["attention_mask"].sum(-1).tolist()


def load_everything(args):
    from tiny_models import tiny_llama

    from mmpo.config import DataConfig
    from mmpo.data.prepare import prepare_pairs
    from mmpo.features.tokenize import LengthPolicy, tokenize_policy_pairs
    from mmpo.models import BUNDLED_SMOLLM2, load_causal_lm, load_tokenizer

    if args.model_path:  # any local model folder (benchmarks/gpu_check.sh builds one where the bundle is absent)
        tokenizer, model = load_tokenizer(args.model_path), load_causal_lm(args.model_path)
    else:
        tokenizer = load_tokenizer(BUNDLED_SMOLLM2)
        model = load_causal_lm(BUNDLED_SMOLLM2) if args.model == "smollm2" else tiny_llama(len(tokenizer), 0, 64, 4)
    cfg = DataConfig(on_empty="drop", chat_template="never", shuffle_seed=0)
    # real UltraFeedback pairs at their natural lengths (cut at max_length), from the sample shipped with mmpo
    if args.longest:  # the pairs whose shorter side is longest, so that long max_lengths are actually reached
        pairs = prepare_pairs(cfg, "bundled:ultrafeedback/train.jsonl.gz", tokenizer)
        pairs = sorted(pairs, key=lambda p: -min(len(p.prompt + p.chosen), len(p.prompt + p.rejected)))[: args.pairs]
    else:
        pairs = prepare_pairs(cfg, "bundled:ultrafeedback/train.jsonl.gz", tokenizer, max_samples=args.pairs)
    length = LengthPolicy(args.max_length, args.max_length // 2, "truncate")
    return tokenizer, model, lambda: tokenize_policy_pairs(pairs, tokenizer, length)


def run_worker(args) -> dict:
    import datasets
    import torch

    tokenizer, model, tokenize = load_everything(args)
    features = tokenize()  # TRL gets the same (possibly truncated) texts back from these tokens
    lengths = [len(f[f"{side}_input_ids"]) for f in features for side in ("chosen", "rejected")]
    tokens = sum(lengths)
    common = dict(
        output_dir=f"/tmp/mmpo_bench_{args.worker}",
        per_device_train_batch_size=args.batch_size,
        learning_rate=1e-5,
        num_train_epochs=1,
        report_to="none",
        save_strategy="no",
        logging_steps=10_000,
        disable_tqdm=True,
        bf16=args.bf16,
        # the same on both sides: TRL's DPOConfig turns activation checkpointing on by default, TrainingArguments not
        activation_checkpointing=args.gradient_checkpointing,
        use_cpu=not torch.cuda.is_available(),
    )
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    sampler = RssSampler()
    start = time.perf_counter()
    if args.worker == "mmpo":
        from transformers import TrainingArguments

        from mmpo.features.collators import PackedPolicyCollator, PolicyCollator
        from mmpo.features.reference import attach_reference_logps, compute_reference_logps
        from mmpo.losses import LossConfig
        from mmpo.training.checkpointing import checkpointing_kwargs
        from mmpo.training.policy_trainer import PolicyTrainer

        features = tokenize()  # timed, like the tokenisation TRL does inside DPOTrainer.__init__
        device = "cuda" if torch.cuda.is_available() else "cpu"
        model.to(device)
        reference_start = time.perf_counter()
        chosen, rejected = compute_reference_logps(
            model, features, tokenizer.pad_token_id, args.batch_size, args.bf16, args.padding_free
        )
        reference_seconds = time.perf_counter() - reference_start
        attach_reference_logps(features, chosen, rejected)
        trainer = PolicyTrainer(
            model=model,
            args=TrainingArguments(
                **common,
                activation_checkpointing_kwargs=checkpointing_kwargs(args.checkpoint_saves),
                torch_compile=args.compile,
                remove_unused_columns=False,
                label_names=["margin"],
            ),
            data_collator=(PackedPolicyCollator if args.padding_free else PolicyCollator)(tokenizer.pad_token_id),
            train_dataset=datasets.Dataset.from_list(features),
            loss=LossConfig("mmpo", beta=0.1, gamma=float("inf")),
        )
        recorder = StepRecorder(trainer) if args.per_step else None
    else:
        from trl import DPOConfig, DPOTrainer

        rows = [
            {
                "prompt": tokenizer.decode(f["chosen_input_ids"][: f["chosen_completion_mask"].index(1)]),
                "chosen": tokenizer.decode(f["chosen_input_ids"][f["chosen_completion_mask"].index(1) : -1]),
                "rejected": tokenizer.decode(f["rejected_input_ids"][f["rejected_completion_mask"].index(1) : -1]),
            }
            for f in features
        ]
        trainer = DPOTrainer(
            model=model,
            args=DPOConfig(
                **common, beta=0.1, loss_type=["sigmoid"], max_length=args.max_length, precompute_ref_log_probs=True
            ),
            train_dataset=datasets.Dataset.from_list(rows),
            processing_class=tokenizer,
        )
    if args.profile:  # the top operators by their own time (torch.profiler), for RESULTS.md; slows the run a little
        from torch.profiler import ProfilerActivity, profile

        with profile(activities=[ProfilerActivity.CPU], record_shapes=args.profile_shapes) as prof:
            trainer.train()
        table = prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=args.profile)
        if args.profile_shapes:  # the same, per input shape: which matmul, which tensor
            table += "\n" + prof.key_averages(group_by_input_shape=True).table(
                sort_by="self_cpu_time_total", row_limit=args.profile, max_name_column_width=40
            )
    else:
        trainer.train()
    seconds = time.perf_counter() - start
    added = sampler.stop()
    peak = peak_tflops(args)
    flops = model_flops(model, lengths)
    per_step = None
    if args.worker == "mmpo" and args.per_step and peak:  # training FLOPs are 3/4 of model_flops (no reference pass)
        steps = [
            {
                "tokens": sum(step["lengths"]),
                "seconds": step["seconds"],
                "flops": 0.75 * model_flops(model, step["lengths"]),
            }
            for step in recorder.steps
        ]
        later = steps[2:] or steps
        per_step = {
            "reference_seconds": reference_seconds,
            "reference_mfu": 0.25 * flops / reference_seconds / (peak * 1e12),
            "step_mfu": [round(step["flops"] / step["seconds"] / (peak * 1e12), 4) for step in steps],
            "step_tokens": [step["tokens"] for step in steps],
            "mfu_from_third_step": sum(x["flops"] for x in later) / sum(x["seconds"] for x in later) / (peak * 1e12),
        }
    return {
        "mfu": flops / seconds / (peak * 1e12) if peak else None,
        "model_tflops": flops / 1e12,
        "framework": args.worker,
        "tokens": tokens,
        "mean_length": tokens / (2 * len(features)),
        "seconds": seconds,
        "tokens_per_s": tokens / seconds,
        "peak_mb": peak_memory_mb(),
        "added_mb": added,
        "profile": table if args.profile else None,
        "per_step": per_step,
    }


def run_worker_process(args, framework: str, max_length: int, saves: str) -> dict:
    """One framework in its own process (peak memory is per process); its RESULT line."""
    argv = [sys.executable, __file__, "--worker", framework, "--model", args.model, "--pairs", str(args.pairs)]
    argv += ["--max-length", str(max_length), "--batch-size", str(args.batch_size)]
    argv += ["--bf16"] if args.bf16 else []
    argv += ["--padding-free"] if args.padding_free else []
    argv += ["--gradient-checkpointing"] if args.gradient_checkpointing else []
    argv += ["--checkpoint-saves", saves]
    argv += ["--compile"] if args.compile and framework == "mmpo" else []
    argv += ["--longest"] if args.longest else []
    argv += ["--peak-tflops", str(args.peak_tflops)] if args.peak_tflops else []
    argv += ["--model-path", args.model_path] if args.model_path else []
    argv += ["--profile", str(args.profile)] if args.profile else []
    argv += ["--profile-shapes"] if args.profile_shapes else []
    argv += ["--trl-host-memory"] if args.trl_host_memory else []
    argv += ["--per-step"] if args.per_step else []
    out = subprocess.run(argv, capture_output=True, text=True, check=False)
    line = next((x for x in out.stdout.splitlines() if x.startswith("RESULT ")), None)
    if line is None:
        sys.exit(f"{framework} worker failed:\n{out.stderr[-3000:]}")
    return json.loads(line[len("RESULT ") :])


def run_pair(args, max_length: int) -> dict[str, dict]:
    """mmpo once per --checkpoint-saves choice, then TRL once (full checkpointing, its default), same settings.
    Keys: "mmpo" (or "mmpo (choice)" when several choices are compared) and "trl"."""
    results = {}
    for saves in args.checkpoint_saves:
        label = "mmpo" if len(args.checkpoint_saves) == 1 else f"mmpo ({saves})"
        results[label] = run_worker_process(args, "mmpo", max_length, saves)
        results[label]["framework"] = label
    results["trl"] = run_worker_process(args, "trl", max_length, "inputs")
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", choices=["tiny", "smollm2"], default="tiny")
    parser.add_argument("--model-path", default="", help="a local model folder instead of --model")
    parser.add_argument("--pairs", type=int, default=64)
    parser.add_argument("--max-length", type=int, nargs="+", default=[256], help="several values: a scaling table")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--bf16", action="store_true")
    parser.add_argument("--padding-free", action="store_true", help="mmpo packs each batch into one row")
    parser.add_argument("--gradient-checkpointing", action="store_true", help="both frameworks (TRL's default)")
    parser.add_argument(
        "--checkpoint-saves",
        choices=["inputs", "attention", "matmuls", "half_matmuls"],  # train.checkpoint_saves (no torch import here)
        nargs="+",
        default=["inputs"],
        help="mmpo's train.checkpoint_saves; several: one mmpo row each (TRL keeps full checkpointing, its default)",
    )
    parser.add_argument(
        "--compile", action="store_true", help="mmpo's model under torch.compile (train.extra.torch_compile)"
    )
    parser.add_argument("--longest", action="store_true", help="the longest pairs of the sample, not the first")
    parser.add_argument("--peak-tflops", type=float, help="peak for MFU (default: measured here, GPUs by name)")
    parser.add_argument("--profile", type=int, default=0, help="print the top N operators of each run (profiler)")
    parser.add_argument("--profile-shapes", action="store_true", help="with --profile: also per input shape")
    parser.add_argument(
        "--trl-host-memory",
        action="store_true",
        help="give TRL's process the host memory settings mmpo train uses (huge pages, freed memory kept)",
    )
    parser.add_argument(
        "--per-step",
        action="store_true",
        help="mmpo: MFU of the reference pass and of each optimizer step, and from the third step on",
    )
    parser.add_argument("--worker", choices=["mmpo", "trl"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        if args.worker == "mmpo" or args.trl_host_memory:
            # what `mmpo train` does (mmpo/host_memory.py): huge pages before torch loads, freed memory kept; for
            # TRL only when asked, to show what the same settings give it
            from mmpo.host_memory import keep_freed_memory_for_reuse, prefer_huge_pages_for_large_tensors

            prefer_huge_pages_for_large_tensors()
            keep_freed_memory_for_reuse()
        args.max_length, args.checkpoint_saves = args.max_length[0], args.checkpoint_saves[0]
        print("RESULT " + json.dumps(run_worker(args)), flush=True)
        return
    if not args.peak_tflops:  # measured here, now, on the machine the workers run on (CPU), or the GPU by name
        sys.path.insert(0, str(Path(__file__).parent))
        from machine_peak import machine_peaks

        peaks = machine_peaks()
        args.peak_tflops = peaks["bf16_gflops" if args.bf16 else "fp32_gflops"] / 1e3
        print(
            f"machine: {peaks['device']}; matmul peak fp32 {peaks['fp32_gflops']} GFLOP/s, bf16 {peaks['bf16_gflops']}"
        )
    print(f"MFU against {args.peak_tflops * 1e3:.0f} GFLOP/s ({'bf16' if args.bf16 else 'fp32'}); see model_flops")
    print(f"model={args.model} pairs={args.pairs} batch={args.batch_size} bf16={args.bf16}", end=" ")
    print(f"padding_free={args.padding_free} gradient_checkpointing={args.gradient_checkpointing}", end=" ")
    print(f"checkpoint_saves={','.join(args.checkpoint_saves)}", end=" ")
    print(f"trl_host_memory={args.trl_host_memory}", end=" ")
    print(f"longest={args.longest}")
    print(
        "| max_length | framework | tokens | mean sequence length | seconds | tokens/s | peak memory (MB) "
        "| memory added by training (MB) | MFU |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    ratios = []
    for max_length in args.max_length:
        results = run_pair(args, max_length)
        for r in results.values():
            print(
                f"| {max_length} | {r['framework']} | {r['tokens']} | {r['mean_length']:.0f} | {r['seconds']:.1f} "
                f"| {r['tokens_per_s']:.0f} | {r['peak_mb']:.0f} | {r['added_mb']:.0f} "
                f"| {'-' if r['mfu'] is None else format(r['mfu'], '.1%')} |",
                flush=True,
            )
        t = results["trl"]
        for r in results.values():
            if r.get("per_step"):
                steps = r["per_step"]
                print(
                    f"{r['framework']} per step at {max_length} tokens: reference pass "
                    f"{steps['reference_seconds']:.1f} s ({steps['reference_mfu']:.1%} MFU); "
                    "optimizer steps (tokens, MFU) "
                    + ", ".join(f"{n} {m:.1%}" for n, m in zip(steps["step_tokens"], steps["step_mfu"], strict=True))
                    + f"; from the third step on {steps['mfu_from_third_step']:.1%}",
                    flush=True,
                )
            if r["profile"]:
                print(f"\ntop operators, {r['framework']} at {max_length} tokens:\n{r['profile']}", flush=True)
        for label, m in results.items():
            if label == "trl":
                continue
            ratios.append(
                {
                    "max_length": max_length,
                    "mmpo": label,
                    "throughput_ratio": round(m["tokens_per_s"] / t["tokens_per_s"], 3),
                    "peak_memory_ratio": round(m["peak_mb"] / t["peak_mb"], 3),
                    "added_memory_ratio": round(m["added_mb"] / max(t["added_mb"], 1.0), 3),
                    "mmpo_mfu": m["mfu"],
                    "trl_mfu": t["mfu"],
                }
            )
    for r in ratios:
        throughput, memory = r["throughput_ratio"], r["peak_memory_ratio"]
        label = r["mmpo"]
        print(f"max_length {r['max_length']}: {label}/trl throughput {throughput:.2f}x, peak memory {memory:.2f}x")
    last = ratios[-1]
    summary = {**last, "model": args.model, "bf16": args.bf16, "padding_free": args.padding_free, "pairs": args.pairs}
    summary["gradient_checkpointing"] = args.gradient_checkpointing
    summary["checkpoint_saves"] = args.checkpoint_saves
    summary["compile"] = args.compile
    summary["longest"] = args.longest
    if len(ratios) > 1:
        summary["scaling"] = ratios
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
