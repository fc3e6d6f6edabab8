"""``mmpo sweep KIND --config C loss.gamma=0.3,1,3,inf seed=1,2,3 [key=value ...] --out DIR``.

Every cell of the grid is validated before the first one trains, then trained in turn as ``mmpo train`` would
(its own folder under DIR, resumable; a finished cell is read back, not trained again; all cells share DIR/cache).
DIR gets ``sweep.json`` (every setting's mean and standard deviation over seeds, and the one selected),
``sweep.md`` (the table) and ``sweep.png`` (each metric against the first swept key).
"""

from __future__ import annotations

import dataclasses
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mmpo.config.loading import load_config
from mmpo.config.paths import resolve_config_path
from mmpo.config.saved_run import SavedRun
from mmpo.config.schema import RunConfig
from mmpo.distributed import is_main_process
from mmpo.errors import ConfigError
from mmpo.file_errors import ensure_writable_folder
from mmpo.metrics.plots import plot_sweep
from mmpo.training.run import train_from_config
from mmpo.training.sweep import (
    CRITERIA,
    SEED_KEY,
    Cell,
    SettingResult,
    markdown,
    parse_grid,
    select,
    setting_record,
    summarize,
    write_sweep_json,
)

logger = logging.getLogger("mmpo")
METRICS_FILE = "eval_metrics.json"


@dataclass(frozen=True)
class SweepParams:
    kind: str
    config: str | None
    arguments: list[str] = field(default_factory=list)
    out: str = "outputs/sweep"
    criterion: str = "nll_soft"


def finished_metrics(cfg: RunConfig) -> dict[str, float] | None:
    """The metrics of a cell that already finished under exactly this config, else None (train it)."""
    folder = Path(cfg.train.output_dir)
    saved = SavedRun.read(folder) if (folder / METRICS_FILE).is_file() else None
    if saved is None or dataclasses.asdict(saved.config) != dataclasses.asdict(cfg):
        return None
    return json.loads((folder / METRICS_FILE).read_text())


def _plot(results: list[SettingResult], axes: dict[str, list[str]], out: Path) -> Path | None:
    swept = [k for k in axes if k != SEED_KEY]
    if not swept:
        return None
    x_key, others = swept[0], swept[1:]
    lines: dict[str, dict[str, tuple[list[float], list[float]]]] = {}
    for result in results:
        setting = dict(result.setting)
        label = ", ".join(f"{k}={setting[k]}" for k in others)
        by_metric = lines.setdefault(label, {m: ([], []) for m in CRITERIA if m in result.mean})
        for metric, (means, stds) in by_metric.items():
            means.append(result.mean.get(metric, float("nan")))
            stds.append(result.std.get(metric, 0.0))
    return plot_sweep(x_key, axes[x_key], lines, out / "sweep.png")


def run_sweep(params: SweepParams) -> dict[str, Any]:
    if params.criterion not in CRITERIA:
        raise ConfigError(f"--select {params.criterion!r}; choose one of {sorted(CRITERIA)}")
    grid = parse_grid(params.arguments)
    config_path = resolve_config_path(params.config) if params.config else None
    out = Path(params.out)
    cells: list[tuple[Cell, RunConfig]] = []
    for cell in grid.cells():  # every cell's settings are checked before anything trains
        folder = out / cell.folder_name
        cfg = load_config(config_path, [*grid.fixed, *cell.overrides(), f"train.output_dir={folder}"], params.kind)
        if not cfg.data.eval_path:
            raise ConfigError("a sweep selects on validation pairs; set data.eval_path")
        cells.append((cell, cfg))
    ensure_writable_folder(out, "--out")
    metrics: dict[str, dict[str, float]] = {}
    for index, (cell, cfg) in enumerate(cells, start=1):
        done = finished_metrics(cfg)
        logger.info("sweep %d/%d: %s%s", index, len(cells), cell.name, " (done, read back)" if done else "")
        metrics[cell.name] = done if done is not None else train_from_config(cfg).metrics
    results = summarize([c for c, _ in cells], metrics)
    chosen = select(results, params.criterion)
    summary: dict[str, Any] = {
        "criterion": params.criterion,
        "selected": setting_record(chosen),
        "cells": len(cells),
        "out": str(out),
    }
    if is_main_process():
        write_sweep_json(out / "sweep.json", results, chosen, params.criterion)
        (out / "sweep.md").write_text(markdown(results, chosen, params.criterion) + "\n")
        png = _plot(results, grid.axes, out)
        summary["table"] = str(out / "sweep.md")
        summary["plot"] = str(png) if png else None
    return summary
