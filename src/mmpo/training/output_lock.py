"""One run per output folder: a lock held for the whole run.

Two runs writing to the same ``output_dir`` would leave one run's config beside the other's metrics, and
the second would crash when the first deletes a checkpoint it picked. The lock is an OS file lock
(``filelock``), so a killed run releases it with its process: there are no stale locks to clean up.

In a run of several processes only the main process takes the lock, and whether it got it is sent to every
rank: a refused folder stops all ranks with the same one-line error instead of leaving the others waiting.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from filelock import FileLock, Timeout

from mmpo.distributed import decide_on_main
from mmpo.errors import ConfigError

LOCK_FILE = ".mmpo.lock"
OWNER_FILE = ".mmpo.lock.owner"


@contextmanager
def output_dir_lock(output_dir: str | Path) -> Iterator[None]:
    """Hold the folder's lock (main process), or fail at once on every rank with a one-line error naming the
    folder and the owner."""
    folder = Path(output_dir)
    held: list[FileLock] = []

    def acquire() -> None:
        held.append(_acquire(folder))

    decide_on_main(acquire)  # acquires on the main process only; the other ranks receive its outcome
    try:
        yield
    finally:
        for lock in held:
            (folder / OWNER_FILE).unlink(missing_ok=True)
            lock.release()


def _acquire(folder: Path) -> FileLock:
    folder.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(folder / LOCK_FILE))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        owner = (folder / OWNER_FILE).read_text().strip() if (folder / OWNER_FILE).exists() else "another process"
        raise ConfigError(
            f"{folder} is in use by a running mmpo run ({owner}); wait for it or choose another train.output_dir"
        ) from None
    (folder / OWNER_FILE).write_text(f"pid {os.getpid()}")
    return lock
