"""Progress of long loops (embedding, reference log-probs, scoring) on stderr, suited to where it goes.

On a terminal: a tqdm bar. Anywhere else (a pipe, CI, a log file): one log line at every 10% instead of
hundreds of carriage-return updates.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable, Iterator
from typing import TypeVar

from tqdm.auto import tqdm

T = TypeVar("T")
logger = logging.getLogger("mmpo")


def stderr_is_terminal() -> bool:
    return sys.stderr.isatty()


class Milestones:
    """When a count of done items deserves a log line: the first count at or past each ``every`` fraction of
    ``total``, and the last one. Shared by loops and by training, so both report at the same rate."""

    def __init__(self, total: int, every: float = 0.1, done: int = 0) -> None:
        self.total, self.every = total, every
        self.next = done / total + every if total > 0 else float("inf")

    def reached(self, done: int) -> bool:
        if self.total <= 0:
            return False
        fraction = done / self.total
        if fraction + 1e-9 < self.next and done != self.total:
            return False
        while self.next <= fraction + 1e-9:
            self.next += self.every
        return True


def progress(items: Iterable[T], desc: str, total: int | None = None, enabled: bool = True) -> Iterator[T]:
    """Iterate ``items`` while reporting progress on stderr (nothing when ``enabled`` is False)."""
    if total is None and hasattr(items, "__len__"):
        total = len(items)  # type: ignore[arg-type]
    if not enabled:
        yield from items
        return
    if stderr_is_terminal():
        yield from tqdm(items, desc=desc, total=total, file=sys.stderr, leave=False)
        return
    milestones = Milestones(total or 0)
    for index, item in enumerate(items, start=1):
        yield item
        if milestones.reached(index):
            logger.info("%s: %d/%d (%d%%)", desc, index, total, round(100 * index / total))
