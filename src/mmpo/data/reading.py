"""Reading one raw row into a ``RawPair``: its texts (or chat messages) and the *signed* margin of the
chosen column over the rejected column, as the file states them. Nothing is swapped or dropped here;
``orienting`` decides that, and ``rendering`` turns messages into text."""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from mmpo.config.schema import DataConfig
from mmpo.data.rendering import (
    Messages,
    check_response_roles,
    is_conversation,
    prompt_messages,
    response_turns,
    split_hh_dialogue,
    split_implicit_prompt,
)
from mmpo.errors import DataError
from mmpo.margins.scores import read_score, resolve_score_columns, score_columns_named, score_margin
from mmpo.margins.votes import annotator_votes, log_vote_ratio
from mmpo.records import MissingField, get_field, has_field

FLOAT32_MAX = 3.4028234663852886e38

_LABEL_A = {"1", "a", "response_a", "output_1"}
_LABEL_B = {"2", "b", "response_b", "output_2"}
_LABEL_TIE = {"0", "tie", "tied"}


class EmptyText(DataError):
    """A prompt or response is empty (may be dropped when data.on_empty = drop)."""


logger = logging.getLogger("mmpo")


@dataclass(frozen=True)
class RawPair:
    """A row as the file has it. ``winner`` is +1/-1/0 from a label column (None without one)."""

    prompt: str | Messages
    chosen: str | Messages
    rejected: str | Messages
    signed_margin: float
    winner: int | None
    row: int
    section: str


def read_text(row: Mapping[str, Any], column: str, row_index: int) -> Any:
    """A non-empty string or list of {role, content} messages from ``column``."""
    try:
        value = get_field(row, column)
    except MissingField:
        raise DataError(f"row {row_index}: column {column!r} is missing or null") from None
    if isinstance(value, str):
        if not value.strip():
            raise EmptyText(f"row {row_index}: column {column!r} is empty; fix the row or add data.on_empty=drop")
    elif isinstance(value, list):
        if not value or not any(str(m.get("content", "")).strip() for m in value if isinstance(m, Mapping)):
            raise EmptyText(f"row {row_index}: column {column!r} has no message with content")
    else:
        raise DataError(
            f"row {row_index}: column {column!r} must be text or a list of messages, got {type(value).__name__}"
        )
    return value


def _check_response_columns(prompt: Any, chosen: Any, rejected: Any, cfg: DataConfig, row_index: int) -> None:
    """Message-list responses hold the assistant's turn only, named by column before orienting swaps them."""
    prompt_msgs = prompt_messages(prompt)
    for column, response in ((cfg.chosen_column, chosen), (cfg.rejected_column, rejected)):
        if isinstance(response, list) and is_conversation(response) and is_conversation(prompt_msgs):
            check_response_roles(response_turns(prompt_msgs, response), row_index, f"column {column!r}:")


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


def detect_margin_source(cfg: DataConfig, first_row: Mapping[str, Any], name: str) -> str:
    """``margin_source: auto``: scores where row 0 has score columns (UltraFeedback's and TRL-style ``score_chosen``
    / ``score_rejected``, or the configured ones), votes where it has the vote columns, else the constant margin
    (every pair preferred alike: plain preference data such as TRL's formats without scores)."""
    if score_columns_named(first_row, cfg.chosen_score, cfg.rejected_score):
        return "scores"
    if has_field(first_row, cfg.chosen_votes) and has_field(first_row, cfg.rejected_votes):
        return "votes"
    logger.warning(
        "%s: no score or vote columns; margin_source auto gives every pair the constant margin %g",
        name,
        cfg.constant_margin,
    )
    return "constant"


