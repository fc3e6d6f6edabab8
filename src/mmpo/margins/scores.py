"""Margins from per-response quality scores (GPT-4 ratings, judge scores, human ratings).

UltraFeedback-style files keep the scores either at the top level (``score_chosen``) or nested
(``metadata.score_chosen`` / ``metadata.rating_chosen``); columns are therefore addressed with dotted
paths, and ``auto`` searches the common spellings so that the shared data works without a mapping.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from mmpo.errors import DataError
from mmpo.records import MissingField, get_field, has_field

AUTO_SCORE_COLUMNS: tuple[tuple[str, str], ...] = (
    ("score_chosen", "score_rejected"),
    ("metadata.score_chosen", "metadata.score_rejected"),
    ("rating_chosen", "rating_rejected"),
    ("metadata.rating_chosen", "metadata.rating_rejected"),
    ("chosen_score", "rejected_score"),
)


def resolve_score_columns(first_row: Mapping[str, Any], chosen: str, rejected: str) -> tuple[str, str]:
    """Return the (chosen, rejected) score paths, searching AUTO_SCORE_COLUMNS when asked for ``auto``."""
    if chosen != "auto" and rejected != "auto":
        return chosen, rejected
    for pair in AUTO_SCORE_COLUMNS:
        if has_field(first_row, pair[0]) and has_field(first_row, pair[1]):
            return pair
    for pair in AUTO_SCORE_COLUMNS:  # the columns are there but row 0 leaves one empty: say so, naming them
        if all(_named(first_row, path) for path in pair):
            for path in pair:
                read_score(first_row, path, 0)
    raise DataError(
        "no score columns found for margin source 'scores'; looked for "
        + ", ".join(f"{a}/{b}" for a, b in AUTO_SCORE_COLUMNS)
        + f". Columns present: {sorted(first_row)}. Set data.chosen_score and data.rejected_score."
    )


def score_columns_named(first_row: Mapping[str, Any], chosen: str, rejected: str) -> bool:
    """Whether row 0 has the score columns (``auto``: any spelling of AUTO_SCORE_COLUMNS), null or not."""
    if chosen != "auto" and rejected != "auto":
        return _named(first_row, chosen) and _named(first_row, rejected)
    return any(all(_named(first_row, path) for path in pair) for pair in AUTO_SCORE_COLUMNS)


def _named(row: Mapping[str, Any], dotted: str) -> bool:
    """Whether the row has the column at all, null or not."""
    *parents, last = dotted.split(".")
    for part in parents:
        row = row.get(part) if isinstance(row, Mapping) else None
    return isinstance(row, Mapping) and last in row


def read_score(row: Mapping[str, Any], path: str, row_index: int) -> float:
    """A finite float score, or a DataError naming the row and column."""
    try:
        raw = get_field(row, path)
    except MissingField:
        raise DataError(f"row {row_index}: score column {path!r} is missing or null") from None
    if isinstance(raw, bool) or not isinstance(raw, (int, float, str)):
        raise DataError(f"row {row_index}: score column {path!r} holds {raw!r}, not a number")
    try:
        value = float(raw)
    except ValueError:
        raise DataError(f"row {row_index}: score column {path!r} holds {raw!r}, not a number") from None
    if not math.isfinite(value):
        held = f"holds the string {raw!r}" if isinstance(raw, str) else f"is {value}"
        raise DataError(f"row {row_index}: score column {path!r} {held} (NaN/inf scores are not allowed)")
    return value


def score_margin(row: Mapping[str, Any], chosen_path: str, rejected_path: str, row_index: int) -> float:
    """m = score(chosen) - score(rejected)."""
    return read_score(row, chosen_path, row_index) - read_score(row, rejected_path, row_index)
