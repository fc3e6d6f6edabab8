"""Training progress on stderr, never stdout: stdout carries only the command's result.

On a terminal the usual tqdm bars stay, with log lines written above them to stderr (transformers writes
them to stdout). Anywhere else (a pipe, a CI log, a file) a line is logged every 10% of the steps, with the
latest loss, plus one line per evaluation, instead of hundreds of carriage-return updates.
"""

from __future__ import annotations

import logging
import sys

from tqdm.auto import tqdm
from transformers import TrainerCallback
from transformers.trainer_callback import PrinterCallback, ProgressCallback

from mmpo.progress import Milestones

logger = logging.getLogger("mmpo")


def _short(logs: dict) -> str:
    shown = {k: (f"{v:.4g}" if isinstance(v, float) else v) for k, v in logs.items() if k != "total_flos"}
    return ", ".join(f"{k}={v}" for k, v in shown.items())


class TerminalProgress(ProgressCallback):
    """tqdm bars (stderr), with each log line printed above them on stderr."""

    def on_log(self, args, state, control, logs=None, **kwargs):
        if state.is_world_process_zero and logs:
            tqdm.write(_short(logs), file=sys.stderr)


class SparseProgress(TrainerCallback):
    """One stderr line every 10% of the steps and one per evaluation."""

    def __init__(self, every_fraction: float = 0.1) -> None:
        self.every_fraction = every_fraction
        self.milestones = Milestones(0)
        self.latest_loss: float | None = None

    def on_train_begin(self, args, state, control, **kwargs):
        self.milestones = Milestones(state.max_steps, self.every_fraction, done=state.global_step)  # resumed runs

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not state.is_world_process_zero or not logs:
            return
        if "loss" in logs:
            self.latest_loss = logs["loss"]
        if any(k.startswith("eval_") for k in logs):
            logger.info("step %d eval: %s", state.global_step, _short(logs))

    def on_step_end(self, args, state, control, **kwargs):
        if state.is_world_process_zero and self.milestones.reached(state.global_step):
            loss = f", loss {self.latest_loss:.4g}" if self.latest_loss is not None else ""
            done = round(100 * state.global_step / state.max_steps)
            logger.info("step %d/%d (%d%%)%s", state.global_step, state.max_steps, done, loss)


def use_stderr_progress(trainer, disable_tqdm: bool) -> None:
    """Replace transformers' stdout printers by the stderr progress that suits where stderr goes."""
    trainer.remove_callback(PrinterCallback)
    trainer.remove_callback(ProgressCallback)
    on_terminal = sys.stderr.isatty() and not disable_tqdm
    trainer.add_callback(TerminalProgress() if on_terminal else SparseProgress())
