"""``mmpo eval``: score a trained reward model or policy on pair files and report calibration."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from mmpo.config.loading import data_config_from_overrides
from mmpo.data.io import check_data_files
from mmpo.errors import ConfigError
from mmpo.evaluation.pair_eval import (
    ScoringSettings,
    load_eval_pairs,
    preference_logits,
    reference_free_reduction_of,
    write_report,
)
from mmpo.evaluation.rewardbench import evaluate_rewardbench
from mmpo.file_errors import ensure_writable_folder
from mmpo.models.inspect import require_model_kind
from mmpo.models.loading import load_tokenizer, saved_run_of

logger = logging.getLogger("mmpo")


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


def with_trained_run_settings(params: EvalParams) -> EvalParams:
    """Score pairs as the model was trained: under mmpo scoring, the max length, prompt length and chat template
    of the run's ``mmpo_config.yaml`` unless given here. (reward-bench scoring keeps reward-bench's own lengths,
    so its numbers compare with other models'; the soft-target gamma is never taken from the run, so an MMPO and
    a DPO run are scored against the same targets.)"""
    trained = saved_run_of(params.scoring.model)
    if trained is None:
        return params
    run = trained.config
    reduction = reference_free_reduction_of(run.loss.loss_type, params.scoring.tokenization)
    reference_given = params.scoring.reference_free or params.scoring.ref_model
    if params.scoring.kind == "policy" and reduction is not None and not reference_given:
        # trained without a reference: scored without one, as it trained
        logger.info(
            "%s was trained reference-free (%s): scored so, %s", params.scoring.model, run.loss.loss_type, reduction
        )
        params = replace(
            params, scoring=replace(params.scoring, reference_free=True, reference_free_reduction=reduction)
        )
    if params.scoring.tokenization != "mmpo":
        return params
    scoring = replace(
        params.scoring,
        max_length=params.scoring.max_length or run.max_length,
        max_prompt_length=params.scoring.max_prompt_length or run.max_prompt_length,
    )
    given = {o.split("=", 1)[0].removeprefix("data.") for o in params.data_overrides}
    template = run.data.chat_template
    overrides = (
        params.data_overrides if "chat_template" in given else [*params.data_overrides, f"chat_template={template}"]
    )
    logger.info(
        "scoring as %s was trained: max_length %d, max_prompt_length %d%s",
        params.scoring.model,
        scoring.max_length,
        scoring.max_prompt_length,
        "" if "chat_template" in given else f", chat_template {template}",
    )
    return replace(params, scoring=scoring, data_overrides=overrides)


def run_eval(params: EvalParams) -> dict[str, Any]:
    params = with_trained_run_settings(params)
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
