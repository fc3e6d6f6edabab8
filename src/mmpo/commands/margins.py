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
from mmpo.errors import ConfigError, DataError
from mmpo.file_errors import ensure_writable_folder
from mmpo.losses import target_probability


@dataclass(frozen=True)
class MarginsParams:
    data: list[str]
    data_overrides: list[str] = field(default_factory=list)
    gamma: float = 1.0
    out: str = ""
    plot: str = ""  # PNG of the margin diagnostics (distribution, margin vs response similarity, vs a policy)
    policy: str = ""  # a trained policy run folder: its implicit margins against the data's, in the plot
    max_length: int | None = None
    max_prompt_length: int | None = None


def run_margins(params: MarginsParams) -> dict[str, Any]:
    cfg = data_config_from_overrides(params.data_overrides)
    check_data_files(params.data)
    if params.out and Path(params.out).exists():
        inputs = {Path(d).resolve() for d in params.data if not d.startswith(("bundled:", "hf:"))}
        if Path(params.out).resolve() in inputs:
            raise DataError(f"--out {params.out} is one of the input files; write the margins to a file of their own")
    if params.policy and not params.plot:
        raise ConfigError("--policy is drawn in the plot: add --plot FILE.png")
    if params.plot and not params.plot.endswith(".png"):
        raise ConfigError(f"--plot {params.plot}: name a .png file")
    for target, what in ((params.out, "--out's folder"), (params.plot, "--plot's folder")):
        if target:
            ensure_writable_folder(Path(target).parent, what)
    tokenizer = None
    if params.policy:
        from mmpo.models.loading import load_tokenizer, saved_run_of

        if saved_run_of(params.policy) is None:
            raise ConfigError(f"--policy {params.policy}: not a trained mmpo run (no mmpo_config.yaml)")
        tokenizer = load_tokenizer(params.policy)  # render prompts as the policy was trained
    pairs = [pair for path in params.data for pair in prepare_pairs(cfg, path, tokenizer, name=path)]
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
    if params.plot:
        summary.update(margin_diagnostics(params, cfg, pairs, tokenizer))
    return summary


def margin_diagnostics(params: MarginsParams, cfg, pairs, tokenizer) -> dict[str, Any]:
    """The plot, and the rank correlations it shows: margin vs response similarity (the paper's Figure 7) and, with
    --policy, the policy's implicit margin vs the data's."""
    from mmpo.margins.similarity import SimilarityMarginEstimator
    from mmpo.metrics.plots import plot_margin_diagnostics, spearman

    margins = [p.margin for p in pairs]
    cosines = SimilarityMarginEstimator(cfg.similarity_model or None).cosines(
        [p.chosen for p in pairs], [p.rejected for p in pairs]
    )
    found: dict[str, Any] = {"similarity_spearman": round(spearman(cosines, margins), 4)}
    implicit = None
    if params.policy:
        from mmpo.evaluation.pair_eval import ScoringSettings, preference_logits, reference_free_reduction_of
        from mmpo.models.loading import saved_run_of

        run = saved_run_of(params.policy).config  # scored as it was trained: its lengths unless given, its reference
        reduction = reference_free_reduction_of(run.loss.loss_type)
        settings = ScoringSettings(
            params.policy,
            kind="policy",
            max_length=params.max_length or run.max_length,
            max_prompt_length=params.max_prompt_length or run.max_prompt_length,
            reference_free=reduction is not None,
            reference_free_reduction=reduction or "sum",
        )
        implicit = preference_logits(settings, pairs, tokenizer).tolist()
        found["implicit_margin_spearman"] = round(spearman(implicit, margins), 4)
    found["plot"] = str(plot_margin_diagnostics(margins, params.plot, cosines, implicit, Path(params.policy).name))
    return found
