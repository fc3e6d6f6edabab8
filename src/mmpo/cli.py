"""The ``mmpo`` command line: train, eval, margins, bon, demo.

Errors mmpo raises on purpose (bad data, bad config) are printed as one line and exit with status 2;
anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys

from mmpo.errors import MMPOError


def _setup_logging(verbose: bool) -> None:
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, format="[mmpo] %(message)s")
    logging.getLogger("mmpo").setLevel(logging.INFO)


def _cmd_train(args: argparse.Namespace) -> int:
    from mmpo.config import load_config
    from mmpo.paths import resolve_config_path
    from mmpo.training.run import train_from_config

    config_path = resolve_config_path(args.config) if args.config else None
    cfg = load_config(config_path, args.overrides, kind=args.kind)
    result = train_from_config(cfg)
    from accelerate import PartialState

    if not PartialState().is_main_process:  # under `accelerate launch`, report once
        return 0
    print(json.dumps({"output_dir": str(result.output_dir), **result.metrics}, indent=2))
    if result.reliability_png:
        print(f"reliability diagram: {result.reliability_png}")
    if result.margin_history_png:
        print(f"implicit reward margin over training: {result.margin_history_png}")
    return 0


def _cmd_eval(args: argparse.Namespace) -> int:
    from mmpo.evaluation.runner import evaluate_from_args

    report = evaluate_from_args(args)
    print(json.dumps(report, indent=2))
    return 0


def _cmd_margins(args: argparse.Namespace) -> int:
    from mmpo.margins.report import margins_from_args

    print(json.dumps(margins_from_args(args), indent=2))
    return 0


def _cmd_bon(args: argparse.Namespace) -> int:
    from mmpo.evaluation.best_of_n import best_of_n_from_args

    print(json.dumps(best_of_n_from_args(args), indent=2))
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from mmpo.demo import run_demo

    run_demo(args.output_dir, args.overrides, seed=args.seed, kind=args.kind)
    return 0


def _add_data_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data", required=True, nargs="+", help="JSONL/JSON/parquet/CSV file(s) or saved dataset folder"
    )
    parser.add_argument(
        "--set",
        dest="data_overrides",
        nargs="*",
        default=[],
        metavar="KEY=VALUE",
        help="DataConfig fields, e.g. margin_source=votes chosen_column=output_1",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mmpo", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="log from transformers too")
    sub = parser.add_subparsers(dest="command", required=True)

    train = sub.add_parser("train", help="train a reward model or a policy")
    train.add_argument("kind", choices=["reward", "policy", "kto"])
    train.add_argument("--config", help="YAML path or bundled config name (embedded_reward, embedded_policy, ...)")
    train.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="e.g. loss.gamma=2 train.learning_rate=1e-5")
    train.set_defaults(func=_cmd_train)

    ev = sub.add_parser("eval", help="accuracy, ECE, NLL/Brier and reliability diagram of a trained model")
    ev.add_argument("--model", required=True, help="trained model folder (reward model, or policy)")
    ev.add_argument("--kind", choices=["reward", "policy"], default="reward")
    ev.add_argument("--ref-model", default="", help="policy eval: reference model (default: the one trained from)")
    ev.add_argument("--beta", type=float, default=None, help="policy eval: beta of the implicit reward")
    ev.add_argument("--gamma", type=float, default=1.0, help="gamma of the soft targets for NLL/Brier")
    ev.add_argument("--max-length", type=int, default=512)
    ev.add_argument("--max-prompt-length", type=int, default=256)
    ev.add_argument("--batch-size", type=int, default=16)
    ev.add_argument("--bins", type=int, default=10)
    ev.add_argument("--out", default="", help="folder for report.json and reliability.png")
    _add_data_options(ev)
    ev.set_defaults(func=_cmd_eval)

    mg = sub.add_parser("margins", help="compute margins and targets p = sigmoid(gamma*m) for a data file")
    mg.add_argument("--gamma", type=float, default=1.0)
    mg.add_argument("--out", default="", help="write JSONL rows with margin and target columns")
    _add_data_options(mg)
    mg.set_defaults(func=_cmd_margins)

    bon = sub.add_parser("bon", help="best-of-n selection with a reward model")
    bon.add_argument("--reward-model", required=True)
    bon.add_argument("--data", required=True, help="rows with a prompt and a list of candidate responses")
    bon.add_argument("--prompt-column", default="prompt")
    bon.add_argument("--responses-column", default="responses")
    bon.add_argument("--scores-column", default="", help="optional judge scores of the candidates, for reporting")
    bon.add_argument("--max-length", type=int, default=512)
    bon.add_argument("--batch-size", type=int, default=16)
    bon.add_argument("--out", default="", help="write JSONL rows with the selected response")
    bon.set_defaults(func=_cmd_bon)

    demo = sub.add_parser("demo", help="embedded default: MMPO vs hard labels on UltraFeedback (reward or policy)")
    demo.add_argument("--kind", choices=["reward", "policy"], default="reward")
    demo.add_argument("--output-dir", default=None, help="default outputs/embedded_<kind>")
    demo.add_argument("--seed", type=int, default=42)
    demo.add_argument("overrides", nargs="*", metavar="KEY=VALUE")
    demo.set_defaults(func=_cmd_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    # parse_known_args + re-attach: argparse cannot mix options and a trailing KEY=VALUE list in subcommands.
    args, extra = parser.parse_known_args(argv)
    if extra:
        if not hasattr(args, "overrides") or any(e.startswith("-") or "=" not in e for e in extra):
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
        args.overrides = [*args.overrides, *extra]
    _setup_logging(args.verbose)
    if not args.verbose:
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
    try:
        return args.func(args)
    except MMPOError as exc:
        print(f"mmpo: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
