"""MT-bench as in FastChat's llm_judge: answers to both turns, single-answer grading, and the summary.

File formats are FastChat's, so either tool reads the other's files:
  * answers (``model_answer/<model>.jsonl``): ``{"question_id", "answer_id", "model_id",
    "choices": [{"index": 0, "turns": [turn1, turn2]}], "tstamp"}``;
  * judgments (``model_judgment/<judge>_single.jsonl``): ``{"question_id", "model", "judge": [judge,
    prompt name], "user_prompt", "judgment", "score", "turn", "tstamp"}``, score -1 when unparsable.
Grading uses ``single-v1`` for turn 1 and ``single-v1-multi-turn`` for turn 2, and their ``-math-``
variants with the reference answers for the math, reasoning and coding categories (``NEED_REF_CATS``).
Scores of -1 are left out of the means, as FastChat's show_result does, and counted (``mt_bench/unparsed``).
Where mmpo does more than FastChat: a request the judge could not answer (API error) is not written but retried
by the next run and reported; judging resumes on (question, turn, model, judge prompt), and one file holds one
judge's ratings. Models are named by their answer file's stem, as FastChat's ``load_model_answers`` does.
"""

from __future__ import annotations

import json
import time
import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from mmpo.config.paths import resolve_data_path
from mmpo.data.io import json_lines
from mmpo.errors import ConfigError, DataError
from mmpo.evaluation.judges import JudgePrompt, JudgeRequest
from mmpo.progress import progress

