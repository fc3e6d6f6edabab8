"""Safetensors files used as caches (reference log-probs, sentence embeddings): read if present, else
write atomically, so a killed run never leaves a half-written cache that a later run would trust.

A cache file that cannot be read (a disk error, a copy cut short, someone else's file under the name) is not the
user's data: it is named in a warning, removed, and its contents computed again, instead of stopping the run."""

from __future__ import annotations

import logging
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

logger = logging.getLogger("mmpo")


def load_cached(path: Path, expected: tuple[str, ...] = ()) -> dict[str, torch.Tensor] | None:
    """The tensors of ``path`` (which must include ``expected``), or None when it is absent or unreadable."""
    if not path.exists():
        return None
    try:
        tensors = load_file(str(path))
    except (SafetensorError, OSError) as exc:
        return _discard(path, f"{type(exc).__name__}: {exc}")
    missing = [name for name in expected if name not in tensors]
    if missing:
        return _discard(path, f"no {', '.join(missing)} in it")
    return tensors


def _discard(path: Path, why: str) -> None:
    logger.warning("cache file %s is unreadable (%s): removing it and computing it again", path, why)
    path.unlink(missing_ok=True)
    return None


def save_atomically(path: Path, tensors: dict[str, torch.Tensor]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    save_file({name: tensor.contiguous() for name, tensor in tensors.items()}, str(tmp))
    tmp.replace(path)
