"""``mmpo bon``: best-of-n selection with a reward model."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from mmpo.cli.arguments import positive_int, print_json

if TYPE_CHECKING:
    from mmpo.commands.bon import BonParams


def register(subparsers) -> None:
    bon = subparsers.add_parser("bon", help="best-of-n selection with a reward model")
    bon.add_argument("--reward-model", required=True)
    bon.add_argument("--data", required=True, help="rows with a prompt and a list of candidate responses")
    bon.add_argument("--prompt-column", default="prompt")
    bon.add_argument("--responses-column", default="responses")
    bon.add_argument("--scores-column", default="", help="optional judge scores of the candidates, for reporting")
    bon.add_argument("--max-length", type=positive_int, default=512)
    bon.add_argument("--batch-size", type=positive_int, default=16)
    bon.add_argument("--out", default="", help="write JSONL rows with the selected response")
    bon.set_defaults(func=execute)


def to_params(args: argparse.Namespace) -> BonParams:
    from mmpo.commands.bon import BonParams

    return BonParams(
        args.reward_model,
        args.data,
        args.prompt_column,
        args.responses_column,
        args.scores_column,
        args.max_length,
        args.batch_size,
        args.out,
    )


def execute(args: argparse.Namespace) -> int:
    from mmpo.commands.bon import run_bon

    print_json(run_bon(to_params(args)))
    return 0
