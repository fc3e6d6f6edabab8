"""MMPO vs hard-label Bradley-Terry reward models on UltraFeedback, over several seeds, in one run.

Same encoder (frozen all-MiniLM-L6-v2, cached embeddings), same data (1,000 train / 200 eval pairs with
GPT-4 scores), same head and optimiser; only the loss differs. Prints a markdown table of held-out
accuracy (non-tied pairs), ECE (10 equal-width bins, symmetrised) and soft-target NLL, mean +- std, and
the MMPO / BT ratio of each metric.

    .venv/bin/python benchmarks/calibration_table.py [--seeds 1 2 3] [KEY=VALUE overrides...]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
from pathlib import Path

from transformers.utils import logging as hf_logging

from mmpo.config import load_config
from mmpo.config.paths import resolve_config_path
from mmpo.training.run import train_from_config

METRICS = {"eval_accuracy": "accuracy", "eval_ece": "ECE", "eval_nll_soft": "NLL (soft)"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--output-dir", default="outputs/benchmark_calibration")
    parser.add_argument("overrides", nargs="*")
    args = parser.parse_args()
    hf_logging.set_verbosity_error()
    runs: dict[str, list[dict]] = {"mmpo": [], "bt": []}
    for seed in args.seeds:
        for loss_type in runs:
            out = Path(args.output_dir) / f"{loss_type}-seed{seed}"
            shutil.rmtree(out, ignore_errors=True)  # this benchmark's own run folder: each run starts fresh
            cfg = load_config(
                resolve_config_path("embedded_reward"),
                [
                    *args.overrides,
                    f"loss.loss_type={loss_type}",
                    f"train.seed={seed}",
                    "train.report_to=[none]",
                    "train.disable_tqdm=true",
                    "train.resume_from_checkpoint=none",
                    "train.save_total_limit=1",
                    f"train.output_dir={out}",
                ],
            )
            metrics = train_from_config(cfg).metrics
            runs[loss_type].append(metrics)
            print(
                f"seed {seed} {loss_type}: " + ", ".join(f"{n} {metrics[k]:.4f}" for k, n in METRICS.items()),
                flush=True,
            )
    print(f"\nUltraFeedback eval, {len(args.seeds)} seeds (mean +- std)\n")
    print("| loss | " + " | ".join(METRICS.values()) + " |")
    print("|---|" + "---|" * len(METRICS))
    means = {}
    for loss_type, results in runs.items():
        cells = []
        for key in METRICS:
            values = [r[key] for r in results]
            means[(loss_type, key)] = statistics.mean(values)
            spread = statistics.stdev(values) if len(values) > 1 else 0.0
            cells.append(f"{means[(loss_type, key)]:.3f} +- {spread:.3f}")
        print(f"| {loss_type} | " + " | ".join(cells) + " |")
    print("| ratio mmpo/bt | " + " | ".join(f"{means[('mmpo', k)] / means[('bt', k)]:.3f}" for k in METRICS) + " |")


if __name__ == "__main__":
    main()
