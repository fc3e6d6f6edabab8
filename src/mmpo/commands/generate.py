"""``mmpo generate``: a model's answers to MT-bench (both turns), in FastChat's answer-file format."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mmpo.errors import ConfigError
from mmpo.evaluation.best_of_n import best_of_n_answers
from mmpo.evaluation.mt_bench import generate_answers, load_questions
from mmpo.features.scoring import RewardPairScorer
from mmpo.file_errors import ensure_writable_folder
from mmpo.models.generation import GenerationSettings, make_generator
from mmpo.models.inspect import require_model_kind


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
    best_of: int = 0  # > 0: per turn, the reward model's pick of this many samples (needs reward_model)
    reward_model: str = ""


def run_generate(params: GenerateParams) -> dict[str, Any]:
    questions = load_questions(params.questions)[params.question_begin : params.question_end]
    if params.limit:
        questions = questions[: params.limit]
    if params.best_of and not params.reward_model:
        raise ConfigError("--best-of needs --reward-model (the model that picks among the samples)")
    if params.reward_model and not params.best_of:
        raise ConfigError("--reward-model is for --best-of n")
    if params.best_of and params.num_choices > 1:
        raise ConfigError("--best-of writes one answer per question; drop --num-choices")
    ensure_writable_folder(Path(params.out).parent, "--out's folder")
    scorer = None
    if params.best_of:
        require_model_kind(params.reward_model, "reward", "--reward-model")
        scorer = RewardPairScorer(params.reward_model, batch_size=params.batch_size)
    generator = make_generator(params.model, params.backend)
    settings = GenerationSettings(params.max_new_tokens, 0.0, params.batch_size)
    model_id = params.model_id or Path(params.out).name.removesuffix(".jsonl")
    if scorer is not None:
        written = best_of_n_answers(
            generator, settings, questions, model_id, Path(params.out), params.best_of, scorer, params.temperature
        )
    else:
        written = generate_answers(
            generator, settings, questions, model_id, Path(params.out), params.num_choices, params.temperature
        )
    return {"questions": len(questions), "answered_now": written, "model_id": model_id, "out": params.out}
