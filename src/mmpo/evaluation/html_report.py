"""``compare --out DIR`` as one self-contained page, ``DIR/index.html``: every image embedded, nothing fetched.

It gathers what the paper shows its claims with: the table of runs with their 95% intervals, the paired
differences to the first run, the overlaid reliability diagrams, each run's preference-logit history (the
implicit reward margin over training: the paper's overfitting figure), RewardBench sections (in the table),
MT-bench by category, and a sweep's curves and table when one is given.
"""

from __future__ import annotations

import base64
import html
from pathlib import Path

from mmpo.evaluation.compare import RunSummary

CATEGORY_PREFIX = "mt_bench/category/"
STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}"
    "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}"
    "th:first-child,td:first-child{text-align:left}figure{display:inline-block;margin:0.5em}"
    "img{max-width:520px}figcaption{font-size:0.9em;color:#555}"
)


def markdown_table_html(markdown: str) -> str:
    """A pipe table (and the note lines under it) as HTML; cells are escaped text."""
    rows, notes = [], []
    for line in markdown.splitlines():
        if line.startswith("|") and not set(line) <= set("|-: "):
            rows.append([html.escape(cell.strip()) for cell in line.strip().strip("|").split(" | ")])
        elif line.strip() and not line.startswith("|"):
            notes.append(f"<p>{html.escape(line)}</p>")
    if not rows:
        return "".join(notes)
    head = "".join(f"<th>{c}</th>" for c in rows[0])
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows[1:])
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>" + "".join(notes)


def embedded_image(path: Path, caption: str) -> str:
    data = base64.b64encode(path.read_bytes()).decode()
    alt = html.escape(caption)
    return f'<figure><img alt="{alt}" src="data:image/png;base64,{data}"><figcaption>{alt}</figcaption></figure>'


def category_table(runs: list[RunSummary]) -> str:
    categories = sorted({k[len(CATEGORY_PREFIX) :] for r in runs for k in r.values if k.startswith(CATEGORY_PREFIX)})
    if not categories:
        return ""
    lines = ["| run | " + " | ".join(categories) + " |", "|---|" + "---|" * len(categories)]
    for run in runs:
        cells = [run.values.get(CATEGORY_PREFIX + c) for c in categories]
        lines.append(f"| {run.name} | " + " | ".join("—" if v is None else f"{v:.2f}" for v in cells) + " |")
    return "\n".join(lines)


def write_html_report(
    path: Path,
    runs: list[RunSummary],
    table: str,
    reliability_pngs: dict[str, Path],
    sweep: Path | None = None,
) -> Path:
    sections = [f"<h1>{html.escape(', '.join(r.name for r in runs))}</h1>", "<h2>Runs</h2>", markdown_table_html(table)]
    if reliability_pngs:
        sections.append("<h2>Reliability</h2>")
        sections += [embedded_image(png, f"reliability: {where}") for where, png in reliability_pngs.items()]
    histories = [(r.name, r.history_png) for r in runs if r.history_png is not None]
    if histories:
        sections.append("<h2>Preference logit over training</h2>")
        sections += [embedded_image(png, f"{name}: mean preference logit h by step") for name, png in histories]
    categories = category_table(runs)
    if categories:
        sections += ["<h2>MT-bench by category</h2>", markdown_table_html(categories)]
    if sweep is not None:
        sections.append("<h2>Sweep</h2>")
        if (sweep / "sweep.md").is_file():
            sections.append(markdown_table_html((sweep / "sweep.md").read_text()))
        if (sweep / "sweep.png").is_file():
            sections.append(embedded_image(sweep / "sweep.png", "each metric against the swept key"))
    page = (
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>mmpo compare</title><style>{STYLE}</style>"
        f"</head><body>{''.join(sections)}</body></html>"
    )
    path.write_text(page)
    return path
