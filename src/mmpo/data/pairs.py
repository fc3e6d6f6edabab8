"""Turning raw rows into validated preference pairs: read, orient, render.

Every rule fails loudly with the row number (0-based, as in the file) and the column, because a
preference dataset with a silently dropped or flipped row trains a subtly wrong model. Rows are only
ever dropped when the config asks for it (on_tie, on_negative, on_empty), and then the count and the
first row numbers are logged.
"""

from __future__ import annotations

from dataclasses import replace

import datasets
from transformers import PreTrainedTokenizerBase

from mmpo.config.schema import DataConfig
from mmpo.data.orienting import PairStats, orient
from mmpo.data.reading import EmptyText, PairReader
from mmpo.data.rendering import render_prompt_and_response, render_rewardbench_dialogue, template_plain_text
from mmpo.errors import DataError
from mmpo.records import Pair


def build_pairs(
    dataset: datasets.Dataset,
    cfg: DataConfig,
    tokenizer: PreTrainedTokenizerBase | None = None,
    name: str = "data",
    dialogue: str = "mmpo",
) -> tuple[list[Pair], PairStats]:
    """Validated, oriented pairs rendered to text, plus what was swapped, tied or dropped on the way.

    ``dialogue``: 'mmpo' renders the prompt with the generation prompt (the assistant header is part of the
    prompt, as the policy generates after it); 'rewardbench' renders as reward-bench does, to reproduce its
    scores (``render_rewardbench_dialogue``)."""
    if len(dataset) == 0:
        raise DataError(f"{name}: the dataset has no rows")
    reader = PairReader(cfg, dataset[0], name)
    stats = PairStats(rows_in=len(dataset))
    wrap = template_plain_text(cfg.chat_template, tokenizer)
    pairs: list[Pair] = []
    for i, row in enumerate(dataset):
        try:
            raw = reader.read(row, i)
        except EmptyText:
            if cfg.on_empty != "drop":
                raise
            stats.dropped_empty.append(i)
            continue
        oriented = orient(raw, cfg, stats)
        if oriented is None:
            continue
        if dialogue == "rewardbench":
            prompt_text, chosen_text = render_rewardbench_dialogue(oriented.prompt, oriented.chosen, tokenizer, i)
            _, rejected_text = render_rewardbench_dialogue(oriented.prompt, oriented.rejected, tokenizer, i)
        else:
            prompt_text, chosen_text = render_prompt_and_response(oriented.prompt, oriented.chosen, tokenizer, i, wrap)
            _, rejected_text = render_prompt_and_response(oriented.prompt, oriented.rejected, tokenizer, i, wrap)
        margin = float(oriented.signed_margin) * cfg.margin_scale
        pairs.append(Pair(prompt_text, chosen_text, rejected_text, margin, i, oriented.section))
    if cfg.margin_source == "similarity":
        pairs = similarity_margins(pairs, cfg)
    stats.pairs_out = len(pairs)
    if not pairs:
        raise DataError(f"{name}: no pairs left after validation (all rows dropped by on_tie/on_negative/on_empty)")
    return pairs, stats


def similarity_margins(pairs: list[Pair], cfg: DataConfig) -> list[Pair]:
    """m = scale * (1 - cos) of the two responses; a labelled tie stays a tie whatever the embeddings say."""
    from mmpo.margins.similarity import SimilarityMarginEstimator

    estimator = SimilarityMarginEstimator(cfg.similarity_model or None)
    margins = estimator.margins([p.chosen for p in pairs], [p.rejected for p in pairs], cfg.margin_scale)
    return [replace(p, margin=m) if p.margin != 0 else p for p, m in zip(pairs, margins, strict=True)]
