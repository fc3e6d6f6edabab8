"""``mmpo eval``: accuracy, ECE, NLL/Brier and reliability of a trained model on pair files or RewardBench."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from mmpo.cli.arguments import add_data_options, positive_float, positive_int, print_json
from mmpo.errors import ConfigError

if TYPE_CHECKING:
    from mmpo.commands.eval import EvalParams


def register(subparsers) -> None:
    ev = subparsers.add_parser("eval", help="accuracy, ECE, NLL/Brier and reliability diagram of a trained model")
    ev.add_argument("--model", required=True, help="trained model folder (reward model, or policy)")
    ev.add_argument("--kind", choices=["reward", "policy"], default="reward")
    ev.add_argument("--ref-model", default="", help="policy eval: reference model (default: the one trained from)")
    ev.add_argument(
        "--reference-free",
        action="store_true",
        help="policy eval: h = beta * (log pi(y_w) - log pi(y_l)), no reference",
    )
    ev.add_argument(
        "--benchmark",
        choices=["pairs", "rewardbench"],
        default="pairs",
        help="pairs: held-out pair files; rewardbench: --data is RewardBench (allenai/reward-bench or a local file)",
    )
    ev.add_argument(
        "--prior-sets", nargs="+", default=[], help="RewardBench Prior Sets: allenai/pref-test-sets or local files"
    )
    ev.add_argument("--beta", type=positive_float, default=None, help="policy eval: beta of the implicit reward")
    ev.add_argument("--gamma", type=positive_float, default=1.0, help="gamma of the soft targets for NLL/Brier")
    ev.add_argument(
        "--scoring",
        choices=["rewardbench", "mmpo"],  # evaluation.pair_eval.SCORING_MODES (tests/test_cli.py)
        default=None,
        help="rewardbench: render, tokenise and truncate as reward-bench does (the default for --benchmark "
        "rewardbench); mmpo: as mmpo trains (the default for pairs)",
    )
    ev.add_argument(
        "--ref-free-type",
        choices=["sum", "avg", "norm"],  # features.logprobs.LOGP_REDUCTIONS (tests/test_cli.py)
        default=None,
        help="--reference-free: log pi summed, averaged per token or minus its L2 norm, as reward-bench's "
        "ref_free_type (default: avg under --scoring rewardbench, as its run_dpo.py; else sum)",
    )
    ev.add_argument(
        "--max-length",
        type=positive_int,
        default=None,
        help="default 2048 (--scoring rewardbench) or 512; a frozen-encoder reward head: the length it was trained at",
    )
    ev.add_argument(
        "--max-prompt-length", type=positive_int, default=None, help="default 128 (--scoring rewardbench) or 256"
    )
    ev.add_argument("--batch-size", type=positive_int, default=16)
    ev.add_argument("--bins", type=positive_int, default=10)
    ev.add_argument("--out", default="", help="folder for report.json and reliability.png")
    ev.add_argument(
        "--cache-dir",
        default=None,
        help="embeddings and log-probs cache ('' = none; default: the cache the model's training run used, "
        "else $MMPO_CACHE_DIR or ~/.cache/mmpo)",
    )
    add_data_options(ev)
    ev.set_defaults(func=execute)


def to_params(args: argparse.Namespace) -> EvalParams:
    from mmpo.commands.eval import EvalParams
    from mmpo.evaluation.pair_eval import ScoringSettings

    if args.prior_sets and args.benchmark != "rewardbench":
        raise ConfigError("--prior-sets needs --benchmark rewardbench")
    tokenization = args.scoring or ("rewardbench" if args.benchmark == "rewardbench" else "mmpo")
    if args.ref_free_type and not args.reference_free:
        raise ConfigError("--ref-free-type needs --reference-free")
    scoring = ScoringSettings(
        model=args.model,
        kind=args.kind,
        ref_model=args.ref_model,
        beta=args.beta,
        reference_free=args.reference_free,
        cache_dir=args.cache_dir,
        max_length=args.max_length,
        max_prompt_length=args.max_prompt_length,
        batch_size=args.batch_size,
        tokenization=tokenization,
        reference_free_reduction=args.ref_free_type or ("avg" if tokenization == "rewardbench" else "sum"),
    )
    scoring.lengths()  # checked before anything loads
    return EvalParams(
        scoring, args.data, args.data_overrides, args.gamma, args.bins, args.out, args.benchmark, args.prior_sets
    )


def execute(args: argparse.Namespace) -> int:
    from mmpo.commands.eval import run_eval

    print_json(run_eval(to_params(args)))
    return 0
