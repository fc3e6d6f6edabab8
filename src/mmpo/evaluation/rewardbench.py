"""RewardBench as the paper evaluates it: per-subset accuracies, the four sections and both overall scores,
plus accuracy and calibration (ECE, reliability diagram: the paper's Figure 4) on the Prior Sets.

RB is ``allenai/reward-bench`` (split ``filtered`` unless named) or a local file with its columns
(``prompt, chosen, rejected, subset``); the Prior Sets are ``allenai/pref-test-sets`` (its
anthropic_helpful, anthropic_hhh, shp and summarize splits) or local files, named by their ``subset``
column or else their file stem. Every pair is oriented (chosen is better), so a pair is right when its chosen
response scores strictly higher, as reward-bench counts it (a tie is wrong).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch
from transformers import PreTrainedTokenizerBase

from mmpo import strict_json
from mmpo.config.paths import parse_hub_dataset_id
from mmpo.config.schema import DataConfig
from mmpo.data.hub import snapshot_folder
from mmpo.data.io import load_records
from mmpo.data.pairs import build_pairs
from mmpo.errors import DataError
from mmpo.evaluation.pair_eval import PairScores, ScoringSettings, pair_scores, section_name
from mmpo.evaluation.rewardbench_files import write_results_jsonl, write_rewardbench_files
from mmpo.metrics.bootstrap import rewardbench_intervals
from mmpo.metrics.calibration import CalibrationBins, bins_record, pairwise_calibration
from mmpo.metrics.plots import plot_reliability
from mmpo.metrics.rewardbench import PRIOR_SETS, rewardbench_scores
from mmpo.records import Pair

RB_DEFAULT_SPLIT = "filtered"

logger = logging.getLogger("mmpo")


def benchmark_data_config(overrides: DataConfig) -> DataConfig:
    """RewardBench rows are already oriented: a constant margin, sections from the ``subset`` column."""
    return replace(overrides, margin_source="constant", constant_margin=1.0, section_column="subset", label_column="")


@dataclass(frozen=True)
class BenchmarkPairs:
    """The pairs of a benchmark file and each pair's ``id`` (the file's id column, else its row number)."""

    pairs: list[Pair]
    ids: list[Any]


def _pairs_of(records, cfg: DataConfig, tokenizer, name: str, default_section: str, dialogue: str) -> BenchmarkPairs:
    has_subset = "subset" in records.column_names
    pairs, stats = build_pairs(
        records, cfg if has_subset else replace(cfg, section_column=""), tokenizer, name, dialogue
    )
    stats.log(name)  # rows read -> pairs kept, on stderr
    ids = records["id"] if "id" in records.column_names else None
    pair_ids = [ids[p.source_row] if ids is not None else p.source_row for p in pairs]
    return BenchmarkPairs(pairs if has_subset else [replace(p, section=default_section) for p in pairs], pair_ids)


def load_rewardbench(
    source: str, cfg: DataConfig, tokenizer: PreTrainedTokenizerBase | None, dialogue: str = "mmpo"
) -> BenchmarkPairs:
    records = load_records(source, split=RB_DEFAULT_SPLIT)
    if "subset" not in records.column_names:
        raise DataError(f"{source}: RewardBench data needs a 'subset' column; columns present: {records.column_names}")
    return _pairs_of(records, benchmark_data_config(cfg), tokenizer, source, "", dialogue)


def load_prior_sets(
    sources: Sequence[str], cfg: DataConfig, tokenizer: PreTrainedTokenizerBase | None, dialogue: str = "mmpo"
) -> BenchmarkPairs:
    """Pairs of every prior set given (anthropic_helpful, anthropic_hhh, shp, summarize, ...), each pair's
    section its set's name."""
    cfg = benchmark_data_config(cfg)
    parts: list[BenchmarkPairs] = []
    for source in sources:
        hub = parse_hub_dataset_id(source)
        if hub is not None and hub.split is None:  # the whole pref-test-sets repository: one split per set
            import datasets

            splits = datasets.load_dataset(snapshot_folder(hub), name=hub.config)
            wanted = [s for s in PRIOR_SETS if s in splits]
            if not wanted:
                raise DataError(f"{source}: none of the Prior Sets {PRIOR_SETS} among its splits {sorted(splits)}")
            for split in wanted:  # as reward-bench: the split names the set, a 'subset' column is a sub-subset
                records = splits[split]
                if "subset" in records.column_names:
                    records = records.rename_column("subset", "subsubset")
                parts.append(_pairs_of(records, cfg, tokenizer, f"{source}:{split}", split, dialogue))
            continue
        default = hub.split if hub is not None else section_name(source)
        parts.append(_pairs_of(load_records(source), cfg, tokenizer, source, default, dialogue))
    return BenchmarkPairs([p for part in parts for p in part.pairs], [i for part in parts for i in part.ids])


def _groups(pairs: Sequence[Pair]) -> dict[str, list[int]]:
    groups: dict[str, list[int]] = defaultdict(list)
    for index, pair in enumerate(pairs):
        groups[pair.section].append(index)
    return dict(sorted(groups.items()))


def correct_pairs(scores: PairScores) -> torch.Tensor:
    """reward-bench's ``results``: 1 where the chosen response scores strictly higher (a tie is wrong)."""
    return scores.chosen > scores.rejected


