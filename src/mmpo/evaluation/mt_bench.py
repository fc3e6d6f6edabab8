"""MT-bench as in FastChat's llm_judge: answers to both turns, single-answer grading, and the summary.

File formats are FastChat's, so either tool reads the other's files:
  * answers (``model_answer/<model>.jsonl``): ``{"question_id", "answer_id", "model_id",
    "choices": [{"index": 0, "turns": [turn1, turn2]}], "tstamp"}``;
  * judgments (``model_judgment/<judge>_single.jsonl``): ``{"question_id", "model", "judge": [judge,
    prompt name], "user_prompt", "judgment", "score", "turn", "tstamp"}``, score -1 when unparsable.
Grading uses ``single-v1`` for turn 1 and ``single-v1-multi-turn`` for turn 2, and their ``-math-``
variants with the reference answers for the math, reasoning and coding categories (``NEED_REF_CATS``).
Scores of -1 are left out of the means, as FastChat's show_result does.
"""

from __future__ import annotations

import json
import time
import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mmpo.config.paths import resolve_data_path
from mmpo.data.io import json_lines
from mmpo.errors import ConfigError, DataError
from mmpo.evaluation.judges import JudgePrompt, JudgeRequest
from mmpo.progress import progress

NEED_REF_CATS = ("math", "reasoning", "coding")
BUNDLED_NAMES = {
    "questions": "shared:mt_bench/question.jsonl",
    "references": "shared:mt_bench/reference_answer_gpt-4.jsonl",
    "prompts": "shared:mt_bench/judge_prompts.jsonl",
}


@dataclass(frozen=True)
class Question:
    question_id: int
    category: str
    turns: list[str]


def _jsonl(path: str, what: str) -> list[dict[str, Any]]:
    resolved = Path(resolve_data_path(path))
    if not resolved.is_file():
        raise ConfigError(f"{what} file {path!r} does not exist")
    return [row for _, row in json_lines(resolved)]


def _source(name: str, kind: str) -> str:
    """'mt-bench' means FastChat's files in the shared data folder; anything else is a path."""
    return BUNDLED_NAMES[kind] if name == "mt-bench" else name


def load_questions(name: str) -> list[Question]:
    rows = _jsonl(_source(name, "questions"), "questions")
    try:
        return [Question(int(r["question_id"]), str(r["category"]), list(r["turns"])) for r in rows]
    except (KeyError, TypeError, ValueError) as exc:
        raise DataError(f"{name}: question rows need question_id, category and turns ({exc})") from None


def load_references(name: str) -> dict[int, list[str]]:
    return {
        int(r["question_id"]): r["choices"][0]["turns"]
        for r in _jsonl(_source(name, "references"), "reference answers")
    }


def load_judge_prompts(name: str) -> dict[str, JudgePrompt]:
    rows = _jsonl(_source(name, "prompts"), "judge prompts")
    return {r["name"]: JudgePrompt(r["name"], r["system_prompt"], r["prompt_template"]) for r in rows}


def read_answers(path: str) -> list[dict[str, Any]]:
    return _jsonl(path, "answers")


def generate_answers(
    generator,
    settings,
    questions: Sequence[Question],
    model_id: str,
    out: Path,
) -> int:
    """Answer both turns of every question not yet in ``out`` (turn 2 sees turn 1's answer); returns how
    many were written. Appends, so a killed run resumes."""
    done = {int(r["question_id"]) for r in _jsonl(str(out), "answers")} if out.exists() else set()
    pending = [q for q in questions if q.question_id not in done]
    out.parent.mkdir(parents=True, exist_ok=True)
    chunk = max(1, settings.batch_size)
    with out.open("a", encoding="utf-8") as handle:
        for start in progress(range(0, len(pending), chunk), "MT-bench answers"):
            batch = pending[start : start + chunk]
            conversations = [[{"role": "user", "content": q.turns[0]}] for q in batch]
            answers = [[a] for a in generator.generate(conversations, settings)]
            for turn in range(1, max(len(q.turns) for q in batch)):
                active = [k for k, q in enumerate(batch) if len(q.turns) > turn]
                for k in active:
                    conversations[k] += [
                        {"role": "assistant", "content": answers[k][-1]},
                        {"role": "user", "content": batch[k].turns[turn]},
                    ]
                replies = generator.generate([conversations[k] for k in active], settings)
                for k, reply in zip(active, replies, strict=True):
                    answers[k].append(reply)
            for question, turns in zip(batch, answers, strict=True):
                record = {
                    "question_id": question.question_id,
                    "answer_id": uuid.uuid4().hex[:22],
                    "model_id": model_id,
                    "choices": [{"index": 0, "turns": turns}],
                    "tstamp": time.time(),
                }
                handle.write(json.dumps(record, ensure_ascii=False) + "\n")
                handle.flush()
    return len(pending)


