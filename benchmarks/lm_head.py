"""The LM head alone: mmpo's ``ChunkedTokenLogps`` against TRL's ``ChunkedLogProbFunction`` (the fused head its
DPOTrainer adds), on the same scored tokens, forward + backward, time and the memory each adds.

Both take hidden states (N, H) and the head weight (V, H) and return log p(target) per token; the backward gives
gradients for both. TRL is called as its DPOTrainer calls it (vocabulary tiles of 32,768 columns, 4,096 tokens per
tile, and the entropy, mean logit and top-1 outputs its trainer logs); both get the same N tokens here, where in
training TRL's head on a CPU scores every position of the batch (prompt and padding too). Each (framework, shape,
precision) runs in its own process, so the memory column is that process's peak RSS above its level after building
the inputs. bf16 is autocast on both sides, as in training.
Liger's fused linear cross-entropy needs Triton (a GPU); on a CPU it is reported as not run.

    .venv/bin/python benchmarks/lm_head.py                  # 8,192 tokens, hidden 576 / 2,048, vocab 49,152 / 151,936
    .venv/bin/python benchmarks/lm_head.py --hidden 576 --vocab 49152 --precision bf16

Model FLOPs counted: 3 matmuls of 2*N*H*V (logits, grad of hidden, grad of weight); the recomputation of the logits
in backward that both do is not counted. The last line is JSON.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path


def rss_mb() -> float:
    with open("/proc/self/status") as handle:
        return int(next(x for x in handle if x.startswith("VmRSS:")).split()[1]) / 1024


def worker(framework: str, tokens: int, hidden: int, vocab: int, precision: str) -> dict:
    import torch

    torch.manual_seed(0)
    h = torch.randn(tokens, hidden).requires_grad_()
    w = (torch.randn(vocab, hidden) * hidden**-0.5).requires_grad_()
    targets = torch.randint(0, vocab, (tokens,))
    grad = torch.randn(tokens)
    if framework == "mmpo":
        from mmpo.features.logprobs import CHUNK_TOKENS, ChunkedTokenLogps

        def head(x, weight, t):
            return ChunkedTokenLogps.apply(x, weight, t, CHUNK_TOKENS)
    else:
        from trl.kernels import ChunkedLogProbFunction
        from trl.trainer.utils import _CHUNKED_LOGPROB_CHUNK_SIZE

        def head(x, weight, t):
            outputs = ("entropy", "mean_logits", "is_top1")  # DPOTrainer's, besides the log-probs
            return ChunkedLogProbFunction.apply(
                x, weight, None, t, 1.0, _CHUNKED_LOGPROB_CHUNK_SIZE, None, 1.0, outputs
            )[0]

    def step(n: int) -> None:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
            out = head(h[:n], w, targets[:n])
        (out.float() * grad[:n]).sum().backward()
        h.grad = w.grad = None

    step(256)  # warm-up on a slice: kernels chosen, pools allocated
    before = rss_mb()
    start = time.perf_counter()
    step(tokens)
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"seconds": seconds, "added_mb": max(0.0, peak - before)}


def run(framework: str, tokens: int, hidden: int, vocab: int, precision: str) -> dict:
    argv = [sys.executable, __file__, "--worker", framework, "--tokens", str(tokens), "--hidden", str(hidden)]
    argv += ["--vocab", str(vocab), "--precision", precision]
    done = subprocess.run(argv, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{framework} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tokens", type=int, default=8192)
    parser.add_argument("--hidden", type=int, nargs="+", default=[576, 2048])
    parser.add_argument("--vocab", type=int, nargs="+", default=[49152, 151936])
    parser.add_argument("--precision", nargs="+", default=["fp32", "bf16"], choices=["fp32", "bf16"])
    parser.add_argument("--worker", choices=["mmpo", "trl"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker, args.tokens, args.hidden[0], args.vocab[0], args.precision[0])))
        return
    sys.path.insert(0, str(Path(__file__).parent))
    from machine_peak import machine_peaks

    peaks = machine_peaks()
    try:
        import liger_kernel  # noqa: F401

        print("liger-kernel is installed, but its fused linear cross-entropy needs Triton on a GPU: not run on CPU")
    except ImportError:
        print("liger-kernel is not installed (its kernels need Triton on a GPU): not run")
    print(f"machine: {peaks['device']}, matmul peak fp32 {peaks['fp32_gflops']} GFLOP/s, bf16 {peaks['bf16_gflops']}")
    print(
        "| hidden | vocab | precision | mmpo s | TRL s | time ratio | mmpo added MB | TRL added MB | memory ratio "
        "| mmpo % of peak | TRL % of peak |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    rows = []
    for hidden in args.hidden:
        for vocab in args.vocab:
            for precision in args.precision:
                m, t = (run(f, args.tokens, hidden, vocab, precision) for f in ("mmpo", "trl"))
                flops = 3 * 2 * args.tokens * hidden * vocab
                peak = peaks[f"{precision}_gflops"] * 1e9
                row = {
                    "hidden": hidden,
                    "vocab": vocab,
                    "precision": precision,
                    "mmpo_s": m["seconds"],
                    "trl_s": t["seconds"],
                    "time_ratio": m["seconds"] / t["seconds"],
                    "mmpo_added_mb": m["added_mb"],
                    "trl_added_mb": t["added_mb"],
                    "memory_ratio": m["added_mb"] / t["added_mb"] if t["added_mb"] else None,
                    "mmpo_fraction_of_peak": flops / m["seconds"] / peak,
                    "trl_fraction_of_peak": flops / t["seconds"] / peak,
                }
                rows.append(row)
                memory_ratio = "-" if row["memory_ratio"] is None else f"{row['memory_ratio']:.2f}x"
                print(
                    f"| {hidden} | {vocab} | {precision} | {m['seconds']:.2f} | {t['seconds']:.2f} "
                    f"| **{row['time_ratio']:.2f}x** | {m['added_mb']:.0f} | {t['added_mb']:.0f} | **{memory_ratio}** "
                    f"| {row['mmpo_fraction_of_peak']:.0%} | {row['trl_fraction_of_peak']:.0%} |",
                    flush=True,
                )
    print(json.dumps({"tokens": args.tokens, "machine": peaks, "rows": rows}))


if __name__ == "__main__":
    main()
