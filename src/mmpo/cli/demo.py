"""``mmpo demo``: the embedded default, MMPO against hard labels on the bundled UltraFeedback sample."""

from __future__ import annotations

import argparse


def register(subparsers) -> None:
    demo = subparsers.add_parser(
        "demo", help="embedded default: MMPO vs hard labels on UltraFeedback (reward or policy)"
    )
    demo.add_argument("--kind", choices=["reward", "policy"], default="reward")
    demo.add_argument("--output-dir", default=None, help="default outputs/embedded_<kind>")
    demo.add_argument("--seed", type=int, default=42)
    demo.add_argument("overrides", nargs="*", metavar="KEY=VALUE")
    demo.set_defaults(func=execute)


def execute(args: argparse.Namespace) -> int:
    from mmpo.commands.demo import run_demo

    run_demo(args.output_dir, args.overrides, seed=args.seed, kind=args.kind)
    return 0
