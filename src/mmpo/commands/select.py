"""``mmpo select``: keep the pairs of a file that a margin-based method scores highest, as a normal pair file.

The output holds the selected input rows unchanged (every column kept), so it reads with the same data settings
as the input; stdout carries a summary. Implicit margins come from ``mmpo eval``'s policy scoring path (the same
tokenisation, truncation and log-prob code as training).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mmpo.config.loading import data_config_from_overrides
from mmpo.data.io import check_data_files, load_records
from mmpo.errors import ConfigError, DataError
from mmpo.evaluation.pair_eval import ScoringSettings, load_eval_pairs, pair_scores
from mmpo.file_errors import ensure_writable_folder
from mmpo.margins.selection import SELECTION_METHODS, alignment_potential, dual_margin, top_fraction

logger = logging.getLogger("mmpo")


@dataclass(frozen=True)
class SelectParams:
    """by: a method of SELECTION_METHODS; keep: the fraction of pairs kept; model: the policy before training
    (alignment-potential) or the seed-trained DPO model (dual-margin); reference: dual-margin's reference model."""

    data: str
    out: str
    by: str = "margin"
    keep: float = 0.1
    data_overrides: list[str] = field(default_factory=list)
    model: str = ""
    reference: str = ""
    logp_weight: float = 1.0
    combine: str = "add"
    max_length: int = 512
    max_prompt_length: int = 256
    batch_size: int = 16

    def validate(self) -> None:
        """Every setting checked before any model or file is read."""
        if self.by not in SELECTION_METHODS:
            raise ConfigError(f"--by {self.by!r}; choose one of {SELECTION_METHODS}")
        if not 0 < self.keep <= 1:
            raise ConfigError(f"--keep must be a fraction in (0, 1] (got {self.keep})")
        if self.by in ("alignment-potential", "dual-margin") and not self.model:
            what = "the policy before training" if self.by == "alignment-potential" else "the seed-trained DPO model"
            raise ConfigError(f"--by {self.by} needs --model ({what})")
        if self.by == "dual-margin" and not self.reference:
            raise ConfigError("--by dual-margin needs --reference (the model the seed DPO run started from)")
        if self.combine not in ("add", "mul"):
            raise ConfigError(f"--combine {self.combine!r}; choose add or mul")
        if self.max_prompt_length >= self.max_length:
            raise ConfigError("--max-prompt-length must be below --max-length")
        if Path(self.out).resolve() == Path(self.data).resolve():
            raise DataError(f"--out {self.out} is the input file; write the selection to a file of its own")


def implicit_margins(params: SelectParams, pairs, tokenizer) -> np.ndarray:
    """alignment-potential: mean log-prob per token of y_w minus y_l under --model; dual-margin: the summed log-ratio
    margin of --model against --reference (beta 1)."""
    reference_free = params.by == "alignment-potential"
    settings = ScoringSettings(
        params.model,
        kind="policy",
        ref_model="" if reference_free else params.reference,
        beta=1.0,
        reference_free=reference_free,
        max_length=params.max_length,
        max_prompt_length=params.max_prompt_length,
        batch_size=params.batch_size,
        reference_free_reduction="avg",
    )
    scores = pair_scores(settings, pairs, tokenizer)
    return (scores.chosen - scores.rejected).double().numpy()


def run_select(params: SelectParams) -> dict[str, Any]:
    params.validate()
    cfg = data_config_from_overrides(params.data_overrides)
    check_data_files([params.data])
    ensure_writable_folder(Path(params.out).parent, "--out's folder")
    tokenizer = None
    if params.model:
        from mmpo.models.loading import load_tokenizer

        tokenizer = load_tokenizer(params.model)
    pairs = load_eval_pairs([params.data], cfg, tokenizer)
    if not pairs:
        raise DataError(f"{params.data} has no pairs to select from")
    explicit = np.array([p.margin for p in pairs], dtype=np.float64)
    if params.by == "margin":
        scores = explicit
    else:
        implicit = implicit_margins(params, pairs, tokenizer)
        if params.by == "alignment-potential":
            scores = alignment_potential(explicit, implicit, params.logp_weight)
        else:
            scores = dual_margin(explicit, implicit, params.combine)
    kept = top_fraction(scores, params.keep)
    rows = load_records(params.data)
    with Path(params.out).open("w") as handle:
        for index in kept:
            handle.write(json.dumps(rows[pairs[index].source_row], default=str) + "\n")
    logger.info("select: kept %d of %d pairs by %s", len(kept), len(pairs), params.by)
    finite = scores[np.isfinite(scores)]
    return {
        "by": params.by,
        "pairs": len(pairs),
        "kept": len(kept),
        "first_kept_rows": [pairs[i].source_row for i in kept][:20],
        "score_of_last_kept": round(float(scores[kept].min()), 6),
        "score_quantiles_0_50_100": [round(float(q), 6) for q in np.quantile(finite, [0, 0.5, 1])]
        if len(finite)
        else [],
        "out": params.out,
    }
