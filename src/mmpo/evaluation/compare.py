"""Several runs side by side: one markdown table (the one a user pastes into a paper) and one reliability
diagram overlaying their calibration curves.

A run is a training output folder (``eval_metrics.json``, ``eval_reliability.json``), a folder or file with
an ``mmpo eval`` ``report.json`` (pairs or RewardBench), or an ``mmpo judge mt-bench`` summary
(``mt_bench.json``); ``NAME=PATH,PATH`` merges several of them into one row.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mmpo.errors import ConfigError
from mmpo.metrics.calibration import CalibrationBins

# (column title, report key, format); a column appears when any run has its key
COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("held-out acc.", "eval_accuracy", "{:.3f}"),
    ("held-out ECE", "eval_ece", "{:.3f}"),
    ("held-out NLL", "eval_nll_soft", "{:.3f}"),
    ("acc.", "accuracy", "{:.3f}"),
    ("ECE", "ece", "{:.3f}"),
    ("NLL (soft)", "nll_soft", "{:.3f}"),
    ("Chat", "section/Chat", "{:.1%}"),
    ("Chat Hard", "section/Chat Hard", "{:.1%}"),
    ("Safety", "section/Safety", "{:.1%}"),
    ("Reasoning", "section/Reasoning", "{:.1%}"),
    ("Prior Sets", "section/Prior Sets", "{:.1%}"),
    ("RB 4-section mean", "score_4_section_mean", "{:.1%}"),
    ("RB v1 score", "score_v1_leaderboard", "{:.1%}"),
    ("Prior Sets ECE", "prior_sets/ece", "{:.3f}"),
    ("MT-bench turn 1", "mt_bench/turn_1", "{:.2f}"),
    ("MT-bench turn 2", "mt_bench/turn_2", "{:.2f}"),
    ("MT-bench", "mt_bench/overall", "{:.2f}"),
    ("MT-bench win rate (adj.)", "mt_bench/pair/win_rate_adjusted", "{:.1%}"),
)


@dataclass
class RunSummary:
    name: str
    values: dict[str, Any] = field(default_factory=dict)
    reliability: dict[str, CalibrationBins] = field(default_factory=dict)  # by where it was measured


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path}: not a readable JSON report ({exc})") from None


def _bins(raw: dict[str, Any] | None) -> CalibrationBins | None:
    if not raw:
        return None
    nan = float("nan")
    return CalibrationBins(
        edges=[],
        confidence=[nan if c is None else c for c in raw["confidence"]],
        accuracy=[nan if a is None else a for a in raw["accuracy"]],
        counts=raw["counts"],
        ece=raw.get("ece", nan),
    )


def read_source(path: Path, summary: RunSummary) -> None:
    """Merge one run folder or report file into ``summary``."""
    if path.is_dir():
        found = False
        for name in ("eval_metrics.json", "report.json", "mt_bench.json", "mt_bench_pair.json"):
            if (path / name).is_file():
                read_source(path / name, summary)
                found = True
        if (path / "eval_reliability.json").is_file():
            bins = _bins(_read_json(path / "eval_reliability.json"))
            if bins is not None:
                summary.reliability["held-out"] = bins
        if not found:
            raise ConfigError(f"{path}: no eval_metrics.json, report.json or mt_bench.json inside")
        return
    if not path.is_file():
        raise ConfigError(f"{path} does not exist")
    data = _read_json(path)
    summary.values.update({k: v for k, v in data.items() if isinstance(v, (int, float)) and not isinstance(v, bool)})
    prior = _bins(data.get("prior_sets/reliability_bins"))
    if prior is not None:
        summary.reliability["Prior Sets"] = prior
    pairs = _bins(data.get("reliability_bins"))
    if pairs is not None:
        summary.reliability["held-out"] = pairs


def parse_run_argument(text: str) -> RunSummary:
    """``PATH`` or ``NAME=PATH[,PATH...]``."""
    name, _, paths = text.rpartition("=") if "=" in text else ("", "", text)
    sources = [Path(p) for p in paths.split(",") if p]
    if not sources:
        raise ConfigError(f"{text!r} names no run or report")
    summary = RunSummary(name or (sources[0].name if sources[0].is_dir() else sources[0].parent.name))
    for source in sources:
        read_source(source, summary)
    return summary


def markdown_table(runs: list[RunSummary]) -> str:
    columns = [c for c in COLUMNS if any(c[1] in r.values for r in runs)]
    if not columns:
        raise ConfigError("none of the runs has a metric to compare")
    lines = ["| run | " + " | ".join(c[0] for c in columns) + " |", "|---|" + "---|" * len(columns)]
    for run in runs:
        cells = []
        for _, key, fmt in columns:
            value = run.values.get(key)
            cells.append("—" if value is None or value != value else fmt.format(value))
        lines.append(f"| {run.name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
