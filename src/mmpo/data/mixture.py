"""Train pairs from several sources, each read under its own settings and taken in its own amount.

As TRL's ``dataset_mixture`` (and alignment-handbook's ``dataset_mixer``): ``data.train_mixture`` lists sources,
each with a ``path``, a ``count`` or ``fraction`` of its pairs, and any ``data.*`` setting for that source alone (a
column map, its margin source). Each source is validated, oriented and sampled as a file of its own would be; the
amount is a seeded random subset in file order (``cap_samples``), so the same config always trains on the same
pairs. The summary on stderr gives the count each source contributed.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

from transformers import PreTrainedTokenizerBase

from mmpo.config.schema import DataConfig, mixture_source
from mmpo.data.prepare import cap_samples, prepare_pairs
from mmpo.records import Pair

logger = logging.getLogger("mmpo")


@dataclass(frozen=True)
class SourceShare:
    path: str
    available: int
    taken: int


def mixture_pairs(
    data: DataConfig, tokenizer: PreTrainedTokenizerBase | None, max_samples: int = 0
) -> tuple[list[Pair], list[SourceShare]]:
    """The sources' pairs, concatenated in source order, then capped at ``max_samples`` (0 = all)."""
    pairs: list[Pair] = []
    shares: list[SourceShare] = []
    for index, source in enumerate(data.train_mixture):
        path, count, fraction, own = mixture_source(data, index, source)
        found = prepare_pairs(own, path, tokenizer, 0, name=path)
        wanted = count or math.ceil(fraction * len(found))
        taken = cap_samples(found, min(wanted, len(found)), own.shuffle_seed)
        if count > len(found):
            logger.warning("%s: count %d asked, but the source has %d pairs; taking them all", path, count, len(found))
        shares.append(SourceShare(path, len(found), len(taken)))
        pairs += taken
    logger.info(
        "train mixture: %s",
        "; ".join(f"{s.path}: {s.taken} of {s.available} pairs" for s in shares),
    )
    return cap_samples(pairs, max_samples, data.shuffle_seed), shares


def train_pairs(data: DataConfig, tokenizer: PreTrainedTokenizerBase | None, max_samples: int) -> list[Pair]:
    """``data.train_path``, or the mixture when ``data.train_mixture`` lists sources."""
    if data.train_mixture:
        return mixture_pairs(data, tokenizer, max_samples)[0]
    return prepare_pairs(data, data.train_path, tokenizer, max_samples, "train")
