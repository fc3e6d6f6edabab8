"""The ``mmpo`` command line: train, eval, margins (and margins annotate), bon, serve, generate, judge,
compare, demo, configs, env.

Each command is one module of this package with ``register(subparsers)`` (its options) and ``to_params(args)``
(its typed parameter record); what it runs lives in ``mmpo.commands``, imported only when it runs, so
``mmpo --help`` loads no model library.

stdout carries only results (strict JSON for the JSON commands); logs and progress go to stderr. Every
bad input or setting is one line on stderr and exit status 2, before any heavy work; any other error is
one line and status 1, with the traceback behind ``--debug``.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import NoReturn

from mmpo import __version__
from mmpo.cli import (
    annotate,
    bon,
    compare,
    configs,
    demo,
    env,
    eval,
    generate,
    judge,
    margins,
    select,
    serve,
    sweep,
    train,
)
from mmpo.cli.arguments import take_overrides_from_data
from mmpo.errors import MMPOError
from mmpo.file_errors import disk_fault
from mmpo.host_memory import prefer_huge_pages_for_large_tensors
from mmpo.results_output import library_output_to_stderr


class OneLineParser(argparse.ArgumentParser):
    """argparse errors as one line on stderr and exit status 2 (argparse would print the usage first)."""

    def error(self, message: str):
        print(f"{self.prog}: error: {message} (see {self.prog} --help)", file=sys.stderr)
        raise SystemExit(2)


COMMANDS = (train, sweep, eval, margins, annotate, select, bon, serve, generate, judge, compare, demo, configs, env)


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="mmpo", description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("-v", "--verbose", action="store_true", help="log from transformers too")
    parser.add_argument("--debug", action="store_true", help="show the full traceback of unexpected errors")
    parser.add_argument("--version", action="version", version=f"mmpo {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    for command in COMMANDS:
        command.register(sub)
    return parser


def _setup_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING, format="[mmpo] %(message)s", stream=sys.stderr
    )
    # under torchrun / accelerate launch only the main process logs progress; the others keep warnings and errors
    logging.getLogger("mmpo").setLevel(logging.INFO if int(os.environ.get("RANK", "0")) == 0 else logging.WARNING)
    if not verbose:
        import datasets
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
        datasets.logging.set_verbosity_error()
        if not sys.stderr.isatty():  # no carriage-return progress bars in pipes and log files
            datasets.disable_progress_bars()
            hf_logging.disable_progress_bar()


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    command_at = next((i for i, a in enumerate(argv) if not a.startswith("-")), len(argv))
    if argv[command_at : command_at + 2] == ["margins", "annotate"]:  # `mmpo margins annotate` is its own command
        argv = [*argv[:command_at], "annotate-margins", *argv[command_at + 2 :]]
    # parse_known_args + re-attach: argparse cannot mix options and a trailing KEY=VALUE list in subcommands.
    args, extra = parser.parse_known_args(argv)
    take_overrides_from_data(args)
    if extra:
        target = "overrides" if hasattr(args, "overrides") else "data_overrides"
        if not hasattr(args, target) or any(e.startswith("-") or "=" not in e for e in extra):
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
        setattr(args, target, [*getattr(args, target), *extra])
    _setup_logging(args.verbose)
    try:
        with library_output_to_stderr():
            return args.func(args)
    except MMPOError as exc:
        print(f"mmpo: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("mmpo: interrupted; re-run the same command to resume from the last checkpoint", file=sys.stderr)
        return 130
    except Exception as exc:  # a library error: one line, the traceback only on request
        if args.debug:
            raise
        fault = disk_fault(exc)
        if fault is not None:  # a full disk or a folder that cannot be written: the user's to fix
            print(f"mmpo: error: {fault}", file=sys.stderr)
            return 2
        first_line = (str(exc).strip().splitlines() or [""])[0]
        print(f"mmpo: error: {type(exc).__name__}: {first_line} (run with --debug for the traceback)", file=sys.stderr)
        return 1


def run() -> NoReturn:
    """The ``mmpo`` console script and ``python -m mmpo.cli``: main(), then an exit that is safe for a rank of a
    multi-process run (see ``mmpo.distributed.exit_process``). A command that never loaded torch cannot have joined
    a process group, and exits without loading it."""
    prefer_huge_pages_for_large_tensors()  # before anything imports torch, which reads it once
    code = main()
    if "torch.distributed" not in sys.modules:
        sys.exit(code)
    from mmpo.distributed import exit_process

    exit_process(code)


if __name__ == "__main__":
    run()