class PairReader:
    """Reads rows of one file under a DataConfig; ``start`` checks the columns on the first row."""

    def __init__(self, cfg: DataConfig, first_row: Mapping[str, Any], name: str) -> None:
        if cfg.margin_source == "auto":
            cfg = replace(cfg, margin_source=detect_margin_source(cfg, first_row, name))
        self.cfg = cfg
        self.format = self._check_columns(first_row, name)
        self.score_paths = (
            resolve_score_columns(first_row, cfg.chosen_score, cfg.rejected_score)
            if cfg.margin_source == "scores"
            else None
        )

    def _check_columns(self, first_row: Mapping[str, Any], name: str) -> str:
        """The effective format; fails early, naming missing columns and listing the present ones."""
        cfg = self.cfg
        fmt = cfg.format
        if fmt == "auto":
            has_prompt = has_field(first_row, cfg.prompt_column)
            chosen = first_row.get(cfg.chosen_column)
            if has_prompt:
                fmt = "standard"
            elif isinstance(chosen, str) and "\n\nHuman:" in chosen:
                fmt = "hh"
            else:  # TRL's implicit prompt: chosen and rejected both begin with it
                fmt = "implicit"
        needed = [cfg.chosen_column, cfg.rejected_column] + ([] if fmt in ("hh", "implicit") else [cfg.prompt_column])
        needed += [cfg.label_column] if cfg.label_column else []
        needed += cfg.annotator_columns if cfg.margin_source == "annotators" else []
        missing = [c for c in needed if not has_field(first_row, c)]
        if missing:
            raise DataError(
                f"{name}: missing column(s) {missing}; columns present: {sorted(first_row)}. "
                "Map them with data.prompt_column / chosen_column / rejected_column"
            )
        return fmt

    def signed_margin(self, row: Mapping[str, Any], i: int) -> float:
        """Margin of the chosen column over the rejected column (negative means rejected is better); one that a
        float32 tensor cannot hold (two finite scores such as 1e308 and -1e308 differ by inf) names its row."""
        margin = self._signed_margin(row, i)
        if not math.isfinite(margin) or abs(margin) > FLOAT32_MAX:
            raise DataError(
                f"row {i}: the margin is {margin:g}, beyond what training holds (|m| <= {FLOAT32_MAX:.3g}); "
                "rescale the scores or set data.margin_scale"
            )
        return margin

    def _signed_margin(self, row: Mapping[str, Any], i: int) -> float:
        cfg = self.cfg
        source = cfg.margin_source
        if source == "scores":
            assert self.score_paths is not None
            return score_margin(row, *self.score_paths, i)
        if source == "votes":
            return log_vote_ratio(read_score(row, cfg.chosen_votes, i), read_score(row, cfg.rejected_votes, i), i)
        if source == "annotators":
            for column in cfg.annotator_columns:
                if not has_field(row, column):
                    raise DataError(f"row {i}: annotator column {column!r} is missing")
            a, b, _ = annotator_votes([get_field(row, c) for c in cfg.annotator_columns], i)
            return log_vote_ratio(a, b, i)
        # 'constant' and 'similarity' (filled in after rendering) only need the direction, which the label gives.
        return cfg.constant_margin

    def read(self, row: Mapping[str, Any], i: int) -> RawPair:
        cfg = self.cfg
        chosen, rejected = read_text(row, cfg.chosen_column, i), read_text(row, cfg.rejected_column, i)
        if self.format == "hh":
            prompt, chosen, rejected = split_hh_dialogue(chosen, rejected, i)
        elif self.format == "implicit":
            prompt, chosen, rejected = split_implicit_prompt(chosen, rejected, i)
            _check_response_columns(prompt, chosen, rejected, cfg, i)
        else:
            prompt = read_text(row, cfg.prompt_column, i)
            _check_response_columns(prompt, chosen, rejected, cfg, i)
        winner = _winner_from_label(row, cfg.label_column, i) if cfg.label_column else None
        section = (
            str(get_field(row, cfg.section_column)) if cfg.section_column and has_field(row, cfg.section_column) else ""
        )
        return RawPair(prompt, chosen, rejected, self.signed_margin(row, i), winner, i, section)
