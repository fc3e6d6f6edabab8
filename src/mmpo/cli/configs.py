"""``mmpo configs [ls]`` lists the bundled configs; ``mmpo configs cp NAME PATH`` copies one out to edit."""

from __future__ import annotations

import argparse

from mmpo.cli.arguments import print_json
from mmpo.results_output import results_stream


def register(subparsers) -> None:
    parser = subparsers.add_parser("configs", help="list the bundled configs, or copy one out (ls / cp NAME PATH)")
    parser.add_argument("action", nargs="?", choices=["ls", "cp"], default="ls")
    parser.add_argument("name", nargs="?", help="cp: the config (e.g. embedded_reward, accelerate/fsdp)")
    parser.add_argument("destination", nargs="?", help="cp: a file or folder")
    parser.add_argument("--force", action="store_true", help="cp: overwrite an existing file")
    parser.add_argument("--json", action="store_true", help="ls: print JSON")
    parser.set_defaults(func=execute)


def execute(args: argparse.Namespace) -> int:
    from mmpo.commands.configs import copy_config, list_configs
    from mmpo.errors import ConfigError

    if args.action == "cp":
        if not (args.name and args.destination):
            raise ConfigError("mmpo configs cp needs NAME and PATH, e.g. mmpo configs cp embedded_reward my.yaml")
        print_json(copy_config(args.name, args.destination, args.force))
        return 0
    listed = list_configs()
    if args.json:
        print_json(listed)
    else:
        width = max(len(c["name"]) for c in listed)
        print("\n".join(f"{c['name']:<{width}}  {c['about']}" for c in listed), file=results_stream())
    return 0