NEED_REF_CATS = ("math", "reasoning", "coding")
# FastChat llm_judge/common.py: the sampling temperature of each category (0.7 for any other)
TEMPERATURE_CONFIG = {
    "writing": 0.7,
    "roleplay": 0.7,
    "extraction": 0.0,
    "math": 0.0,
    "coding": 0.0,
    "reasoning": 0.0,
    "stem": 0.1,
    "humanities": 0.1,
    "arena-hard-200": 0.0,
}
DEFAULT_TEMPERATURE = 0.7
BUNDLED_NAMES = {  # FastChat's files, shipped in the package (mmpo/bundled/mt_bench/README.md)
    "questions": "bundled:mt_bench/question.jsonl.gz",
    "references": "bundled:mt_bench/reference_answer_gpt-4.jsonl.gz",
    "prompts": "bundled:mt_bench/judge_prompts.jsonl.gz",
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
    """'mt-bench' means FastChat's files bundled with the package; anything else is a path."""
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


def question_temperature(question: Question, override: float | None) -> float:
    """FastChat's gen_model_answer: the category's temperature (TEMPERATURE_CONFIG, else 0.7) unless overridden."""
    if override is not None:
        return override
    return TEMPERATURE_CONFIG.get(question.category, DEFAULT_TEMPERATURE)


def _answer_turns(generator, settings, batch: Sequence[Question]) -> list[list[str]]:
    """Both turns of every question of ``batch`` (turn 2 continues the conversation of the model's turn 1)."""
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
    return answers


def generate_answers(
    generator,
    settings,
    questions: Sequence[Question],
    model_id: str,
    out: Path,
    num_choices: int = 1,
    temperature: float | None = None,
) -> int:
    """Answer both turns of every question not yet in ``out``, ``num_choices`` times (choice i sampled after
    ``torch.manual_seed(i)``, as FastChat), at each category's temperature unless ``temperature`` is given;
    returns how many questions were answered. Appends one record per question, so a killed run resumes."""
    import torch

    done = {int(r["question_id"]) for r in _jsonl(str(out), "answers")} if out.exists() else set()
    pending = [q for q in questions if q.question_id not in done]
    out.parent.mkdir(parents=True, exist_ok=True)
    chunk = max(1, settings.batch_size)
    by_temperature: dict[float, list[Question]] = defaultdict(list)
    for question in pending:
        by_temperature[question_temperature(question, temperature)].append(question)
    batches = [
        (t, group[start : start + chunk])
        for t, group in by_temperature.items()
        for start in range(0, len(group), chunk)
    ]
    with out.open("a", encoding="utf-8") as handle:
        for t, batch in progress(batches, "MT-bench answers"):
            at_t = replace(settings, temperature=t)
            choices = []
            for index in range(num_choices):
                torch.manual_seed(index)
                choices.append(_answer_turns(generator, at_t, batch))
            for k, question in enumerate(batch):
                record = {
                    "question_id": question.question_id,
                    "answer_id": uuid.uuid4().hex[:22],
                    "model_id": model_id,
                    "choices": [{"index": i, "turns": choices[i][k]} for i in range(num_choices)],
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


@dataclass(frozen=True)
class AnswerSet:
    """One model's answers, named as FastChat names models: by the answer file's stem."""

    model: str
    rows: list[dict[str, Any]]


def read_answer_sets(paths: Sequence[str]) -> list[AnswerSet]:
    sets = [AnswerSet(Path(path).name.removesuffix(".jsonl"), read_answers(path)) for path in paths]
    names = [s.model for s in sets]
    if len(set(names)) < len(names):
        raise ConfigError(
            f"answer files with the same name {sorted(n for n in names if names.count(n) > 1)}: "
            "FastChat names each model by its answer file"
        )
    return sets


@dataclass(frozen=True)
class JudgingOutcome:
    written: int
    failed: list[str]  # "question q, turn t, model m: why" for every request the judge could not answer


def judgment_rows(out: Path, judge_name: str) -> list[dict[str, Any]]:
    """The judgments in ``out``; a file of another judge is refused, so that two judges' ratings are never mixed
    in one file (nor one judge's resume skip the other's)."""
    rows = _jsonl(str(out), "judgments") if out.exists() else []
    for row in rows:
        judge = row["judge"][0]
        if judge != judge_name:
            raise ConfigError(
                f"{out} holds judgments by {judge!r}, not {judge_name!r}; give this judge its own --out "
                "(FastChat's model_judgment/<judge>_single.jsonl or _pair.jsonl)"
            )
    return rows


def existing_judgments(out: Path, judge_name: str) -> set[tuple[int, int, str, str]]:
    """(question, turn, model, prompt) already judged in ``out`` by ``judge_name``."""
    return {(int(r["question_id"]), int(r["turn"]), r["model"], r["judge"][1]) for r in judgment_rows(out, judge_name)}


def judge_answers(
    judge,
    judge_name: str,
    answer_sets: Sequence[AnswerSet],
    questions: Sequence[Question],
    prompts: dict[str, JudgePrompt],
    refs: dict[int, list[str]],
    out: Path,
    batch: int = 16,
) -> JudgingOutcome:
    """Grade every (answer, turn) not yet in ``out`` (keyed on question, turn, model and judge prompt), writing
    each batch as it is judged. A rating that cannot be read is written as -1 (FastChat's convention); a request
    that failed is not written, so the next run asks again, and is listed in the outcome."""
    by_id = {q.question_id: q for q in questions}
    done = existing_judgments(out, judge_name)
    jobs = []
    for answers in answer_sets:
        for row in answers.rows:
            qid = int(row["question_id"])
            if qid not in by_id:
                raise DataError(f"answer for question {qid}, which is not among the questions")
            turns = row["choices"][0]["turns"]
            for turn in range(1, min(2, len(by_id[qid].turns), len(turns)) + 1):
                name, request = grading_request(by_id[qid], turns, turn, prompts, refs)
                if (qid, turn, answers.model, name) not in done:
                    jobs.append((answers.model, by_id[qid], turn, name, request))
    out.parent.mkdir(parents=True, exist_ok=True)
    failed: list[str] = []
    written = 0
    with out.open("a", encoding="utf-8") as handle:
        for start in progress(range(0, len(jobs), batch), "MT-bench judgments"):
            chunk = jobs[start : start + batch]
            replies = judge.judge([request for *_, request in chunk])
            for (model, question, turn, name, request), reply in zip(chunk, replies, strict=True):
                if reply.request_failed:
                    failed.append(f"question {question.question_id}, turn {turn}, model {model}: {reply.error}")
                    continue
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
                written += 1
            handle.flush()
    return JudgingOutcome(written, failed)


def summarize(judgment_rows: Sequence[dict[str, Any]], questions: Sequence[Question]) -> dict[str, Any]:
    """Per model: mean score of turn 1, turn 2, overall and per category (scores of -1 left out)."""
    category = {q.question_id: q.category for q in questions}
    by_model: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    unparsed: dict[str, int] = defaultdict(int)
    for row in judgment_rows:
        model = row["model"]
        by_model.setdefault(model, defaultdict(list))  # a model whose every rating was unreadable still appears
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
        summary[model] = {f"mt_bench/{k}": sum(v) / len(v) for k, v in sorted(buckets.items()) if v}
        summary[model]["mt_bench/judgments"] = len(buckets["overall"])
        summary[model]["mt_bench/unparsed"] = unparsed[model]
    return summary
