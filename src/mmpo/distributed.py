"""The process group of a run, and decisions taken once on the main process.

Why this exists: accelerate's ``PartialState()`` without ``cpu=True`` on a machine without CUDA ignores
``torchrun``'s environment and gives every process ``DistributedType.NO`` with ``is_main_process=True``, so each
rank of a CPU run would take the output lock, write the config and score every reference pair itself.
``process_state`` is the one place the state is created, right (``cpu=True`` where there is no CUDA), and it is
called first thing in a run, before anything reads ``is_main_process``.

A decision that depends on files (which checkpoint to resume from, whether a cache file is there, whether the
output folder is refused) can come out differently on two ranks (one sees a cache file the other does not yet:
the second then waits forever in a collective the first never enters). ``decide_on_main`` takes it on the main
process and sends the result, or the error, to every rank, so all ranks go the same way.
"""

from __future__ import annotations

import atexit
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import NoReturn, TypeVar

import torch
from accelerate import PartialState

from mmpo.errors import ConfigError, DataError, MMPOError

T = TypeVar("T")

# Errors that may cross ranks: the one-line kinds the CLI prints with exit code 2.
_ERROR_KINDS: dict[str, type[MMPOError]] = {cls.__name__: cls for cls in (MMPOError, ConfigError, DataError)}


def process_state() -> PartialState:
    """The run's accelerate state; the first call initialises the process group (gloo on CPU, NCCL on GPU)."""
    return PartialState(cpu=not torch.cuda.is_available())


def is_main_process() -> bool:
    return process_state().is_main_process


def decide_on_main(decide: Callable[[], T]) -> T:
    """``decide()`` run on the main process only; every rank returns its result or raises its mmpo error."""
    state = process_state()
    if state.num_processes == 1:
        return decide()
    outcome: list[object] = [None]
    if state.is_main_process:
        try:
            outcome = [("ok", decide())]
        except MMPOError as error:
            outcome = [("error", type(error).__name__, str(error))]
    from accelerate.utils import broadcast_object_list

    broadcast_object_list(outcome, from_process=0)
    kind, *payload = outcome[0]  # type: ignore[misc]
    if kind == "error":
        name, message = payload
        raise _ERROR_KINDS.get(name, MMPOError)(message)
    return payload[0]  # type: ignore[return-value]


@contextmanager
def main_process_first() -> Iterator[None]:
    """The main process runs the block first (e.g. builds a cache on disk), the others after it (and read it)."""
    with process_state().main_process_first():
        yield


def exit_process(code: int) -> NoReturn:
    """Exit with ``code``; a process that joined a process group leaves without interpreter finalization.

    Why: a gloo worker thread drops its reference to a finished collective after ``wait()`` has already returned to
    Python, and that last reference frees tensors owned by Python objects, so the worker takes the GIL. If the main
    thread has begun finalizing the interpreter by then, CPython ends the worker with a forced unwind through a
    noexcept frame and the rank aborts after its work is done ("terminate called without an active exception",
    SIGABRT; gdb on the core: ``AsyncAllgatherWork::~AsyncAllgatherWork`` -> ``take_gil`` -> ``PyThread_exit_thread``
    in ``ProcessGroupGloo::runLoop``; upstream pytorch/pytorch#190489). It hit about one torchrun run in 30 here, and
    one in 5 for a script that gathers and exits. ``destroy_process_group`` does not help: the worker threads outlive
    it (c10d's registry and the DDP-wrapped model still hold the group). So such a process runs its atexit handlers
    (W&B's finish, log handlers) and flushes its streams while the interpreter is whole, then leaves with
    ``os._exit``, which finalizes nothing. A process without a process group exits normally."""
    if not (torch.distributed.is_available() and torch.distributed.is_initialized()):
        sys.exit(code)
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe or stream: nothing more can reach it
            pass
    os._exit(code)
