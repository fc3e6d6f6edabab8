"""``mmpo margins annotate``: a judge scores the chosen and the rejected response of every row.

Writes the rows with ``score_chosen``, ``score_rejected`` and the judge's raw text, ready for
``margin_source: scores``. Rows are appended as they are judged, so a re-run resumes: rows already in OUT
(by ``source_row``) are skipped. A row that fails (unparsable rating, empty response, API error after
retries) is reported with its row number and kept out of OUT, never silently.
"""

from __future__ import annotations

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


def run_annotate(params: AnnotateParams) -> dict[str, Any]:
    cfg = data_config_from_overrides(params.data_overrides)
    check_data_files([params.data])
    prompt = read_prompt_file(params.prompt_template) if params.prompt_template else DEFAULT_PROMPT
    out = Path(params.out)
    done = already_done(out)
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
