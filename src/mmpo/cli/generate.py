"""``mmpo generate``: a model's answers to MT-bench questions, in FastChat's answer format."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from mmpo.cli.arguments import finite_non_negative_float, non_negative_int, positive_int, print_json

if TYPE_CHECKING:
    from mmpo.commands.generate import GenerateParams


def register(subparsers) -> None:
    gen = subparsers.add_parser("generate", help="a model's answers to MT-bench (FastChat answer format)")
    gen.add_argument("--model", required=True)
    gen.add_argument("--questions", default="mt-bench", help="'mt-bench' or a FastChat question.jsonl")
    gen.add_argument("--out", required=True)
    gen.add_argument(
        "--model-id", default="", help="model_id written in the answers (default: the --out file's stem, as FastChat)"
    )
    gen.add_argument("--max-new-tokens", type=positive_int, default=1024)
    gen.add_argument(
        "--temperature",
        type=finite_non_negative_float,
        default=None,
        help="one temperature for every question (default: FastChat's per category: writing and roleplay 0.7, "
        "stem and humanities 0.1, extraction, math, coding and reasoning 0 = greedy)",
    )
    gen.add_argument("--batch-size", type=positive_int, default=8)
    gen.add_argument("--limit", type=non_negative_int, default=0, help="only the first N questions (0 = all)")
    gen.add_argument("--question-begin", type=non_negative_int, default=None, help="questions[begin:end], as FastChat")
    gen.add_argument("--question-end", type=non_negative_int, default=None)
    gen.add_argument("--num-choices", type=positive_int, default=1, help="answers per question (choice i: seed i)")
    gen.add_argument(
        "--best-of",
        type=positive_int,
        default=0,
        help="best-of-n: per turn, n samples and --reward-model's pick (turn 2 continues the picked turn 1)",
    )
    gen.add_argument("--reward-model", default="", help="--best-of: the reward model that picks")
    gen.add_argument("--backend", choices=["auto", "transformers", "vllm"], default="auto")
    gen.set_defaults(func=execute)


def to_params(args: argparse.Namespace) -> GenerateParams:
    from mmpo.commands.generate import GenerateParams

    return GenerateParams(
        model=args.model,
        out=args.out,
        questions=args.questions,
        model_id=args.model_id,
        max_new_tokens=args.max_new_tokens,
        temperature=args.temperature,
        batch_size=args.batch_size,
        limit=args.limit,
        backend=args.backend,
        question_begin=args.question_begin,
        question_end=args.question_end,
        num_choices=args.num_choices,
        best_of=args.best_of,
        reward_model=args.reward_model,
    )


def execute(args: argparse.Namespace) -> int:
    from mmpo.commands.generate import run_generate

    print_json(run_generate(to_params(args)))
    return 0
