"""Orienting a raw pair so that ``chosen`` is the better response and the margin is >= 0.

A label column decides the winner outright; otherwise the sign of the margin does, and a chosen response
scored below the rejected one is an error unless ``data.on_negative`` says to swap or drop it. Ties are
kept as p = 0.5 unless ``data.on_tie`` says otherwise. Every swap and drop is counted in ``PairStats`` so
the log says what actually happened.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace

from mmpo.config.schema import DataConfig
from mmpo.data.reading import RawPair
from mmpo.errors import DataError

logger = logging.getLogger("mmpo")


@dataclass
class PairStats:
    """What building the pairs did, reported to the user instead of silently dropping rows."""

    rows_in: int = 0
    pairs_out: int = 0
    ties: int = 0
    swapped_by_label: int = 0
    swapped_negative: int = 0
    dropped_ties: list[int] = field(default_factory=list)
    dropped_negative: list[int] = field(default_factory=list)
    dropped_empty: list[int] = field(default_factory=list)
    # the same text on both sides yet a margin: no model can tell them apart (h = 0), so such a pair trains
    # nothing and counts as wrong in accuracy; kept, as the data says, but named
    identical_with_margin: list[int] = field(default_factory=list)

    @property
    def swapped(self) -> int:
        return self.swapped_by_label + self.swapped_negative

    def log(self, name: str) -> None:
        logger.info(
            "%s: %d rows -> %d pairs (%d ties kept as p=0.5; %d swapped by their label, %d negative margins swapped)",
            name,
            self.rows_in,
            self.pairs_out,
            self.ties,
            self.swapped_by_label,
            self.swapped_negative,
        )
        for what, rows in (
            ("tied", self.dropped_ties),
            ("chosen-below-rejected", self.dropped_negative),
            ("empty-response", self.dropped_empty),
        ):
            if rows:
                logger.warning("%s: dropped %d %s rows as configured (first: %s)", name, len(rows), what, rows[:10])
        if self.identical_with_margin:
            rows = self.identical_with_margin
            logger.warning(
                "%s: %d rows have the same chosen and rejected text but a non-zero margin (first: %s): no model can "
                "tell them apart, so they train nothing and count as wrong in accuracy; remove them from the file",
                name,
                len(rows),
                rows[:10],
            )


def orient(raw: RawPair, cfg: DataConfig, stats: PairStats) -> RawPair | None:
    """The pair with chosen = winner and margin >= 0, or None when the config drops it."""
    margin = raw.signed_margin
    pair = raw
    if raw.winner is not None:  # the label, not a score, says which response won
        if raw.winner < 0:
            pair = replace(pair, chosen=raw.rejected, rejected=raw.chosen)
            stats.swapped_by_label += 1
        margin = abs(margin) if raw.winner else 0.0
    if margin < 0:
        if cfg.on_negative == "error":
            raise DataError(
                f"row {raw.row}: chosen is scored below rejected (margin {margin:g}); "
                "fix the row or add data.on_negative=swap (or drop)"
            )
        if cfg.on_negative == "drop":
            stats.dropped_negative.append(raw.row)
            return None
        pair = replace(pair, chosen=pair.rejected, rejected=pair.chosen)
        margin = -margin
        stats.swapped_negative += 1
    if margin == 0:
        if cfg.on_tie == "error":
            raise DataError(f"row {raw.row}: chosen and rejected are tied (margin 0); add data.on_tie=soft (or drop)")
        if cfg.on_tie == "drop":
            stats.dropped_ties.append(raw.row)
            return None
        stats.ties += 1
    elif pair.chosen == pair.rejected:
        stats.identical_with_margin.append(raw.row)
    return replace(pair, signed_margin=margin)
