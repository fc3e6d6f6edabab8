"""``mmpo judge mt-bench``: FastChat's single-answer and pairwise grading, with its judgment files."""

from __future__ import annotations

import argparse
import logging
from typing import TYPE_CHECKING

from mmpo.cli.arguments import add_judge_options, judge_settings, print_json

if TYPE_CHECKING:
    from mmpo.commands.judge import JudgeParams


def register(subparsers) -> None:
    jdg = subparsers.add_parser("judge", help="MT-bench single-answer grading with per-category and per-turn scores")
    jdg.add_argument("benchmark", choices=["mt-bench"])
    jdg.add_argument("--answers", required=True, nargs="+", help="FastChat answer file(s)")
    jdg.add_argument(
        "--out",
        default="",
        help="judgments JSONL (default: FastChat's model_judgment/<judge>_single.jsonl, or _pair.jsonl)",
    )
    jdg.add_argument(
        "--mode",
        choices=["single", "pairwise-baseline", "pairwise-all"],  # evaluation.mt_bench_pairwise.PAIRWISE_MODES
        default="single",
        help="FastChat's modes: single-answer grading, every model against --baseline, or every pair of models",
    )
    jdg.add_argument(
        "--baseline", default="gpt-3.5-turbo", help="pairwise-baseline: the model (answer file stem) to compare to"
    )
    jdg.add_argument("--questions", default="mt-bench")
    jdg.add_argument("--references", default="mt-bench", help="reference answers for math, reasoning, coding")
    jdg.add_argument("--judge-prompts", default="mt-bench", help="FastChat judge_prompts.jsonl")
    add_judge_options(jdg, 2048)
    jdg.set_defaults(func=execute)


def to_params(args: argparse.Namespace) -> JudgeParams:
    from mmpo.commands.judge import JudgeParams

    return JudgeParams(
        answers=args.answers,
        judge=judge_settings(args),
        out=args.out,
        questions=args.questions,
        references=args.references,
        judge_prompts=args.judge_prompts,
        mode=args.mode,
        baseline=args.baseline,
    )


def execute(args: argparse.Namespace) -> int:
    from mmpo.commands.judge import run_judge

    summary, failed = run_judge(to_params(args))
    print_json(summary)
    if failed:
        shown = "; ".join(failed[:3]) + (f"; and {len(failed) - 3} more" if len(failed) > 3 else "")
        logging.getLogger("mmpo").error(
            "%d judge requests failed and were not recorded (run the same command again to retry them): %s",
            len(failed),
            shown,
        )
        return 1
    return 0
