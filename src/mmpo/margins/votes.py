"""Margins from votes: SHP up-votes and multi-annotator labels (PandaLM).

Transform (documented in the README): m = log(v_w + 1) - log(v_l + 1), the log of the add-one
smoothed vote ratio. With gamma = 1 the MMPO target is then exactly the smoothed vote share,
p = (v_w + 1) / (v_w + v_l + 2), and larger gamma sharpens it; a raw vote *difference* would instead
treat 101 vs 100 votes like 2 vs 1, which is why the ratio is used.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from mmpo.errors import DataError


def log_vote_ratio(votes_chosen: float, votes_rejected: float, row_index: int = -1) -> float:
    """m = log(v_chosen + 1) - log(v_rejected + 1); negative when the rejected response got more votes."""
    for name, votes in (("chosen", votes_chosen), ("rejected", votes_rejected)):
        if not math.isfinite(votes) or votes < 0:
            raise DataError(f"row {row_index}: {name} vote count {votes!r} must be a finite number >= 0")
    return math.log(votes_chosen + 1.0) - math.log(votes_rejected + 1.0)


def annotator_votes(labels: Sequence[str | int], row_index: int = -1) -> tuple[int, int, int]:
    """Count (votes for response 1, votes for response 2, ties) from labels '1', '2', '0' (tie)."""
    counts = {1: 0, 2: 0, 0: 0}
    for label in labels:
        try:
            key = int(label)
        except (TypeError, ValueError):
            raise DataError(f"row {row_index}: annotator label {label!r} is not 0, 1 or 2") from None
        if key not in counts:
            raise DataError(f"row {row_index}: annotator label {label!r} is not 0, 1 or 2")
        counts[key] += 1
    return counts[1], counts[2], counts[0]
