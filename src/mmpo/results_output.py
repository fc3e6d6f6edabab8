"""stdout carries results only: while a command runs, anything else printed to stdout goes to stderr.

Libraries print to stdout on their own: DeepSpeed's logger writes its accelerator warning there when it is
imported, some progress bars default to it. A user piping ``mmpo ... | jq`` must still get strict JSON, so the
CLI points ``sys.stdout`` at stderr for the length of a command and writes its results to the real stdout,
which ``results_stream`` returns.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TextIO

_results: list[TextIO] = []


@contextmanager
def library_output_to_stderr() -> Iterator[None]:
    _results.append(sys.stdout)
    sys.stdout = sys.stderr
    try:
        yield
    finally:
        sys.stdout = _results.pop()


def results_stream() -> TextIO:
    """Where results go: the stdout the command started with."""
    return _results[-1] if _results else sys.stdout
