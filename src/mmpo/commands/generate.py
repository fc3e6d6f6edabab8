"""``mmpo generate``: a model's answers to MT-bench (both turns), in FastChat's answer-file format."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mmpo.evaluation.mt_bench import generate_answers, load_questions
from mmpo.models.generation import GenerationSettings, make_generator


@dataclass(frozen=True)
class GenerateParams:
    model: str
    out: str
    questions: str = "mt-bench"
    model_id: str = ""
    max_new_tokens: int = 1024
    temperature: float | None = None  # None: FastChat's temperature of each question's category
    batch_size: int = 8
    limit: int = 0
    backend: str = "auto"
    question_begin: int | None = None
    question_end: int | None = None
    num_choices: int = 1


def run_generate(params: GenerateParams) -> dict[str, Any]:
    questions = load_questions(params.questions)[params.question_begin : params.question_end]
    if params.limit:
        questions = questions[: params.limit]
    generator = make_generator(params.model, params.backend)
    settings = GenerationSettings(params.max_new_tokens, 0.0, params.batch_size)
    model_id = params.model_id or Path(params.out).name.removesuffix(".jsonl")
    written = generate_answers(
        generator, settings, questions, model_id, Path(params.out), params.num_choices, params.temperature
    )
    return {"questions": len(questions), "answered_now": written, "model_id": model_id, "out": params.out}
