"""``mmpo margins``: inspect the margins and MMPO targets a data config produces, before training."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from mmpo.config.loading import data_config_from_overrides
from mmpo.data.io import check_data_files
from mmpo.data.prepare import prepare_pairs
from mmpo.errors import DataError
from mmpo.file_errors import ensure_writable_folder
from mmpo.losses import target_probability


@dataclass(frozen=True)
class MarginsParams:
    data: list[str]
    data_overrides: list[str] = field(default_factory=list)
    gamma: float = 1.0
    out: str = ""


def run_margins(params: MarginsParams) -> dict[str, Any]:
    cfg = data_config_from_overrides(params.data_overrides)
    check_data_files(params.data)
    if params.out and Path(params.out).exists():
        inputs = {Path(d).resolve() for d in params.data if not d.startswith(("bundled:", "hf:"))}
        if Path(params.out).resolve() in inputs:
            raise DataError(f"--out {params.out} is one of the input files; write the margins to a file of their own")
    if params.out:
        ensure_writable_folder(Path(params.out).parent, "--out's folder")
    pairs = [pair for path in params.data for pair in prepare_pairs(cfg, path, None, name=path)]
    margins = torch.tensor([p.margin for p in pairs], dtype=torch.float64)
    targets = target_probability(margins, params.gamma)
    quantiles = torch.quantile(margins, torch.tensor([0.0, 0.25, 0.5, 0.75, 1.0], dtype=torch.float64)).tolist()
    summary: dict[str, Any] = {
        "pairs": len(pairs),
        "ties": int((margins == 0).sum()),
        "margin_quantiles_0_25_50_75_100": [round(q, 4) for q in quantiles],
        "gamma": params.gamma,
        "mean_target_p": round(targets.mean().item(), 4),
    }
    if params.out:
        with Path(params.out).open("w") as handle:
            for pair, target in zip(pairs, targets.tolist(), strict=True):
                handle.write(json.dumps({**dataclasses.asdict(pair), "target": target}) + "\n")
        summary["written"] = params.out
    return summary
