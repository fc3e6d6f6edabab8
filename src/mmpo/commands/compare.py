"""``mmpo compare``: several runs' reports as one markdown table and overlaid reliability diagrams."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mmpo.errors import ConfigError
from mmpo.evaluation.compare import differences_table, markdown_table, paired_comparisons, parse_run_argument
from mmpo.evaluation.html_report import write_html_report
from mmpo.file_errors import ensure_writable_folder
from mmpo.metrics.plots import plot_reliability


@dataclass(frozen=True)
class CompareParams:
    runs: list[str]
    out: str = ""
    sweep: str = ""  # a sweep's folder, for the report


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
    if params.sweep and not (Path(params.sweep) / "sweep.json").is_file():
        raise ConfigError(f"--sweep {params.sweep}: no sweep.json there (the --out folder of mmpo sweep)")
    table = markdown_table(runs)
    gamma = runs[0].values.get("target_gamma", runs[0].values.get("eval_target_gamma", 1.0))
    comparisons = paired_comparisons(runs, gamma)
    if comparisons:
        table += "\n\n" + differences_table(comparisons)
    result: dict[str, Any] = {"table": table, "runs": [r.name for r in runs]}
    result["differences"] = [
        {
            "run": c.run,
            "baseline": c.baseline,
            "on": c.where,
            "pairs": c.pairs,
            **{
                m: {"estimate": d.estimate, "interval": d.interval.as_list(), "p_value": d.p_value}
                for m, d in c.differences.items()
            },
        }
        for c in comparisons
    ]
    if params.out:
        out = Path(params.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "compare.md").write_text(table + "\n")
        result["markdown"] = str(out / "compare.md")
        pngs: dict[str, Path] = {}
        for where in sorted({w for r in runs for w in r.reliability}):
            curves = {r.name: r.reliability[where] for r in runs if where in r.reliability}
            slug = where.lower().replace(" ", "_").replace("-", "_")
            png = plot_reliability(curves, out / f"reliability_{slug}.png", title=f"Reliability: {where}")
            result[f"reliability_png/{slug}"] = str(png)
            pngs[where] = png
        sweep = Path(params.sweep) if params.sweep else None
        result["html"] = str(write_html_report(out / "index.html", runs, table, pngs, sweep))
    return result
