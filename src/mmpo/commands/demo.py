"""The embedded defaults: MMPO next to its hard-label limit, same everything else.

``mmpo demo`` (reward): reward heads on the bundled all-MiniLM-L6-v2 encoder, trained on the shared
UltraFeedback pairs with MMPO soft targets and with hard Bradley-Terry labels.
``mmpo demo --kind policy``: SmolLM2-135M-Instruct trained with MMPO and with DPO on a small subset; the
DPO run reuses the cached reference log-probs of the MMPO run.
Both print held-out accuracy (non-tied pairs), ECE (10 equal-width bins, symmetrised) and soft-target
NLL, and one reliability diagram overlays the two models.
"""

from __future__ import annotations

import sys
from pathlib import Path

from mmpo.config.loading import load_config
from mmpo.config.paths import resolve_config_path
from mmpo.config.schema import RunConfig
from mmpo.metrics.calibration import pairwise_calibration
from mmpo.metrics.plots import plot_reliability
from mmpo.results_output import results_stream
from mmpo.training.run import TrainResult, train_from_config

DEMOS: dict[str, tuple[str, dict[str, str]]] = {
    "reward": ("embedded_reward", {"MMPO (soft targets)": "mmpo", "BT (hard labels)": "bt"}),
    "policy": ("embedded_policy", {"MMPO (soft targets)": "mmpo", "DPO (hard labels)": "dpo"}),
}


def demo_config(config_name: str, output_dir: str, loss_type: str, overrides: list[str], seed: int) -> RunConfig:
    return load_config(
        resolve_config_path(config_name),
        [*overrides, f"loss.loss_type={loss_type}", f"train.output_dir={output_dir}/{loss_type}", f"train.seed={seed}"],
    )


def format_table(results: dict[str, TrainResult]) -> str:
    rows = ["| model | eval accuracy | eval ECE | eval NLL (soft targets) |", "|---|---|---|---|"]
    for name, result in results.items():
        m = result.metrics
        rows.append(f"| {name} | {m['eval_accuracy']:.3f} | {m['eval_ece']:.3f} | {m['eval_nll_soft']:.3f} |")
    return "\n".join(rows)


def run_demo(
    output_dir: str | None = None, overrides: list[str] | None = None, seed: int = 42, kind: str = "reward"
) -> dict:
    config_name, variants = DEMOS[kind]
    output_dir = output_dir or f"outputs/{config_name}"
    results: dict[str, TrainResult] = {}
    configs = {
        name: demo_config(config_name, output_dir, loss, overrides or [], seed) for name, loss in variants.items()
    }
    for name, cfg in configs.items():
        print(f"== training {name} ==", file=sys.stderr, flush=True)
        results[name] = train_from_config(cfg)
    first = next(iter(configs.values()))
    png = plot_reliability(
        {name: pairwise_calibration(r.eval_preference_logits, r.eval_margins) for name, r in results.items()},
        Path(output_dir) / f"reliability_{'_vs_'.join(variants.values())}.png",
        title=f"{Path(first.data.eval_path).name}: {kind} models",
    )
    out = results_stream()
    print(
        f"Held-out pairs ({Path(first.data.eval_path).name}), soft targets with gamma={first.eval_target_gamma:g}:",
        file=out,
    )
    print(format_table(results), file=out)
    print(f"reliability diagram: {png}", file=out)
    print(f"TensorBoard: tensorboard --logdir {output_dir}", file=out)
    return {"results": results, "reliability_png": png}
