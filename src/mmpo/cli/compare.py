"""``mmpo compare``: several runs' reports as one markdown table and overlaid reliability diagrams."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from mmpo.cli.arguments import print_json
from mmpo.results_output import results_stream

if TYPE_CHECKING:
    from mmpo.commands.compare import CompareParams


def register(subparsers) -> None:
    cmp = subparsers.add_parser(
        "compare", help="several runs' reports as one markdown table + overlaid reliability diagrams"
    )
    cmp.add_argument("runs", nargs="+", metavar="RUN", help="run folder, report.json or mt_bench.json; NAME=PATH,PATH")
    cmp.add_argument("--out", default="", help="folder for index.html (one self-contained page), compare.md, PNGs")
    cmp.add_argument("--sweep", default="", help="an mmpo sweep --out folder: its table and curves in index.html")
    cmp.add_argument("--json", action="store_true", help="print JSON (table and file paths) instead of the table")
    cmp.set_defaults(func=execute)


def to_params(args: argparse.Namespace) -> CompareParams:
    from mmpo.commands.compare import CompareParams

    return CompareParams(args.runs, args.out, args.sweep)


def execute(args: argparse.Namespace) -> int:
    from mmpo.commands.compare import run_compare

    result = run_compare(to_params(args))
    if args.json:
        print_json(result)
    else:
        print(result["table"], file=results_stream())
    return 0
