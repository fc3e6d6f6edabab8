"""Scoring a trained reward model or policy on pair files, and the report written for it.

Several files can be evaluated together; each becomes a section (the folder name for files called
dataset.json, else the file stem) and the report adds a RewardBench-style section-averaged accuracy.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch
from transformers import PreTrainedTokenizerBase

from mmpo import strict_json
from mmpo.config.schema import DataConfig
from mmpo.data.prepare import prepare_pairs
from mmpo.errors import ConfigError
from mmpo.features.scoring import RewardPairScorer, policy_preference_logits
from mmpo.features.tokenize import LengthPolicy, tokenize_policy_pairs
from mmpo.metrics.calibration import bins_record, pairwise_calibration, preference_report
from mmpo.metrics.plots import plot_reliability
from mmpo.models.loading import load_causal_lm, saved_run_of
from mmpo.records import Pair

_GENERIC_STEMS = {"dataset", "data", "test", "eval", "train"}


@dataclass(frozen=True)
class ScoringSettings:
    """How to turn pairs into preference logits h with a trained model.

    kind: 'reward' (h = r_w - r_l) or 'policy' (h = beta * delta against ``ref_model``; an empty
    ``ref_model`` with ``reference_free`` scores log pi alone, as SimPO-style policies are trained)."""

    model: str
    kind: str = "reward"
    ref_model: str = ""
    beta: float | None = None
    reference_free: bool = False
    max_length: int = 512
    max_prompt_length: int = 256
    batch_size: int = 16
    cache_dir: str | None = None


def section_name(path: str) -> str:
    p = Path(path.split(":", 1)[-1])
    stem = p.name.split(".")[0]
    return p.parent.name if stem in _GENERIC_STEMS else stem


def load_eval_pairs(files: Sequence[str], data: DataConfig, tokenizer: PreTrainedTokenizerBase | None) -> list[Pair]:
    """Pairs of every file; with several files and no section column, each file is its own section.
    ``data.max_eval_samples`` caps each file (a seeded subset, as in training's eval set)."""
    pairs: list[Pair] = []
    for path in files:
        file_pairs = prepare_pairs(data, path, tokenizer, max_samples=data.max_eval_samples, name=path)
        if len(files) > 1 and not data.section_column:
            file_pairs = [replace(p, section=section_name(path)) for p in file_pairs]
        pairs += file_pairs
    return pairs


def preference_logits(
    settings: ScoringSettings, pairs: list[Pair], tokenizer: PreTrainedTokenizerBase | None
) -> torch.Tensor:
    """h per pair, in the order of ``pairs``."""
    if settings.kind == "reward":
        scorer = RewardPairScorer(
            settings.model, settings.max_length, settings.max_prompt_length, settings.batch_size, settings.cache_dir
        )
        return scorer.preference_logits(pairs)
    assert tokenizer is not None
    length = LengthPolicy(settings.max_length, settings.max_prompt_length, "truncate")  # evaluation scores every pair
    features = tokenize_policy_pairs(pairs, tokenizer, length)
    trained = saved_run_of(settings.model)
    beta = settings.beta if settings.beta is not None else (trained.config.loss.beta if trained else None)
    reference_name = settings.ref_model or (trained.config.model if trained else "")
    if beta is None or not (reference_name or settings.reference_free):
        raise ConfigError("policy eval needs --beta and --ref-model (no mmpo_config.yaml next to the model)")
    reference = None if settings.reference_free else load_causal_lm(reference_name)
    return policy_preference_logits(
        load_causal_lm(settings.model),
        reference,
        features,
        tokenizer.pad_token_id,
        beta,
        settings.batch_size,
        settings.cache_dir,
    )


def write_report(
    h: torch.Tensor, pairs: list[Pair], gamma: float, bins: int, out: str | Path | None, label: str
) -> dict[str, Any]:
    """The preference report of ``h``; with ``out``, report.json and reliability.png there."""
    margins = [p.margin for p in pairs]
    report = preference_report(h, margins, gamma, bins, [p.section for p in pairs])
    if out:
        folder = Path(out)
        folder.mkdir(parents=True, exist_ok=True)
        calibration = pairwise_calibration(h, margins, bins)
        png = plot_reliability({label: calibration}, folder / "reliability.png")
        report["reliability_png"] = str(png)
        report["reliability_bins"] = bins_record(calibration)
        (folder / "report.json").write_text(strict_json.dumps(report))
    return report