def grading_request(
    question: Question, answer_turns: list[str], turn: int, prompts: dict[str, JudgePrompt], refs: dict[int, list[str]]
) -> tuple[str, JudgeRequest]:
    """(prompt name, request) for one turn (1 or 2) of one answer, as FastChat's run_judge_single builds it."""
    needs_ref = question.category in NEED_REF_CATS
    name = ("single-math-v1" if needs_ref else "single-v1") + ("-multi-turn" if turn == 2 else "")
    if name not in prompts:
        raise ConfigError(f"judge prompts lack {name!r}")
    kwargs: dict[str, str] = {}
    if needs_ref:
        if question.question_id not in refs:
            raise DataError(f"question {question.question_id} ({question.category}) has no reference answer")
        ref = refs[question.question_id]
        kwargs = {"ref_answer_1": ref[0], "ref_answer_2": ref[1] if len(ref) > 1 else ""}
    if turn == 2:
        user = prompts[name].prompt_template.format(
            question_1=question.turns[0],
            question_2=question.turns[1],
            answer_1=answer_turns[0],
            answer_2=answer_turns[1],
            **kwargs,
        )
    else:
        user = prompts[name].prompt_template.format(question=question.turns[0], answer=answer_turns[0], **kwargs)
    return name, JudgeRequest(prompts[name].system_prompt, user, question.turns[turn - 1], answer_turns[turn - 1])


def judge_answers(
    judge,
    judge_name: str,
    answer_rows: Sequence[dict[str, Any]],
    questions: Sequence[Question],
    prompts: dict[str, JudgePrompt],
    refs: dict[int, list[str]],
    out: Path,
    batch: int = 16,
) -> int:
    """Grade every (answer, turn) not yet in ``out``; returns how many judgments were written."""
    by_id = {q.question_id: q for q in questions}
    done = set()
    if out.exists():
        done = {(int(r["question_id"]), r["model"], int(r["turn"])) for r in _jsonl(str(out), "judgments")}
    jobs = []
    for row in answer_rows:
        qid = int(row["question_id"])
        if qid not in by_id:
            raise DataError(f"answer for question {qid}, which is not among the questions")
        turns = row["choices"][0]["turns"]
        for turn in range(1, min(2, len(by_id[qid].turns), len(turns)) + 1):
            if (qid, row["model_id"], turn) not in done:
                jobs.append((row["model_id"], by_id[qid], turns, turn))
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("a", encoding="utf-8") as handle:
        for start in progress(range(0, len(jobs), batch), "MT-bench judgments"):
            chunk = jobs[start : start + batch]
            built = [grading_request(q, turns, turn, prompts, refs) for _, q, turns, turn in chunk]
            replies = judge.judge([request for _, request in built])
            for (model, question, _, turn), (name, request), reply in zip(chunk, built, replies, strict=True):
                record = {
                    "question_id": question.question_id,
                    "model": model,
                    "judge": [judge_name, name],
                    "user_prompt": request.user,
                    "judgment": reply.text,
                    "score": reply.score if reply.score is not None else -1,
                    "turn": turn,
                    "tstamp": time.time(),
                }
                handle.write(json.dumps(record, ensure_ascii=False) + "\n")
                handle.flush()
    return len(jobs)


def summarize(judgment_rows: Sequence[dict[str, Any]], questions: Sequence[Question]) -> dict[str, Any]:
    """Per model: mean score of turn 1, turn 2, overall and per category (scores of -1 left out)."""
    category = {q.question_id: q.category for q in questions}
    by_model: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    unparsed: dict[str, int] = defaultdict(int)
    for row in judgment_rows:
        model = row["model"]
        if row["score"] == -1:
            unparsed[model] += 1
            continue
        score = float(row["score"])
        bucket = by_model[model]
        bucket[f"turn_{row['turn']}"].append(score)
        bucket["overall"].append(score)
        bucket[f"category/{category.get(int(row['question_id']), 'unknown')}"].append(score)
    summary: dict[str, Any] = {}
    for model, buckets in sorted(by_model.items()):
        summary[model] = {f"mt_bench/{k}": sum(v) / len(v) for k, v in sorted(buckets.items())}
        summary[model]["mt_bench/judgments"] = len(buckets["overall"])
        summary[model]["mt_bench/unparsed"] = unparsed[model]
    return summary
