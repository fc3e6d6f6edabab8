"""Safetensors files used as caches (reference log-probs, sentence embeddings): read if present, else
write atomically, so a killed run never leaves a half-written cache that a later run would trust."""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors.torch import load_file, save_file


def load_cached(path: Path) -> dict[str, torch.Tensor] | None:
    return load_file(str(path)) if path.exists() else None


def save_atomically(path: Path, tensors: dict[str, torch.Tensor]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    save_file({name: tensor.contiguous() for name, tensor in tensors.items()}, str(tmp))
    tmp.replace(path)
