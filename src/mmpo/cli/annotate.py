"""``mmpo margins annotate``: judge scores for unscored pairs (registered as ``annotate-margins``)."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from mmpo.cli.arguments import add_data_settings, add_judge_options, judge_settings, non_negative_int, print_json

if TYPE_CHECKING:
    from mmpo.commands.annotate import AnnotateParams


def register(subparsers) -> None:
    ann = subparsers.add_parser("annotate-margins", help="(mmpo margins annotate) judge scores for unscored pairs")
    ann.prog = "mmpo margins annotate"
    ann.add_argument("--data", required=True, help="pair file or hub dataset id")
    ann.add_argument("--out", required=True, help="JSONL with score_chosen, score_rejected and the judge's text")
    add_data_settings(ann)
    ann.add_argument(
        "--prompt-template", default="", help="JSON line: system_prompt, prompt_template ({question}, {answer})"
    )
    ann.add_argument("--limit", type=non_negative_int, default=0, help="judge at most this many new rows")
    add_judge_options(ann, 512)
    ann.set_defaults(func=execute)


def to_params(args: argparse.Namespace) -> AnnotateParams:
    from mmpo.commands.annotate import AnnotateParams

    return AnnotateParams(
        args.data, args.out, judge_settings(args), args.data_overrides, args.prompt_template, args.limit
    )


def execute(args: argparse.Namespace) -> int:
    from mmpo.commands.annotate import run_annotate

    print_json(run_annotate(to_params(args)))
    return 0
