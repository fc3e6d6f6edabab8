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
from mmpo.metrics.bootstrap import METRICS, Difference, paired_differences
from mmpo.metrics.calibration import CalibrationBins
from mmpo.metrics.pair_scores import PAIR_SCORES_FILE, TRAINING_PAIR_SCORES_FILE, read_pair_scores

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
    intervals: dict[str, list[float]] = field(default_factory=dict)  # report key -> 95% bootstrap interval
    # where measured ("held-out", "RewardBench") -> pair key -> (margin, h)
    pair_scores: dict[str, dict[str, tuple[float, float]]] = field(default_factory=dict)
    history_png: Path | None = None  # a training run's preference-logit history


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
        if (path / TRAINING_PAIR_SCORES_FILE).is_file():  # an eval's pair_scores.jsonl comes with its report.json
            summary.pair_scores.setdefault(HELD_OUT, {}).update(read_pair_scores(path / TRAINING_PAIR_SCORES_FILE))
        if (path / HISTORY_PNG).is_file():
            summary.history_png = path / HISTORY_PNG
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
    summary.intervals.update(data.get("intervals") or {})
    if path.name == "report.json" and (path.parent / PAIR_SCORES_FILE).is_file():
        summary.pair_scores.setdefault(HELD_OUT, {}).update(read_pair_scores(path.parent / PAIR_SCORES_FILE))
    if data.get("benchmark") == "rewardbench" and (path.parent / "results.jsonl").is_file():
        summary.pair_scores[REWARDBENCH] = rewardbench_pair_scores(path.parent / "results.jsonl")
    prior = _bins(data.get("prior_sets/reliability_bins"))
    if prior is not None:
        summary.reliability["Prior Sets"] = prior
    pairs = _bins(data.get("reliability_bins"))
    if pairs is not None:
        summary.reliability["held-out"] = pairs


def parse_run_argument(text: str) -> RunSummary:
    """``PATH`` or ``NAME=PATH[,PATH...]``."""
    # NAME is what comes before the first '=', unless the text is a path itself (sweep folders hold '=')
    name, _, paths = text.partition("=")
    if Path(text).exists() or not paths or "/" in name:
        name, paths = "", text
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
            cell = "—" if value is None or value != value else fmt.format(value)
            interval = run.intervals.get(key)
            if interval and value == value and value is not None:
                cell += " [" + ", ".join(fmt.format(bound) for bound in interval) + "]"
            cells.append(cell)
        lines.append(f"| {run.name} | " + " | ".join(cells) + " |")
    if any(run.intervals for run in runs):
        lines += ["", "Brackets: 95% bootstrap intervals over the evaluated pairs."]
    return "\n".join(lines)


@dataclass(frozen=True)
class PairedComparison:
    baseline: str
    run: str
    where: str  # HELD_OUT or REWARDBENCH
    pairs: int
    differences: dict[str, Difference]


def rewardbench_pair_scores(results: Path) -> dict[str, tuple[float, float]]:
    """``results.jsonl`` of ``mmpo eval --benchmark rewardbench`` as pair scores: every pair's chosen response is
    the better one (margin 1), h = score_chosen - score_rejected (a policy's without beta: only its sign, and so
    accuracy, compares across runs)."""
    scores = {}
    for line in results.read_text().splitlines():
        if line.strip():
            row = json.loads(line)
            scores[f"{row['subset']}#{row['id']}"] = (1.0, float(row["score_chosen"]) - float(row["score_rejected"]))
    return scores


MIN_SHARED_PAIRS = 20
HELD_OUT, REWARDBENCH = "held-out", "RewardBench"
HISTORY_PNG = "preference_logit_history.png"


def paired_comparisons(runs: list[RunSummary], gamma: float = 1.0) -> list[PairedComparison]:
    """Every run against the first on the pairs both were scored on (paired bootstrap), held-out pairs and
    RewardBench apart; where fewer than MIN_SHARED_PAIRS pairs are shared, there is no comparison."""
    if len(runs) < 2:
        return []
    baseline = runs[0]
    comparisons = []
    for run in runs[1:]:
        for where in (HELD_OUT, REWARDBENCH):
            ours, theirs = baseline.pair_scores.get(where, {}), run.pair_scores.get(where, {})
            shared = sorted(set(ours) & set(theirs))
            if len(shared) < MIN_SHARED_PAIRS:
                continue
            margins = [ours[k][0] for k in shared]
            if margins != [theirs[k][0] for k in shared]:
                raise ConfigError(
                    f"{baseline.name} and {run.name} give the same pairs different margins; not the same data"
                )
            h_a, h_b = [ours[k][1] for k in shared], [theirs[k][1] for k in shared]
            differences = paired_differences(h_a, h_b, margins, gamma)
            if where == REWARDBENCH:  # scores without a policy's beta: only accuracy is comparable
                differences = {"accuracy": differences["accuracy"]}
            comparisons.append(PairedComparison(baseline.name, run.name, where, len(shared), differences))
    return comparisons


def differences_table(comparisons: list[PairedComparison]) -> str:
    """run - baseline per metric: the estimate, its paired 95% interval and the two-sided p-value."""
    if not comparisons:
        return ""
    header = "| run - baseline | on | pairs | " + " | ".join(METRICS) + " |"
    lines = [header, "|---|---|---|" + "---|" * len(METRICS)]
    for c in comparisons:
        cells = [
            f"{d.estimate:+.3f} [{d.interval.low:+.3f}, {d.interval.high:+.3f}] p={d.p_value:.3f}" if d else "—"
            for d in (c.differences.get(m) for m in METRICS)
        ]
        lines.append(f"| {c.run} - {c.baseline} | {c.where} | {c.pairs} | " + " | ".join(cells) + " |")
    lines += ["", "Paired bootstrap over the pairs both runs scored; p: two-sided, for no difference."]
    return "\n".join(lines)
