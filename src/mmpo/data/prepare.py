"""One call from a DataConfig to the list of validated pairs the trainers and evaluators consume."""

from __future__ import annotations

import random
from typing import Any

from transformers import PreTrainedTokenizerBase

from mmpo.config import DataConfig
from mmpo.data.io import load_records
from mmpo.data.pairs import PairBuilder
from mmpo.data.sampling import sample_pairs


def prepare_pairs(
    cfg: DataConfig,
    path: str,
    tokenizer: PreTrainedTokenizerBase | None = None,
    max_samples: int = 0,
    name: str = "data",
) -> list[dict[str, Any]]:
    """Load ``path``, validate rows and compute margins, apply SHP-style sampling, then cap the size.

    The cap takes a seeded random subset rather than the file's head, since files are often sorted."""
    pairs, stats = PairBuilder(cfg, tokenizer).build(load_records(path), name=name)
    stats.log(name)
    pairs = sample_pairs(pairs, cfg.max_pairs_per_prompt, cfg.margin_quartiles, cfg.shuffle_seed)
    if max_samples and len(pairs) > max_samples:
        picked = sorted(random.Random(cfg.shuffle_seed).sample(range(len(pairs)), max_samples))
        pairs = [pairs[i] for i in picked]
    return pairs
