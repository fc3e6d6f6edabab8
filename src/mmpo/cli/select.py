"""``mmpo select``: keep the pairs a margin-based method scores highest (a normal pair file out)."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from mmpo.cli.arguments import add_data_settings, positive_float, positive_int, print_json

if TYPE_CHECKING:
    from mmpo.commands.select import SelectParams


def _fraction(text: str) -> float:
    value = positive_float(text)
    if value > 1:
        raise argparse.ArgumentTypeError(f"must be a fraction in (0, 1] (got {text})")
    return value


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "select",
        help="keep the pairs a margin-based method scores highest: margin, alignment-potential, dual-margin",
        description=(
            "margin: the data's quality margin. alignment-potential (Huang et al. 2025): z(margin) - w z(|implicit|), "
            "the implicit margin under --model (the policy before training). dual-margin (Deng et al. 2025): the "
            "margin and the implicit DPO margin of --model (DPO-trained on a small seed set) against --reference, "
            "added or combined as probabilities (--combine mul)."
        ),
    )
    parser.add_argument("--by", required=True, choices=["margin", "alignment-potential", "dual-margin"])
    parser.add_argument("--keep", type=_fraction, required=True, help="fraction of the pairs to keep, e.g. 0.1")
    parser.add_argument("--data", required=True, help="pair file (local, bundled: or a hub id)")
    parser.add_argument("--out", required=True, help="JSON Lines file of the kept rows, unchanged")
    parser.add_argument("--model", default="", help="alignment-potential / dual-margin: the causal LM scored")
    parser.add_argument("--reference", default="", help="dual-margin: the model the seed DPO run started from")
    parser.add_argument("--logp-weight", type=positive_float, default=1.0, help="alignment-potential's w")
    parser.add_argument("--combine", choices=["add", "mul"], default="add", help="dual-margin: ADD or MUL")
    parser.add_argument("--max-length", type=positive_int, default=512)
    parser.add_argument("--max-prompt-length", type=positive_int, default=256)
    parser.add_argument("--batch-size", type=positive_int, default=16)
    add_data_settings(parser)
    parser.set_defaults(func=execute)


def to_params(args: argparse.Namespace) -> SelectParams:
    from mmpo.commands.select import SelectParams

    return SelectParams(
        data=args.data,
        out=args.out,
        by=args.by,
        keep=args.keep,
        data_overrides=args.data_overrides,
        model=args.model,
        reference=args.reference,
        logp_weight=args.logp_weight,
        combine=args.combine,
        max_length=args.max_length,
        max_prompt_length=args.max_prompt_length,
        batch_size=args.batch_size,
    )


def execute(args: argparse.Namespace) -> int:
    from mmpo.commands.select import run_select

    print_json(run_select(to_params(args)))
    return 0
