"""``mmpo margins annotate``: a judge scores the chosen and the rejected response of every row.

Writes the rows with ``score_chosen``, ``score_rejected`` and the judge's raw text, ready for
``margin_source: scores``. Rows are appended as they are judged, so a re-run resumes: rows already in OUT
(by ``source_row``) are skipped. A row that fails (unparsable rating, empty response, API error after
retries) is reported with its row number and kept out of OUT, never silently.

Resuming is only right into the same experiment: ``OUT.provenance.json`` records what OUT is made from (the input
file's content hash, the judge, the prompt and the columns), and a run with another input or judge or prompt is
refused instead of appending rows that ``source_row`` would mix with the old ones. OUT may not be the input file.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mmpo.config.loading import data_config_from_overrides
from mmpo.data.io import check_data_files, json_lines, load_records
from mmpo.data.reading import EmptyText, read_text
from mmpo.errors import DataError
from mmpo.evaluation.judges import DEFAULT_PROMPT, JudgeRequest, JudgeSettings, make_judge, read_prompt_file
from mmpo.file_errors import ensure_writable_folder
from mmpo.progress import progress

logger = logging.getLogger("mmpo")
CHUNK_ROWS = 16


@dataclass(frozen=True)
class AnnotateParams:
    data: str
    out: str
    judge: JudgeSettings
    data_overrides: list[str] = field(default_factory=list)
    prompt_template: str = ""
    limit: int = 0


def as_text(value: Any) -> str:
    """Plain text of a prompt or response: chat messages as 'role: content' lines, or the last reply."""
    if isinstance(value, str):
        return value
    return "\n".join(f"{m.get('role', 'user')}: {m.get('content', '')}" for m in value if isinstance(m, Mapping))


def already_done(out: Path) -> set[int]:
    """source_row of every row OUT holds; a broken line (a killed run mid-write) is an error naming it."""
    if not out.exists():
        return set()
    not_annotated = "is not an annotated row; remove it to resume"
    done = set()
    for number, row in json_lines(out, not_annotated):
        try:
            done.add(int(row["source_row"]))
        except (ValueError, KeyError, TypeError):
            raise DataError(f"{out}: line {number} {not_annotated}") from None
    return done


def provenance(params: AnnotateParams, cfg, prompt) -> dict[str, str]:
    """What OUT's rows are made from; equal provenance is what makes appending to OUT a resume."""
    digest = hashlib.sha256()
    with Path(params.data).open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    prompt_text = json.dumps([prompt.system_prompt, prompt.prompt_template, prompt.rating_regex])
    return {
        "data": str(params.data),
        "data_sha256": digest.hexdigest(),
        "judge": params.judge.spec,
        "prompt_sha256": hashlib.sha256(prompt_text.encode()).hexdigest(),
        "columns": ",".join((cfg.prompt_column, cfg.chosen_column, cfg.rejected_column)),
    }


def check_resumes_the_same_work(out: Path, made_from: dict[str, str], has_rows: bool) -> None:
    """Refuse to append to an OUT made from another input file, judge, prompt or columns (one line, naming it)."""
    record = out.with_name(out.name + ".provenance.json")
    if not has_rows:
        return
    if not record.exists():
        raise DataError(
            f"{out} already holds rows but no {record.name} saying what they were made from; choose another --out "
            "(or remove it to start over)"
        )
    before = json.loads(record.read_text())
    changed = [key for key in made_from if key != "data" and before.get(key) != made_from[key]]
    if changed:
        names = {"data_sha256": "input file", "judge": "judge", "prompt_sha256": "prompt", "columns": "columns"}
        shown = ("judge", "columns")  # short enough to show; hashes are not
        differences = [
            f"{names[k]} ({before.get(k)} then, {made_from[k]} now)" if k in shown else names[k] for k in changed
        ]
        raise DataError(
            f"{out} was made from {before.get('data')} with another {', '.join(differences)}; choose another --out"
        )


def run_annotate(params: AnnotateParams) -> dict[str, Any]:
    cfg = data_config_from_overrides(params.data_overrides)
    check_data_files([params.data])
    out = Path(params.out)
    if out.exists() and out.resolve() == Path(params.data).resolve():
        raise DataError(f"--out {out} is the input file; annotated rows go to a file of their own")
    ensure_writable_folder(out.parent, "--out's folder")
    prompt = read_prompt_file(params.prompt_template) if params.prompt_template else DEFAULT_PROMPT
    made_from = provenance(params, cfg, prompt)
    done = already_done(out)
    check_resumes_the_same_work(out, made_from, bool(done))
    records = load_records(params.data)
    todo: list[tuple[int, dict, str, str, str]] = []
    failed: dict[int, str] = {}
    for i, row in enumerate(records):
        if i in done:
            continue
        if params.limit and len(todo) + len(failed) >= params.limit:
            break
        try:
            texts = [
                as_text(read_text(row, column, i))
                for column in (cfg.prompt_column, cfg.chosen_column, cfg.rejected_column)
            ]
        except EmptyText as exc:
            failed[i] = str(exc).split(";")[0].removeprefix(f"row {i}: ")
            continue
        todo.append((i, row, *texts))
    judge = make_judge(params.judge) if todo else None
    written = 0
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_name(out.name + ".provenance.json").write_text(json.dumps(made_from, indent=2))
    with out.open("a", encoding="utf-8") as handle:
        chunks = [todo[k : k + CHUNK_ROWS] for k in range(0, len(todo), CHUNK_ROWS)]
        for chunk in progress(chunks, "judging rows"):
            requests = []
            for _, _, question, chosen, rejected in chunk:
                for answer in (chosen, rejected):
                    user = prompt.prompt_template.format(question=question, answer=answer)
                    requests.append(JudgeRequest(prompt.system_prompt, user, question, answer, prompt.rating_regex))
            replies = judge.judge(requests)
            for (i, row, *_), chosen_reply, rejected_reply in zip(chunk, replies[0::2], replies[1::2], strict=True):
                bad = [
                    (side, r) for side, r in (("chosen", chosen_reply), ("rejected", rejected_reply)) if r.score is None
                ]
                if bad:
                    failed[i] = "; ".join(f"{side}: {r.error}" for side, r in bad)
                    continue
                annotated = {
                    **row,
                    "source_row": i,
                    "score_chosen": chosen_reply.score,
                    "score_rejected": rejected_reply.score,
                    "judge": params.judge.spec,
                    "judgment_chosen": chosen_reply.text,
                    "judgment_rejected": rejected_reply.text,
                }
                handle.write(json.dumps(annotated, ensure_ascii=False, default=str) + "\n")
                handle.flush()
                written += 1
    for i, reason in sorted(failed.items()):
        logger.warning("row %d not annotated: %s", i, reason)
    return {
        "rows": len(records),
        "already_annotated": len(done),
        "annotated": written,
        "failed": len(failed),
        "failed_rows": sorted(failed)[:50],
        "out": str(out),
    }
