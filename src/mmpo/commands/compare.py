"""``mmpo compare``: several runs' reports as one markdown table and overlaid reliability diagrams."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mmpo.errors import ConfigError
from mmpo.evaluation.compare import markdown_table, parse_run_argument
from mmpo.file_errors import ensure_writable_folder
from mmpo.metrics.plots import plot_reliability


@dataclass(frozen=True)
class CompareParams:
    runs: list[str]
    out: str = ""


def run_compare(params: CompareParams) -> dict[str, Any]:
    runs = [parse_run_argument(text) for text in params.runs]
    given: dict[str, str] = {}
    for text, run in zip(params.runs, runs, strict=True):
        if run.name in given:  # rows and reliability curves are keyed by name: one would hide the other
            raise ConfigError(
                f"two runs are named {run.name!r} ({given[run.name]} and {text}); name them apart with NAME=PATH"
            )
        given[run.name] = text
    if params.out:
        ensure_writable_folder(params.out, "--out")
    table = markdown_table(runs)
    result: dict[str, Any] = {"table": table, "runs": [r.name for r in runs]}
    if params.out:
        out = Path(params.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "compare.md").write_text(table + "\n")
        result["markdown"] = str(out / "compare.md")
        for where in sorted({w for r in runs for w in r.reliability}):
            curves = {r.name: r.reliability[where] for r in runs if where in r.reliability}
            slug = where.lower().replace(" ", "_").replace("-", "_")
            png = plot_reliability(curves, out / f"reliability_{slug}.png", title=f"Reliability: {where}")
            result[f"reliability_png/{slug}"] = str(png)
    return result
