"""A grid of training runs over config keys, and the choice of gamma (or any key) on the validation pairs.

The paper tuned gamma by hand per model and data set (2.2, 1.1, 0.15, 0.3). A sweep makes that choice a computed
one: ``loss.gamma=0.3,1,3,inf seed=1,2,3`` is a grid whose every cell is a normal run in its own folder (so a cell
resumes from its checkpoint, and a finished one is skipped), all of them sharing the sweep's cache of reference
log-probs and embeddings. Cells that differ only in the seed form one setting; the setting with the best mean over
seeds of the named criterion (soft-target NLL by default; ECE; accuracy) is selected.
"""

from __future__ import annotations

import itertools
import json
import math
import re
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mmpo.errors import ConfigError

CRITERIA = {"nll_soft": min, "ece": min, "accuracy": max, "brier_soft": min}
ALIASES = {"seed": "train.seed"}
SEED_KEY = "train.seed"
_LIST_VALUED = {"train.report_to", "lora.target_modules", "data.annotator_columns", "data.margin_quartiles"}


@dataclass(frozen=True)
class Cell:
    """One run of the grid: its settings (key -> value text) and its folder name."""

    settings: tuple[tuple[str, str], ...]

    @property
    def name(self) -> str:
        return "__".join(f"{k}={v}" for k, v in self.settings) or "base"

    @property
    def folder_name(self) -> str:
        return re.sub(r"[^\w.=+-]", "_", self.name)

    def overrides(self) -> list[str]:
        return [f"{k}={v}" for k, v in self.settings]

    def setting_without_seed(self) -> tuple[tuple[str, str], ...]:
        return tuple((k, v) for k, v in self.settings if k != SEED_KEY)


@dataclass
class SweepGrid:
    axes: dict[str, list[str]]  # key -> values, in the order given
    fixed: list[str] = field(default_factory=list)  # KEY=VALUE applied to every cell

    def cells(self) -> list[Cell]:
        keys = list(self.axes)
        return [Cell(tuple(zip(keys, values))) for values in itertools.product(*self.axes.values())]


def parse_grid(arguments: list[str]) -> SweepGrid:
    """``key=v1,v2`` is an axis, ``key=v`` a fixed setting (a list-valued key's commas stay its own)."""
    axes: dict[str, list[str]] = {}
    fixed: list[str] = []
    for argument in arguments:
        if "=" not in argument:
            raise ConfigError(f"sweep setting {argument!r} must look like key=value or key=v1,v2,...")
        key, raw = argument.split("=", 1)
        key = ALIASES.get(key.strip(), key.strip())
        values = [v.strip() for v in raw.split(",")]
        if len(values) > 1 and key not in _LIST_VALUED and not raw.strip().startswith("["):
            if not all(values):
                raise ConfigError(f"sweep axis {key}: an empty value in {raw!r}")
            if len(set(values)) != len(values):
                raise ConfigError(f"sweep axis {key}: a value is given twice in {raw!r}")
            if key in axes:
                raise ConfigError(f"sweep axis {key} is given twice")
            axes[key] = values
        else:
            fixed.append(f"{key}={raw}")
    if not axes:
        raise ConfigError("a sweep needs at least one axis, e.g. loss.gamma=0.3,1,3,inf")
    return SweepGrid(axes, fixed)


@dataclass(frozen=True)
class SettingResult:
    """The cells of one setting (all seeds): mean and standard deviation of each eval metric."""

    setting: tuple[tuple[str, str], ...]
    cells: tuple[str, ...]
    mean: dict[str, float]
    std: dict[str, float]


def summarize(cells: list[Cell], metrics_by_cell: dict[str, dict[str, float]]) -> list[SettingResult]:
    by_setting: dict[tuple, list[Cell]] = {}
    for cell in cells:
        by_setting.setdefault(cell.setting_without_seed(), []).append(cell)
    results = []
    for setting, members in by_setting.items():
        mean, std = {}, {}
        for metric in CRITERIA:
            values = [
                metrics_by_cell[c.name][f"eval_{metric}"]
                for c in members
                if f"eval_{metric}" in metrics_by_cell[c.name]
            ]
            values = [v for v in values if not math.isnan(v)]
            if values:
                mean[metric] = statistics.fmean(values)
                std[metric] = statistics.stdev(values) if len(values) > 1 else 0.0
        results.append(SettingResult(setting, tuple(c.name for c in members), mean, std))
    return results


def select(results: list[SettingResult], criterion: str) -> SettingResult:
    if criterion not in CRITERIA:
        raise ConfigError(f"--select {criterion!r}; choose one of {sorted(CRITERIA)}")
    scored = [r for r in results if criterion in r.mean]
    if not scored:
        raise ConfigError(f"no cell reported eval_{criterion}; a sweep needs data.eval_path")
    return CRITERIA[criterion](scored, key=lambda r: r.mean[criterion])


def markdown(results: list[SettingResult], chosen: SettingResult, criterion: str) -> str:
    keys = [k for k, _ in results[0].setting]
    metrics = [m for m in CRITERIA if any(m in r.mean for r in results)]
    lines = ["| " + " | ".join([*keys, "runs", *metrics]) + " |", "|" + "---|" * (len(keys) + 1 + len(metrics))]
    for r in results:
        cells = [v for _, v in r.setting] + [str(len(r.cells))]
        cells += [f"{r.mean[m]:.4f} ± {r.std[m]:.4f}" if m in r.mean else "—" for m in metrics]
        marker = " (selected)" if r is chosen else ""
        lines.append("| " + " | ".join(cells) + f" |{marker}")
    lines += ["", f"mean ± standard deviation over seeds; selected by eval {criterion}"]
    return "\n".join(lines)


def setting_record(result: SettingResult) -> dict[str, Any]:
    return {"setting": dict(result.setting), "runs": list(result.cells), "mean": result.mean, "std": result.std}


def write_sweep_json(path: Path, results: list[SettingResult], chosen: SettingResult, criterion: str) -> None:
    record = {
        "criterion": criterion,
        "selected": setting_record(chosen),
        "settings": [setting_record(r) for r in results],
    }
    path.write_text(json.dumps(record, indent=2))