def subset_report(scores: PairScores, pairs: Sequence[Pair], prefix: str = "") -> tuple[dict[str, float], dict]:
    """(accuracy per subset, report entries: accuracy, n_correct and n_total per subset)."""
    correct = correct_pairs(scores)
    accuracy: dict[str, float] = {}
    entries: dict[str, Any] = {}
    for name, index in _groups(pairs).items():
        n_correct, n_total = int(correct[index].sum()), len(index)
        accuracy[name] = n_correct / n_total
        entries[f"{prefix}accuracy/{name}"] = accuracy[name]
        entries[f"{prefix}n_correct/{name}"] = n_correct
        entries[f"{prefix}n_total/{name}"] = n_total
    return accuracy, entries


def _calibration(h: torch.Tensor, pairs: Sequence[Pair], bins: int):
    return pairwise_calibration(h, [p.margin for p in pairs], bins)


def prior_sets_report(
    scores: PairScores, pairs: Sequence[Pair], bins: int
) -> tuple[dict[str, float], dict, CalibrationBins | None]:
    """Accuracy and ECE of the Prior Sets: ``prior_sets/ece`` over exactly the sets that make the Prior Sets
    score (anthropic_helpful, anthropic_hhh, shp, summarize), each set's own ECE, and any other set given
    reported on its own (``prior_sets/other/...``), in neither the score nor the pooled ECE. Returns (accuracy per
    set, report entries, the pooled reliability bins or None when none of the four sets is given)."""
    accuracy, entries = subset_report(scores, pairs, "prior_sets/")
    h = scores.preference_logits
    groups = _groups(pairs)
    for name, index in groups.items():
        entries[f"prior_sets/ece/{name}"] = _calibration(h[index], [pairs[i] for i in index], bins).ece
    scored = [i for name, index in groups.items() if name in PRIOR_SETS for i in index]
    others = sorted(name for name in groups if name not in PRIOR_SETS)
    if others:
        entries["prior_sets/other"] = others
    entries["prior_sets/pairs"] = len(scored)
    pooled = None
    if scored:
        pooled = _calibration(h[scored], [pairs[i] for i in scored], bins)
        entries["prior_sets/ece"] = pooled.ece
        entries["prior_sets/mean_confidence"] = torch.sigmoid(h[scored].abs()).mean().item()
        entries["prior_sets/reliability_bins"] = bins_record(pooled)
    return accuracy, entries, pooled


def evaluate_rewardbench(
    settings: ScoringSettings,
    rb_source: str,
    prior_sources: Sequence[str],
    cfg: DataConfig,
    tokenizer: PreTrainedTokenizerBase | None,
    bins: int = 10,
    out: str | Path | None = None,
) -> dict[str, Any]:
    """The RewardBench report of one model; with ``out``, report.json, results.jsonl, reward-bench's own
    result files and the Prior Sets reliability diagram."""
    dialogue = settings.tokenization if tokenizer is not None else "mmpo"
    rb = load_rewardbench(rb_source, cfg, tokenizer, dialogue)
    priors = load_prior_sets(prior_sources, cfg, tokenizer, dialogue) if prior_sources else BenchmarkPairs([], [])
    logger.info("RewardBench: %d pairs in %d subsets", len(rb.pairs), len(_groups(rb.pairs)))
    if priors.pairs:
        logger.info("Prior Sets: %d pairs in %d sets", len(priors.pairs), len(_groups(priors.pairs)))
    scores = pair_scores(settings, rb.pairs + priors.pairs, tokenizer)  # one model load for both
    rb_scores, prior_scores = scores.subset(0, len(rb.pairs)), scores.subset(len(rb.pairs), len(scores.chosen))
    report: dict[str, Any] = {
        "benchmark": "rewardbench",
        "model": settings.model,
        "scoring": settings.tokenization,
        "pairs": len(rb.pairs),
    }
    subset_accuracy, entries = subset_report(rb_scores, rb.pairs)
    report.update(entries)
    prior_accuracy: dict[str, float] = {}
    pooled_bins = None
    if priors.pairs:
        prior_accuracy, prior_entries, pooled_bins = prior_sets_report(prior_scores, priors.pairs, bins)
        report.update(prior_entries)
    report.update(rewardbench_scores(subset_accuracy, prior_accuracy))
    rb_correct, prior_correct = correct_pairs(rb_scores), correct_pairs(prior_scores) if priors.pairs else None
    intervals = rewardbench_intervals(
        {name: rb_correct[index] for name, index in _groups(rb.pairs).items()},
        {name: prior_correct[index] for name, index in _groups(priors.pairs).items()} if priors.pairs else {},
    )
    report["intervals"] = {key: interval.as_list() for key, interval in intervals.items()}
    if out:
        folder = Path(out)
        folder.mkdir(parents=True, exist_ok=True)
        if pooled_bins is not None:
            png = plot_reliability(
                {Path(settings.model).name: pooled_bins}, folder / "reliability_prior_sets.png", title="Prior Sets"
            )
            report["prior_sets/reliability_png"] = str(png)
        write_results_jsonl(folder / "results.jsonl", [(rb, rb_scores), (priors, prior_scores)])
        write_rewardbench_files(folder, settings, "eval-set", rb, rb_scores)
        if priors.pairs:
            write_rewardbench_files(folder, settings, "pref-sets", priors, prior_scores)
        (folder / "report.json").write_text(strict_json.dumps(report))
    return report
