"""Resuming a killed run, and refusing to resume into a different experiment.

Re-running the same command resumes from the newest ``checkpoint-*`` in ``output_dir``. Every
checkpoint carries the ``mmpo_config.yaml`` of the run that wrote it, so a checkpoint is checked against
the current config wherever it lives, including an explicit ``train.resume_from_checkpoint`` path that
points into another experiment's folder.
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

from transformers import TrainerCallback

from mmpo.config.saved_run import SavedRun
from mmpo.config.schema import RunConfig
from mmpo.errors import ConfigError

TRAINER_STATE = "trainer_state.json"
_CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")

logger = logging.getLogger("mmpo")


def is_complete_checkpoint(folder: Path) -> bool:
    """Trainer writes trainer_state.json last (after weights, optimizer, scheduler and RNG state), so a
    checkpoint whose state file parses is complete; a run killed while saving leaves one that is not."""
    try:
        json.loads((folder / TRAINER_STATE).read_text())
    except (OSError, ValueError):
        return False
    return True


def _checkpoints(output_dir: Path) -> list[tuple[int, Path]]:
    """(step, folder) of every ``checkpoint-N`` in ``output_dir``, newest first."""
    found = ((int(m.group(1)), p) for p in output_dir.iterdir() if p.is_dir() and (m := _CHECKPOINT.match(p.name)))
    return sorted(found, reverse=True)


def last_complete_checkpoint(output_dir: Path) -> str | None:
    """The newest complete ``checkpoint-N`` in ``output_dir``; incomplete newer ones are skipped with a warning."""
    for _, folder in _checkpoints(output_dir):
        if is_complete_checkpoint(folder):
            return str(folder)
        logger.warning("skipping %s: incomplete (the run was killed while saving it)", folder)
    return None


def resolve_resume(cfg: RunConfig) -> str | None:
    """'' = latest checkpoint in output_dir if any (so re-running a killed command resumes), 'none' = fresh,
    else a checkpoint folder, which must exist."""
    choice = cfg.train.resume_from_checkpoint
    out = Path(cfg.train.output_dir)
    if choice == "none":
        # a fresh run beside an older run's checkpoints would leave them the newest: a later plain re-run of this
        # command would resume from them and overwrite the new model with the old run's continuation
        stale = _checkpoints(out) if out.is_dir() else []
        if stale:
            raise ConfigError(
                f"train.resume_from_checkpoint=none, but {out} holds checkpoints of an earlier run "
                f"({', '.join(p.name for _, p in stale[:3])}{', ...' if len(stale) > 3 else ''}); choose a new "
                "train.output_dir, or remove them to start over there"
            )
        return None
    if choice:
        path = Path(choice).expanduser()
        if not is_complete_checkpoint(path):
            what = "does not exist" if not path.exists() else f"is not a checkpoint folder (no {TRAINER_STATE})"
            raise ConfigError(f"train.resume_from_checkpoint: {choice!r} {what}")
        return str(path)
    return last_complete_checkpoint(out) if out.is_dir() else None


def check_resume_matches(cfg: RunConfig, checkpoint: str) -> None:
    """Resuming a checkpoint under a different model, data or loss would silently mix two experiments.
    Everything outside ``train`` (schedule, logging, epochs may change on resume) and the cache location
    must match. The checkpoint's own saved config wins over its run folder's."""
    path = Path(checkpoint)
    saved = SavedRun.read(path) or SavedRun.read(path.parent)
    if saved is None:
        return
    changed = saved.experiment_differences(cfg)
    if changed:
        raise ConfigError(
            f"{saved.folder} holds a run with different {', '.join(changed)}; resuming it would mix two "
            "experiments. Use a new train.output_dir, or train.resume_from_checkpoint=none to overwrite."
        )


class SaveRunConfigWithCheckpoints(TrainerCallback):
    """Writes mmpo_config.yaml into every checkpoint, so that the checkpoint can be checked on its own."""

    def __init__(self, cfg: RunConfig) -> None:
        self.cfg = cfg

    def on_save(self, args, state, control, **kwargs):
        if state.is_world_process_zero:
            folder = Path(args.output_dir) / f"checkpoint-{state.global_step}"
            if folder.is_dir():
                SavedRun.write(self.cfg, folder)
