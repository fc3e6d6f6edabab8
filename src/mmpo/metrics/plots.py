"""Reliability-diagram PNGs (matplotlib, headless)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from mmpo.metrics.calibration import CalibrationBins  # noqa: E402


def plot_reliability(curves: dict[str, CalibrationBins], path: str | Path, title: str = "Reliability") -> Path:
    """One diagram with a line per model: accuracy vs confidence per bin (marker size = pairs in the bin),
    diagonal = perfect calibration."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(5, 5), dpi=120)
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", label="perfectly calibrated")
    for name, bins in curves.items():
        points = [(c, a, n) for c, a, n in zip(bins.confidence, bins.accuracy, bins.counts, strict=True) if n > 0]
        if points:
            xs, ys, ns = zip(*points, strict=True)
            (line,) = ax.plot(xs, ys, label=f"{name} (ECE {bins.ece:.3f})")
            # marker area ~ share of pairs in the bin: nearly empty bins should not look as trustworthy as full ones
            total = sum(ns)
            ax.scatter(xs, ys, s=[12 + 400 * n / total for n in ns], color=line.get_color(), alpha=0.8, zorder=3)
    ax.set_xlabel("predicted P(chosen better)")
    ax.set_ylabel("observed frequency")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_title(title)
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def plot_preference_logit_history(history: list[dict], path: str | Path) -> Path | None:
    """Mean preference logit h over training steps (train and eval): for a policy this is the implicit
    reward margin of the paper's overfitting analysis, which hard labels push up without bound."""
    series: dict[str, list[tuple[int, float]]] = {}
    for entry in history:
        for key in ("mean_preference_logit", "eval_mean_preference_logit"):
            if key in entry and "step" in entry:
                series.setdefault(key, []).append((entry["step"], entry[key]))
    if not series:
        return None
    path = Path(path)
    fig, ax = plt.subplots(figsize=(6, 4), dpi=120)
    for key, points in series.items():
        xs, ys = zip(*points, strict=True)
        ax.plot(xs, ys, marker=".", label=key)
    ax.set_xlabel("step")
    ax.set_ylabel("mean preference logit h")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def plot_sweep(
    x_key: str,
    x_values: list[str],
    lines: dict[str, dict[str, tuple[list[float], list[float]]]],
    path: str | Path,
) -> Path:
    """One panel per metric: its mean over seeds (error bars: one standard deviation) against the swept key,
    one line per setting of the other keys. x values are categories in the order swept, so gamma = inf sits at
    the right end like any other value."""
    path = Path(path)
    metrics = list(next(iter(lines.values())))
    fig, axes = plt.subplots(1, len(metrics), figsize=(4 * len(metrics), 3.5), dpi=120, squeeze=False)
    positions = list(range(len(x_values)))
    for ax, metric in zip(axes[0], metrics, strict=True):
        for label, by_metric in lines.items():
            means, stds = by_metric[metric]
            ax.errorbar(positions, means, yerr=stds, marker="o", capsize=3, label=label or None)
        ax.set_xticks(positions, x_values)
        ax.set_xlabel(x_key)
        ax.set_title(metric)
    if any(lines):
        axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
