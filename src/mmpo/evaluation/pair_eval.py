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
from mmpo.features.rewardbench_tokenize import (
    REWARDBENCH_MAX_LENGTH,
    REWARDBENCH_MAX_PROMPT_LENGTH,
    RewardBenchLengths,
    rewardbench_policy_features,
)
from mmpo.features.scoring import RewardPairScorer, policy_rewards
from mmpo.features.tokenize import LengthPolicy, tokenize_policy_pairs
from mmpo.losses.table import loss_spec
from mmpo.metrics.bootstrap import DEFAULT_RESAMPLES, LEVEL, metric_intervals
from mmpo.metrics.calibration import bins_record, pairwise_calibration, preference_report
from mmpo.metrics.pair_scores import PAIR_SCORES_FILE, pair_key, write_pair_scores
from mmpo.metrics.plots import plot_reliability
from mmpo.models.loading import load_causal_lm, saved_run_of
from mmpo.records import Pair

_GENERIC_STEMS = {"dataset", "data", "test", "eval", "train"}


SCORING_MODES = ("mmpo", "rewardbench")


@dataclass(frozen=True)
class ScoringSettings:
    """How to turn pairs into preference logits h with a trained model.

    kind: 'reward' (h = r_w - r_l) or 'policy' (h = beta * delta against ``ref_model``; an empty
    ``ref_model`` with ``reference_free`` scores log pi alone, as SimPO-style policies are trained).
    tokenization: 'mmpo' (the prompt rendered with its generation prompt, prompt and response tokenised
    apart, as mmpo trains) or 'rewardbench' (rendered, tokenised and truncated as reward-bench scores, see
    ``features/rewardbench_tokenize.py``). reference_free_reduction: how a reference-free policy turns token
    log-probs into a reward ('sum', or reward-bench's 'avg' and 'norm')."""

    model: str
    kind: str = "reward"
    ref_model: str = ""
    beta: float | None = None
    reference_free: bool = False
    max_length: int | None = None  # None: 2048 under rewardbench scoring (512 else); a reward head: as trained
    max_prompt_length: int | None = None  # None: 128 under rewardbench scoring, else 256
    batch_size: int = 16
    cache_dir: str | None = None
    tokenization: str = "mmpo"
    reference_free_reduction: str = "sum"

    def lengths(self) -> tuple[int, int]:
        """(max_length, max_prompt_length), reward-bench's defaults under its scoring, else mmpo's."""
        rewardbench = self.tokenization == "rewardbench"
        max_length = self.max_length or (REWARDBENCH_MAX_LENGTH if rewardbench else 512)
        max_prompt_length = self.max_prompt_length or (REWARDBENCH_MAX_PROMPT_LENGTH if rewardbench else 256)
        if max_prompt_length >= max_length:
            raise ConfigError(f"--max-prompt-length ({max_prompt_length}) must be below --max-length ({max_length})")
        return max_length, max_prompt_length


def reference_free_reduction_of(loss_type: str, tokenization: str = "mmpo") -> str | None:
    """How to score a policy trained with ``loss_type`` without a reference: None if the loss used one; else the
    mean log-prob per token where the loss averaged (SimPO, gamma-PO, AMaPO, RePO), the summed one otherwise, and
    reward-bench's own 'avg' default under its scoring."""
    spec = loss_spec(loss_type)
    if spec.needs_reference:
        return None
    return "avg" if spec.length_averaged or tokenization != "mmpo" else "sum"


@dataclass(frozen=True)
class PairScores:
    """Per-pair scores of the chosen and the rejected response: a reward model's rewards, or a policy's
    implicit rewards without beta (reward-bench's ``scores_chosen`` / ``scores_rejected``); ``scale`` is the
    beta that turns their difference into the preference logit h (1 for a reward model)."""

    chosen: torch.Tensor
    rejected: torch.Tensor
    scale: float = 1.0

    @property
    def preference_logits(self) -> torch.Tensor:
        return self.scale * (self.chosen - self.rejected)

    def subset(self, start: int, stop: int) -> PairScores:
        return PairScores(self.chosen[start:stop], self.rejected[start:stop], self.scale)


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


def pair_scores(settings: ScoringSettings, pairs: list[Pair], tokenizer: PreTrainedTokenizerBase | None) -> PairScores:
    """Scores of both responses of every pair, in the order of ``pairs``."""
    max_length, max_prompt_length = settings.lengths()
    if settings.kind == "reward":
        scorer = RewardPairScorer(
            settings.model,
            max_length,
            max_prompt_length,
            settings.batch_size,
            settings.cache_dir,
            settings.tokenization,
            encoder_max_length=settings.max_length,
        )
        return PairScores(*scorer.pair_rewards(pairs))
    assert tokenizer is not None
    if settings.tokenization == "rewardbench":
        features = rewardbench_policy_features(pairs, tokenizer, RewardBenchLengths(max_length, max_prompt_length))
    else:  # evaluation scores every pair
        features = tokenize_policy_pairs(pairs, tokenizer, LengthPolicy(max_length, max_prompt_length, "truncate"))
    trained = saved_run_of(settings.model)
    beta = settings.beta if settings.beta is not None else (trained.config.loss.beta if trained else None)
    reference_name = settings.ref_model or (trained.config.model if trained else "")
    if beta is None or not (reference_name or settings.reference_free):
        raise ConfigError("policy eval needs --beta and --ref-model (no mmpo_config.yaml next to the model)")
    reference = None if settings.reference_free else load_causal_lm(reference_name)
    chosen, rejected = policy_rewards(
        load_causal_lm(settings.model),
        reference,
        features,
        tokenizer.pad_token_id,
        settings.batch_size,
        settings.cache_dir,
        reference_free_reduction=settings.reference_free_reduction,
    )
    return PairScores(chosen, rejected, beta)


def preference_logits(
    settings: ScoringSettings, pairs: list[Pair], tokenizer: PreTrainedTokenizerBase | None
) -> torch.Tensor:
    """h per pair, in the order of ``pairs``."""
    return pair_scores(settings, pairs, tokenizer).preference_logits


def write_report(
    h: torch.Tensor, pairs: list[Pair], gamma: float, bins: int, out: str | Path | None, label: str
) -> dict[str, Any]:
    """The preference report of ``h``; with ``out``, report.json and reliability.png there."""
    margins = [p.margin for p in pairs]
    report = preference_report(h, margins, gamma, bins, [p.section for p in pairs])
    report["target_gamma"] = gamma
    report["intervals"] = {k: v.as_list() for k, v in metric_intervals(h, margins, gamma, bins).items()}
    report["bootstrap"] = {"resamples": DEFAULT_RESAMPLES, "level": LEVEL}
    if out:
        folder = Path(out)
        folder.mkdir(parents=True, exist_ok=True)
        calibration = pairwise_calibration(h, margins, bins)
        png = plot_reliability({label: calibration}, folder / "reliability.png")
        report["reliability_png"] = str(png)
        report["reliability_bins"] = bins_record(calibration)
        (folder / "report.json").write_text(strict_json.dumps(report))
        write_pair_scores(folder / PAIR_SCORES_FILE, [pair_key(p.section, p.source_row) for p in pairs], margins, h)
    return report
