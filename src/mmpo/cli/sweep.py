"""``mmpo sweep KIND [--config C] key=v1,v2 ... [key=value ...]``: a grid of runs and the setting it selects."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from mmpo.cli.arguments import print_json

if TYPE_CHECKING:
    from mmpo.commands.sweep import SweepParams


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "sweep",
        help="train a grid over config keys (e.g. loss.gamma=0.3,1,3,inf seed=1,2,3) and select on eval pairs",
        epilog="key=v1,v2,... is an axis, key=value a setting of every run; seed=... is train.seed. Each run is a "
        "folder under --out (resumable, skipped when done); all share --out/cache.",
    )
    parser.add_argument("kind", choices=["reward", "policy", "kto"])
    parser.add_argument("--config", help="YAML path or bundled config name")
    parser.add_argument("--out", default="outputs/sweep", help="folder of the runs, sweep.json, sweep.md, sweep.png")
    parser.add_argument(
        "--select",
        dest="criterion",
        choices=["nll_soft", "ece", "accuracy", "brier_soft"],
        default="nll_soft",
        help="the eval metric the selected setting is best on (mean over seeds)",
    )
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUES")
    parser.set_defaults(func=execute)


def to_params(args: argparse.Namespace) -> SweepParams:
    from mmpo.commands.sweep import SweepParams

    return SweepParams(args.kind, args.config, args.overrides, args.out, args.criterion)


def execute(args: argparse.Namespace) -> int:
    from mmpo.commands.sweep import run_sweep
    from mmpo.distributed import is_main_process

    summary = run_sweep(to_params(args))
    if is_main_process():
        print_json(summary)
    return 0
