"""``mmpo margins``: the margins and targets p = sigmoid(gamma * m) a data file gives."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from mmpo.cli.arguments import add_data_options, positive_float, print_json

if TYPE_CHECKING:
    from mmpo.commands.margins import MarginsParams


def register(subparsers) -> None:
    parser = subparsers.add_parser("margins", help="compute margins and targets p = sigmoid(gamma*m) for a data file")
    parser.add_argument("--gamma", type=positive_float, default=1.0)
    parser.add_argument("--out", default="", help="write JSONL rows with margin and target columns")
    add_data_options(parser)
    parser.set_defaults(func=execute)


def to_params(args: argparse.Namespace) -> MarginsParams:
    from mmpo.commands.margins import MarginsParams

    return MarginsParams(args.data, args.data_overrides, args.gamma, args.out)


def execute(args: argparse.Namespace) -> int:
    from mmpo.commands.margins import run_margins

    print_json(run_margins(to_params(args)))
    return 0
