"""Unpaired (prompt, completion, score) samples for KTO, as pseudo-pairs the policy machinery can carry.

KTO needs, for every sample, a *mismatched* completion to estimate the KL reference point z (as in
Ethayarajh et al. and TRL). As TRL's ``_get_kl_dataset`` does, the completions are rotated within each batch of
``batch_size`` consecutive samples, ``(x_1, y_n), (x_2, y_1), ..., (x_n, y_(n-1))``, so the mismatches of a batch
are that batch's own completions; where the rotation would give a sample its own prompt's other response (pair
files unpaired into two samples), the next rotation with a different prompt is used. The mismatch goes in the
``rejected`` slot of a pseudo-pair: tokenisation, collation and the reference-log-prob cache then work unchanged,
and the trainer takes batches in this order. The ``margin`` slot holds score - median(train scores), so the soft
desirability weight is exactly target_probability(margin, gamma) = sigmoid(gamma * (score - median)).

Rows in TRL's unpaired format (prompt, completion and a boolean ``label``, no score) are hard labels: their
score is +-inf and their weight 1, which is plain KTO with TRL's weights.

Pair files (chosen/rejected with two scores) are unpaired into two samples each, which lets the shared
UltraFeedback data be used for KTO as well.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass

from transformers import PreTrainedTokenizerBase

from mmpo.config.schema import DataConfig
from mmpo.data.io import load_records
from mmpo.data.reading import EmptyText, read_text
from mmpo.data.rendering import Messages, render_prompt_and_response, template_plain_text
from mmpo.errors import DataError
from mmpo.margins.scores import read_score, resolve_score_columns
from mmpo.records import Pair, has_field


@dataclass(frozen=True)
class ScoredSample:
    """One unpaired (prompt, completion) with its scalar score; ``source_row`` is the 0-based file row."""

    prompt: str | Messages
    completion: str | Messages
    score: float
    source_row: int


def scored_samples(cfg: DataConfig, path: str) -> list[ScoredSample]:
    """(prompt, completion, score, source_row) from an unpaired file or from a pair file."""
    rows = load_records(path)
    if len(rows) == 0:
        raise DataError(f"{path}: the dataset has no rows")
    first = rows[0]
    unpaired = has_field(first, cfg.completion_column)
    labelled = unpaired and not has_field(first, cfg.kto_score) and has_field(first, cfg.kto_label)
    score_paths = None if unpaired else resolve_score_columns(first, cfg.chosen_score, cfg.rejected_score)
    samples: list[ScoredSample] = []
    for i, row in enumerate(rows):
        try:
            prompt = read_text(row, cfg.prompt_column, i)
            if labelled:
                sides = [(read_text(row, cfg.completion_column, i), label_score(row, cfg.kto_label, i))]
            elif unpaired:
                sides = [(read_text(row, cfg.completion_column, i), read_score(row, cfg.kto_score, i))]
            else:
                sides = [
                    (read_text(row, column, i), read_score(row, score_path, i))
                    for column, score_path in zip((cfg.chosen_column, cfg.rejected_column), score_paths)
                ]
        except EmptyText:
            if cfg.on_empty != "drop":
                raise
            continue
        samples += [ScoredSample(prompt, c, s, i) for c, s in sides]
    if len(samples) < 2:
        raise DataError(f"{path}: KTO needs at least 2 samples (one to pair with another for the KL estimate)")
    return samples


def label_score(row, column: str, row_index: int) -> float:
    """TRL's boolean ``label`` as the score a hard label is: +inf (desirable) or -inf, which gives the weight 1 at
    any gamma (plain KTO, TRL's weights)."""
    value = row.get(column)
    if not isinstance(value, bool):
        raise DataError(f"row {row_index}: label column {column!r} holds {value!r}; expected true or false")
    return math.inf if value else -math.inf


def kl_partners(prompts: list[str], batch_size: int) -> list[int]:
    """For every sample, the index of the sample whose completion is its KL mismatch: TRL's rotation by one
    within each batch (sample j gets the completion of j - 1, the first that of the last), moving further round
    the batch past samples of the same prompt, and outside the batch only when the whole batch is one prompt."""
    partners = []
    for start in range(0, len(prompts), batch_size):
        size = min(batch_size, len(prompts) - start)
        for j in range(start, start + size):
            inside = (start + (j - start - shift) % size for shift in range(1, size))
            outside = ((j - shift) % len(prompts) for shift in range(1, len(prompts)))
            partner = next((k for k in (*inside, *outside) if prompts[k] != prompts[j]), None)
            if partner is None:
                raise DataError("KTO needs samples of at least two different prompts for its KL estimate")
            partners.append(partner)
    return partners


def kto_pseudo_pairs(
    samples: list[ScoredSample],
    median: float,
    tokenizer: PreTrainedTokenizerBase | None,
    chat_template: str,
    batch_size: int,
) -> list[Pair]:
    """Pseudo-pairs: chosen = the sample's completion, rejected = its KL mismatch (see kl_partners)."""
    wrap = template_plain_text(chat_template, tokenizer)
    partners = kl_partners([repr(s.prompt) for s in samples], batch_size)
    pairs = []
    for index, sample in enumerate(samples):
        mismatch = samples[partners[index]]
        row = sample.source_row
        prompt_text, completion = render_prompt_and_response(sample.prompt, sample.completion, tokenizer, row, wrap)
        _, kl_completion = render_prompt_and_response(sample.prompt, mismatch.completion, tokenizer, row, wrap)
        pairs.append(Pair(prompt_text, completion, kl_completion, sample.score - median, row))
    return pairs


def median_score(samples: list[ScoredSample]) -> float:
    """The threshold between desirable and undesirable: the median score, or 0 for boolean labels (their scores
    are +-inf, on either side of any threshold)."""
    finite = [s.score for s in samples if math.isfinite(s.score)]
    if not finite:
        return 0.0
    if len(finite) < len(samples):
        raise DataError("the KTO samples mix boolean labels and scores; give one or the other")
    return statistics.median(finite)
