"""``mmpo margins``: the margins and targets p = sigmoid(gamma * m) a data file gives."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from mmpo.cli.arguments import add_data_options, positive_float, positive_int, print_json

if TYPE_CHECKING:
    from mmpo.commands.margins import MarginsParams


def register(subparsers) -> None:
    parser = subparsers.add_parser("margins", help="compute margins and targets p = sigmoid(gamma*m) for a data file")
    parser.add_argument("--gamma", type=positive_float, default=1.0)
    parser.add_argument("--out", default="", help="write JSONL rows with margin and target columns")
    parser.add_argument(
        "--plot", default="", help="PNG: margin distribution and margin vs response similarity (paper Fig. 7)"
    )
    parser.add_argument("--policy", default="", help="with --plot: a trained policy run, its implicit margins too")
    parser.add_argument("--max-length", type=positive_int, default=None, help="--policy scoring (default: as trained)")
    parser.add_argument("--max-prompt-length", type=positive_int, default=None)
    add_data_options(parser)
    parser.set_defaults(func=execute)


def to_params(args: argparse.Namespace) -> MarginsParams:
    from mmpo.commands.margins import MarginsParams

    return MarginsParams(
        args.data,
        args.data_overrides,
        args.gamma,
        args.out,
        args.plot,
        args.policy,
        args.max_length,
        args.max_prompt_length,
    )


def execute(args: argparse.Namespace) -> int:
    from mmpo.commands.margins import run_margins

    print_json(run_margins(to_params(args)))
    return 0
