"""One call from a DataConfig to the list of validated pairs the trainers and evaluators consume."""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import TypeVar

from transformers import PreTrainedTokenizerBase

from mmpo.config.schema import DataConfig
from mmpo.data.io import load_records
from mmpo.data.pairs import build_pairs
from mmpo.data.sampling import sample_pairs, stratified_by_quartile
from mmpo.records import Pair

T = TypeVar("T")


def prepare_pairs(
    cfg: DataConfig,
    path: str,
    tokenizer: PreTrainedTokenizerBase | None = None,
    max_samples: int = 0,
    name: str = "data",
) -> list[Pair]:
    """Load ``path``, validate rows and compute margins, apply SHP-style sampling, then cap the size."""
    pairs, stats = build_pairs(load_records(path), cfg, tokenizer, name=name)
    stats.log(name)
    pairs = sample_pairs(pairs, cfg.max_pairs_per_prompt, cfg.margin_quartiles, cfg.shuffle_seed, cfg.min_margin)
    if cfg.stratify_margin_quartiles:
        return stratified_by_quartile(pairs, max_samples, cfg.shuffle_seed)
    return cap_samples(pairs, max_samples, cfg.shuffle_seed)


def cap_samples(items: Sequence[T], max_samples: int, seed: int) -> list[T]:
    """A seeded random subset of at most ``max_samples`` (0 = all), in file order: files are often sorted,
    so the head of a file is not a fair sample."""
    if not max_samples or len(items) <= max_samples:
        return list(items)
    picked = sorted(random.Random(seed).sample(range(len(items)), max_samples))
    return [items[i] for i in picked]
