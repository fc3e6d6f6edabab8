"""``mmpo eval``: score a trained reward model or policy on pair files and report calibration."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from mmpo.config.loading import data_config_from_overrides
from mmpo.data.io import check_data_files
from mmpo.errors import ConfigError
from mmpo.evaluation.pair_eval import ScoringSettings, load_eval_pairs, preference_logits, write_report
from mmpo.evaluation.rewardbench import evaluate_rewardbench
from mmpo.file_errors import ensure_writable_folder
from mmpo.models.inspect import require_model_kind
from mmpo.models.loading import load_tokenizer, saved_run_of


@dataclass(frozen=True)
class EvalParams:
    """benchmark 'pairs': every --data file is a section of held-out pairs (accuracy, ECE, soft NLL);
    'rewardbench': --data is RewardBench and prior_sets its Prior Sets."""

    scoring: ScoringSettings
    data: list[str]
    data_overrides: list[str] = field(default_factory=list)
    gamma: float = 1.0
    bins: int = 10
    out: str = ""
    benchmark: str = "pairs"
    prior_sets: list[str] = field(default_factory=list)


def default_cache_dir(model: str) -> str:
    """Where evaluation caches embeddings and log-probs unless told: the trained run's own cache (so evaluating a
    model reuses what training embedded or scored), else $MMPO_CACHE_DIR or ~/.cache/mmpo."""
    trained = saved_run_of(model)
    if trained is not None:
        return trained.cache_folder()
    return os.environ.get("MMPO_CACHE_DIR") or str(Path("~/.cache/mmpo").expanduser())


def run_eval(params: EvalParams) -> dict[str, Any]:
    if params.scoring.cache_dir is None:
        params = replace(params, scoring=replace(params.scoring, cache_dir=default_cache_dir(params.scoring.model)))
    elif params.scoring.cache_dir == "":
        params = replace(params, scoring=replace(params.scoring, cache_dir=None))
    data_cfg = data_config_from_overrides(params.data_overrides)
    if params.scoring.tokenization == "rewardbench" and data_cfg.chat_template == "never":
        raise ConfigError(
            "data.chat_template=never: reward-bench scoring always renders with the chat template; use --scoring mmpo"
        )
    check_data_files(params.data)
    if params.out:
        ensure_writable_folder(params.out, "--out")
    model = params.scoring.model
    kind = require_model_kind(model, params.scoring.kind, "--model")
    if params.scoring.ref_model:
        require_model_kind(params.scoring.ref_model, "policy", "--ref-model")
    if params.benchmark == "rewardbench":
        check_data_files(params.prior_sets)
        if len(params.data) != 1:
            raise ConfigError("--benchmark rewardbench takes one --data (allenai/reward-bench or a local file)")
    tokenizer = None if kind == "reward_head" else load_tokenizer(model)
    if params.benchmark == "rewardbench":
        return evaluate_rewardbench(
            params.scoring, params.data[0], params.prior_sets, data_cfg, tokenizer, params.bins, params.out or None
        )
    pairs = load_eval_pairs(params.data, data_cfg, tokenizer)
    h = preference_logits(params.scoring, pairs, tokenizer)
    return write_report(h, pairs, params.gamma, params.bins, params.out, Path(model).name)
