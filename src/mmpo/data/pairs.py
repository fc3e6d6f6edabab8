"""Turning raw rows into validated preference pairs (prompt, chosen, rejected, margin).

Every rule here fails loudly with the row number (0-based, as in the file) and the column, because a
preference dataset with a silently dropped or flipped row trains a subtly wrong model. Rows are only
ever dropped when the config asks for it (on_tie=drop, on_negative=drop), and then the count and the
first row numbers are logged.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import datasets
from transformers import PreTrainedTokenizerBase

from mmpo.config import DataConfig
from mmpo.data.formatting import render_prompt_and_response, split_hh_dialogue, template_plain_text
from mmpo.errors import ConfigError, DataError
from mmpo.margins.scores import get_field, has_field, read_score, resolve_score_columns, score_margin
from mmpo.margins.votes import annotator_votes, log_vote_ratio

logger = logging.getLogger("mmpo")

LABEL_DIRECTED_SOURCES = ("constant", "similarity")
_LABEL_A = {"1", "a", "response_a", "output_1"}
_LABEL_B = {"2", "b", "response_b", "output_2"}
_LABEL_TIE = {"0", "tie", "tied"}


@dataclass
class PairStats:
    """What building the pairs did, reported to the user instead of silently dropping rows."""

    rows_in: int = 0
    pairs_out: int = 0
    ties: int = 0
    swapped: int = 0
    dropped_ties: list[int] | None = None
    dropped_negative: list[int] | None = None
    dropped_empty: list[int] | None = None

    def log(self, name: str) -> None:
        logger.info(
            "%s: %d rows -> %d pairs (%d ties kept as p=0.5, %d swapped)",
            name,
            self.rows_in,
            self.pairs_out,
            self.ties,
            self.swapped,
        )
        for what, rows in (
            ("tied", self.dropped_ties),
            ("chosen-below-rejected", self.dropped_negative),
            ("empty-response", self.dropped_empty),
        ):
            if rows:
                logger.warning("%s: dropped %d %s rows as configured (first: %s)", name, len(rows), what, rows[:10])


class EmptyText(DataError):
    """A prompt or response is empty (may be dropped when data.on_empty = drop)."""


def read_text(row: Mapping[str, Any], column: str, row_index: int) -> Any:
    try:
        value = get_field(row, column)
    except KeyError:
        raise DataError(f"row {row_index}: column {column!r} is missing or null") from None
    if isinstance(value, str):
        if not value.strip():
            raise EmptyText(f"row {row_index}: column {column!r} is empty; fix the row or set data.on_empty: drop")
    elif isinstance(value, list):
        if not value or not any(str(m.get("content", "")).strip() for m in value if isinstance(m, Mapping)):
            raise EmptyText(f"row {row_index}: column {column!r} has no message with content")
    else:
        raise DataError(
            f"row {row_index}: column {column!r} must be text or a list of messages, got {type(value).__name__}"
        )
    return value


def _check_columns(first_row: Mapping[str, Any], cfg: DataConfig, name: str) -> str:
    """Return the effective format and fail early, naming missing columns and listing present ones."""
    fmt = cfg.format
    if fmt == "auto":
        has_prompt = has_field(first_row, cfg.prompt_column)
        chosen = first_row.get(cfg.chosen_column)
        fmt = "hh" if not has_prompt and isinstance(chosen, str) and "\n\nHuman:" in chosen else "standard"
    needed = [cfg.chosen_column, cfg.rejected_column] + ([] if fmt == "hh" else [cfg.prompt_column])
    needed += [cfg.label_column] if cfg.label_column else []
    missing = [c for c in needed if not has_field(first_row, c)]
    if missing:
        raise DataError(f"{name}: missing column(s) {missing}; columns present: {sorted(first_row)}")
    return fmt


def _winner_from_label(row: Mapping[str, Any], column: str, row_index: int) -> int:
    """+1 if response A (chosen column) won, -1 if B won, 0 for a tie."""
    label = str(get_field(row, column)).strip().lower()
    if label in _LABEL_A:
        return 1
    if label in _LABEL_B:
        return -1
    if label in _LABEL_TIE:
        return 0
    raise DataError(f"row {row_index}: label column {column!r} holds {label!r}; expected 1/2, A/B or 0 for a tie")


class PairBuilder:
    """Validates rows and computes margins according to a DataConfig."""

    def __init__(self, cfg: DataConfig, tokenizer: PreTrainedTokenizerBase | None = None) -> None:
        if cfg.label_column and cfg.margin_source not in LABEL_DIRECTED_SOURCES:
            raise ConfigError(
                f"data.label_column only applies to margin_source {LABEL_DIRECTED_SOURCES}; with "
                f"{cfg.margin_source!r} the sign of the margin already says which response won"
            )
        self.cfg = cfg
        self.tokenizer = tokenizer
        self.score_paths: tuple[str, str] | None = None

    def _signed_margin(self, row: Mapping[str, Any], i: int) -> float:
        """Margin of the chosen column over the rejected column (negative means rejected is better)."""
        cfg = self.cfg
        source = cfg.margin_source
        if source == "scores":
            assert self.score_paths is not None
            return score_margin(row, *self.score_paths, i)
        if source == "votes":
            return log_vote_ratio(read_score(row, cfg.chosen_votes, i), read_score(row, cfg.rejected_votes, i), i)
        if source == "annotators":
            if not cfg.annotator_columns:
                raise DataError("margin_source 'annotators' needs data.annotator_columns")
            for column in cfg.annotator_columns:
                if not has_field(row, column):
                    raise DataError(f"row {i}: annotator column {column!r} is missing")
            a, b, _ = annotator_votes([get_field(row, c) for c in cfg.annotator_columns], i)
            return log_vote_ratio(a, b, i)
        # 'constant' and 'similarity' (filled in later) only need the direction, which the label gives.
        return cfg.constant_margin

    def build(self, dataset: datasets.Dataset, name: str = "data") -> tuple[list[dict[str, Any]], PairStats]:
        cfg = self.cfg
        if len(dataset) == 0:
            raise DataError(f"{name}: the dataset has no rows")
        first = dataset[0]
        fmt = _check_columns(first, cfg, name)
        if cfg.margin_source == "scores":
            self.score_paths = resolve_score_columns(first, cfg.chosen_score, cfg.rejected_score)
        stats = PairStats(rows_in=len(dataset), dropped_ties=[], dropped_negative=[], dropped_empty=[])
        pairs: list[dict[str, Any]] = []
        wrap = template_plain_text(cfg.chat_template, self.tokenizer)
        for i, row in enumerate(dataset):
            try:
                chosen, rejected = read_text(row, cfg.chosen_column, i), read_text(row, cfg.rejected_column, i)
                if fmt == "hh":
                    prompt, chosen, rejected = split_hh_dialogue(chosen, rejected, i)
                else:
                    prompt = read_text(row, cfg.prompt_column, i)
            except EmptyText:
                if cfg.on_empty != "drop":
                    raise
                stats.dropped_empty.append(i)
                continue
            margin = self._signed_margin(row, i)
            if cfg.label_column:  # the label, not a score, says which response won
                winner = _winner_from_label(row, cfg.label_column, i)
                if winner < 0:
                    chosen, rejected = rejected, chosen
                margin = abs(margin) if winner else 0.0
            if margin < 0:
                if cfg.on_negative == "error":
                    raise DataError(
                        f"row {i}: chosen is scored below rejected (margin {margin:g}); "
                        "fix the row or set data.on_negative to 'swap' or 'drop'"
                    )
                if cfg.on_negative == "drop":
                    stats.dropped_negative.append(i)
                    continue
                chosen, rejected, margin = rejected, chosen, -margin
                stats.swapped += 1
            if margin == 0:
                if cfg.on_tie == "error":
                    raise DataError(
                        f"row {i}: chosen and rejected are tied (margin 0); set data.on_tie to 'soft' or 'drop'"
                    )
                if cfg.on_tie == "drop":
                    stats.dropped_ties.append(i)
                    continue
                stats.ties += 1
            prompt_text, chosen_text = render_prompt_and_response(prompt, chosen, self.tokenizer, i, wrap)
            _, rejected_text = render_prompt_and_response(prompt, rejected, self.tokenizer, i, wrap)
            section = (
                str(get_field(row, cfg.section_column))
                if cfg.section_column and has_field(row, cfg.section_column)
                else ""
            )
            pairs.append(
                {
                    "prompt": prompt_text,
                    "chosen": chosen_text,
                    "rejected": rejected_text,
                    "margin": float(margin) * cfg.margin_scale,
                    "source_row": i,
                    "section": section,
                }
            )
        if cfg.margin_source == "similarity":
            self._fill_similarity_margins(pairs, stats)
        stats.pairs_out = len(pairs)
        if not pairs:
            raise DataError(f"{name}: no pairs left after validation (all rows dropped by on_tie/on_negative)")
        return pairs, stats

    def _fill_similarity_margins(self, pairs: list[dict[str, Any]], stats: PairStats) -> None:
        from mmpo.margins.similarity import SimilarityMarginEstimator

        estimator = SimilarityMarginEstimator(self.cfg.similarity_model or None)
        margins = estimator.margins([p["chosen"] for p in pairs], [p["rejected"] for p in pairs], self.cfg.margin_scale)
        for pair, margin in zip(pairs, margins, strict=True):
            if pair["margin"] != 0:  # a labelled tie stays a tie whatever the embeddings say
                pair["margin"] = margin
