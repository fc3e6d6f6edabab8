"""Reliability diagrams, training curves, sweep curves and margin diagnostics as PNGs (matplotlib, headless)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib
import numpy as np

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


def spearman(a: Sequence[float], b: Sequence[float]) -> float:
    """Spearman's rank correlation (average ranks for ties); NaN when either side is constant."""
    ranks = [_average_ranks(np.asarray(v, dtype=np.float64)) for v in (a, b)]
    if min(r.std() for r in ranks) == 0:
        return float("nan")
    return float(np.corrcoef(*ranks)[0, 1])


def _average_ranks(values: np.ndarray) -> np.ndarray:
    """0-based ranks, ties sharing the mean of their ranks, in O(n log n)."""
    _, inverse, counts = np.unique(values, return_inverse=True, return_counts=True)
    first = np.cumsum(counts) - counts  # rank of each distinct value's first occurrence
    return (first + (counts - 1) / 2.0)[inverse]


def plot_margin_diagnostics(
    margins: Sequence[float],
    path: str | Path,
    cosines: Sequence[float] | None = None,
    implicit: Sequence[float] | None = None,
    implicit_name: str = "policy",
) -> Path:
    """One figure, a panel each: the distribution of the data's margins (ties apart); the margin against how alike the
    two responses are (cosine of their sentence embeddings, the MMPO paper's Figure 7: near-identical responses
    should carry small margins); and a trained policy's implicit margin h = beta * delta against the data's margin."""
    panels = 1 + (cosines is not None) + (implicit is not None)
    fig, axes = plt.subplots(1, panels, figsize=(4.6 * panels, 4), dpi=120, squeeze=False)
    axes = list(axes[0])
    margins = np.asarray(margins, dtype=np.float64)
    ax = axes.pop(0)
    ties = int((margins == 0).sum())
    ax.hist(margins, bins=min(40, max(5, len(np.unique(margins)))), color="tab:blue", alpha=0.8)
    ax.set_xlabel("margin m")
    ax.set_ylabel("pairs")
    ax.set_title(f"{len(margins)} pairs, {ties} ties")
    for values, label in (
        (cosines, "cosine similarity of y_w and y_l"),
        (implicit, f"implicit margin h ({implicit_name})"),
    ):
        if values is None:
            continue
        ax = axes.pop(0)
        values = np.asarray(values, dtype=np.float64)
        ax.scatter(values, margins, s=8, alpha=0.5)
        edges = np.quantile(values, np.linspace(0, 1, 9))
        centers, means = [], []
        for i, (low, high) in enumerate(zip(edges[:-1], edges[1:], strict=True)):
            inside = (values >= low) & ((values < high) if i < len(edges) - 2 else (values <= high))
            if inside.any():
                centers.append(values[inside].mean())
                means.append(margins[inside].mean())
        ax.plot(centers, means, color="tab:red", marker="o", label="mean margin per octile")
        ax.set_xlabel(label)
        ax.set_ylabel("margin m")
        ax.set_title(f"Spearman {spearman(values, margins):.3f}")
        ax.legend(fontsize=8)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path
