"""``mmpo env``: versions of python, torch, transformers, ... and the device, to paste into a bug report."""

from __future__ import annotations

import argparse

from mmpo.cli.arguments import print_json
from mmpo.results_output import results_stream


def register(subparsers) -> None:
    parser = subparsers.add_parser("env", help="versions and device, for a bug report (as `trl env`)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of the list")
    parser.set_defaults(func=execute)


def execute(args: argparse.Namespace) -> int:
    from mmpo.commands.env import as_text, run_env

    report = run_env()
    if args.json:
        print_json(report)
    else:
        print(as_text(report), file=results_stream())
    return 0
