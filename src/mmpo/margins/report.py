"""``mmpo margins``: inspect the margins and MMPO targets a data config produces, before training."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import torch

from mmpo.config import data_config_from_overrides
from mmpo.data.prepare import prepare_pairs
from mmpo.losses.targets import target_probability


def margins_from_args(args: argparse.Namespace) -> dict[str, Any]:
    cfg = data_config_from_overrides(args.data_overrides)
    files = args.data if isinstance(args.data, list) else [args.data]
    pairs = [pair for path in files for pair in prepare_pairs(cfg, path, None, name=path)]
    margins = torch.tensor([p["margin"] for p in pairs], dtype=torch.float64)
    targets = target_probability(margins, args.gamma)
    quantiles = torch.quantile(margins, torch.tensor([0.0, 0.25, 0.5, 0.75, 1.0], dtype=torch.float64)).tolist()
    summary = {
        "pairs": len(pairs),
        "ties": int((margins == 0).sum()),
        "margin_quantiles_0_25_50_75_100": [round(q, 4) for q in quantiles],
        "gamma": args.gamma,
        "mean_target_p": round(targets.mean().item(), 4),
    }
    if args.out:
        with Path(args.out).open("w") as handle:
            for pair, target in zip(pairs, targets.tolist(), strict=True):
                handle.write(json.dumps({**pair, "target": target}) + "\n")
        summary["written"] = args.out
    return summary
