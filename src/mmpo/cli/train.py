"""``mmpo train {reward,policy,kto} [--config C] [KEY=VALUE ...]``."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from mmpo.cli.arguments import print_json

if TYPE_CHECKING:
    from mmpo.commands.train import TrainParams


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "train",
        help="train a reward model or a policy",
        epilog="KEY=VALUE settings override the config: model, max_length, max_prompt_length, loss.*, data.*, "
        "lora.*, train.* (see a bundled config: mmpo configs cp embedded_reward my.yaml)",
    )
    parser.add_argument("kind", choices=["reward", "policy", "kto"])
    parser.add_argument("--config", help="YAML path or bundled config name (embedded_reward, embedded_policy, ...)")
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="e.g. loss.gamma=2 train.learning_rate=1e-5")
    parser.set_defaults(func=execute)


def to_params(args: argparse.Namespace) -> TrainParams:
    from mmpo.commands.train import TrainParams

    return TrainParams(args.kind, args.config, args.overrides)


def execute(args: argparse.Namespace) -> int:
    from mmpo.commands.train import run_train
    from mmpo.distributed import is_main_process

    summary, _ = run_train(to_params(args))
    if is_main_process():  # under torchrun / `accelerate launch`, report once
        print_json(summary)
    return 0
