"""The embedded default: MMPO reward model vs a hard-label Bradley-Terry baseline, same everything else.

Both are trained from the bundled all-MiniLM-L6-v2 encoder on the shared UltraFeedback pairs and
evaluated on the 200 held-out pairs; the table shows accuracy (non-tied pairs), ECE (10 equal-width
bins, symmetrised) and soft-target NLL, and one reliability diagram overlays both models.
"""

from __future__ import annotations

from pathlib import Path

from mmpo.config import RunConfig, load_config
from mmpo.evaluation.metrics import pairwise_calibration
from mmpo.evaluation.reliability import plot_reliability
from mmpo.paths import resolve_config_path
from mmpo.training.run import TrainResult, train_from_config

DEMO_LOSSES = {"MMPO (soft targets)": "mmpo", "BT (hard labels)": "bt"}


def demo_config(output_dir: str, loss_type: str, overrides: list[str], seed: int) -> RunConfig:
    return load_config(
        resolve_config_path("embedded_reward"),
        [*overrides, f"loss.loss_type={loss_type}", f"train.output_dir={output_dir}/{loss_type}", f"train.seed={seed}"],
    )


def format_table(results: dict[str, TrainResult]) -> str:
    rows = ["| model | eval accuracy | eval ECE | eval NLL (soft targets) |", "|---|---|---|---|"]
    for name, result in results.items():
        m = result.metrics
        rows.append(f"| {name} | {m['eval_accuracy']:.3f} | {m['eval_ece']:.3f} | {m['eval_nll_soft']:.3f} |")
    return "\n".join(rows)


def run_demo(output_dir: str = "outputs/embedded_reward", overrides: list[str] | None = None, seed: int = 42) -> dict:
    results: dict[str, TrainResult] = {}
    for name, loss_type in DEMO_LOSSES.items():
        print(f"== training {name} ==", flush=True)
        results[name] = train_from_config(demo_config(output_dir, loss_type, overrides or [], seed))
    gamma = demo_config(output_dir, "mmpo", overrides or [], seed).loss.gamma
    png = plot_reliability(
        {name: pairwise_calibration(r.eval_logits, r.eval_margins) for name, r in results.items()},
        Path(output_dir) / "reliability_mmpo_vs_bt.png",
        title="UltraFeedback eval (200 pairs), MiniLM reward models",
    )
    print()
    print(f"Held-out UltraFeedback pairs, soft targets with gamma={gamma:g}:")
    print(format_table(results))
    print(f"reliability diagram: {png}")
    print(f"TensorBoard: tensorboard --logdir {output_dir}")
    return {"results": results, "reliability_png": png}
