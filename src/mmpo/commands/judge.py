"""``mmpo judge mt-bench``: single-answer grading of MT-bench answers, and the per-category, per-turn and overall
scores (also written to ``mt_bench.json`` beside the judgments, for ``mmpo compare``); or FastChat's pairwise
modes (``--mode pairwise-baseline`` / ``pairwise-all``) with their win rates (``mt_bench_pair.json``)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mmpo.errors import ConfigError
from mmpo.evaluation.judges import JudgeSettings, make_judge
from mmpo.evaluation.mt_bench import (
    judge_answers,
    judgment_rows,
    load_judge_prompts,
    load_questions,
    load_references,
    read_answer_sets,
    summarize,
)
from mmpo.evaluation.mt_bench_pairwise import FASTCHAT_BASELINE, judge_pairs, make_matches, win_rates
from mmpo.file_errors import ensure_writable_folder


@dataclass(frozen=True)
class JudgeParams:
    answers: list[str]
    judge: JudgeSettings
    out: str = ""  # default: FastChat's model_judgment/<judge>_single.jsonl beside model_answer/
    questions: str = "mt-bench"
    references: str = "mt-bench"
    judge_prompts: str = "mt-bench"
    mode: str = "single"  # single | pairwise-baseline | pairwise-all
    baseline: str = FASTCHAT_BASELINE


def default_judgment_path(answers: str, judge_name: str, mode: str = "single") -> Path:
    """FastChat's layout: answers in <bench>/model_answer/<model>.jsonl, judgments in
    <bench>/model_judgment/<judge>_single.jsonl (beside the answers' folder when it is not model_answer/)."""
    folder = Path(answers).parent
    bench = folder.parent if folder.name == "model_answer" else folder
    suffix = "single" if mode == "single" else "pair"
    return bench / "model_judgment" / f"{re.sub(r'[^A-Za-z0-9._-]+', '_', judge_name)}_{suffix}.jsonl"


def run_judge(params: JudgeParams) -> tuple[dict[str, Any], list[str]]:
    """(the summary, the requests that failed and are left for the next run)."""
    questions = load_questions(params.questions)
    prompts = load_judge_prompts(params.judge_prompts)
    refs = load_references(params.references)
    answer_sets = read_answer_sets(params.answers)
    out = Path(params.out) if params.out else default_judgment_path(params.answers[0], params.judge.name, params.mode)
    ensure_writable_folder(out.parent, "the judgments' folder")
    judgment_rows(out, params.judge.name)  # another judge's file: refused before the judge loads
    if params.mode != "single":
        return run_pairwise(params, questions, prompts, refs, answer_sets, out)
    judge = make_judge(params.judge)
    outcome = judge_answers(judge, params.judge.name, answer_sets, questions, prompts, refs, out)
    models = {s.model for s in answer_sets}
    summary = summarize([j for j in judgment_rows(out, params.judge.name) if j["model"] in models], questions)
    return _report(out, "mt_bench.json", {"mode": "single"}, outcome, summary), outcome.failed


def run_pairwise(
    params: JudgeParams, questions, prompts, refs, answer_sets, out: Path
) -> tuple[dict[str, Any], list[str]]:
    if params.judge.spec.startswith("rm:"):
        raise ConfigError("pairwise judging needs an LLM judge (openai: or hf:), not a reward model")
    matches = make_matches(answer_sets, questions, params.mode, params.baseline)
    outcome = judge_pairs(make_judge(params.judge), params.judge.name, matches, prompts, refs, out)
    models = {s.model for s in answer_sets}
    rows = [r for r in judgment_rows(out, params.judge.name) if r["model_1"] in models and r["model_2"] in models]
    table = win_rates(rows, params.baseline if params.mode == "pairwise-baseline" else None)
    return _report(out, "mt_bench_pair.json", {"mode": params.mode}, outcome, table), outcome.failed


def _report(out: Path, name: str, extra: dict[str, Any], outcome, per_model: dict[str, dict]) -> dict[str, Any]:
    """The printed summary (one model's metrics inline, several under "models"), also written beside the
    judgments as ``name`` for ``mmpo compare``."""
    result: dict[str, Any] = {
        "judgments": str(out),
        **extra,
        "judged_now": outcome.written,
        "failed": len(outcome.failed),
    }
    if len(per_model) == 1:
        result.update(next(iter(per_model.values())))
        result["model"] = next(iter(per_model))
    else:
        result["models"] = per_model
    (out.parent / name).write_text(json.dumps(result, indent=2))
    return result
