"""``mmpo env``: what a bug report needs to know about this machine, as ``trl env`` prints it.

Versions are read from the installed distributions' metadata, so nothing heavy is imported for a package
that is only listed; torch is imported for the device, which is the one fact metadata cannot give.
"""

from __future__ import annotations

import platform
import sys
from importlib import metadata
from typing import Any

import mmpo
from mmpo.host_memory import host_allocator_report

LIBRARIES = ("torch", "transformers", "datasets", "accelerate", "peft", "trl", "deepspeed", "safetensors", "vllm")


def installed_version(distribution: str) -> str:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "not installed"


def device_description() -> str:
    import torch

    if torch.cuda.is_available():
        names = sorted({torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())})
        return f"{torch.cuda.device_count()} x CUDA ({', '.join(names)}), CUDA {torch.version.cuda}"
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return "Apple MPS"
    return f"CPU ({torch.get_num_threads()} threads)"


def run_env() -> dict[str, Any]:
    return {
        "mmpo": mmpo.__version__,
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        **{name: installed_version(name) for name in LIBRARIES},
        "device": device_description(),
        "host_allocator": host_allocator_report(),
    }


def as_text(report: dict[str, Any]) -> str:
    """The report as the list ``trl env`` prints, ready to paste into an issue."""
    return "\n".join(
        f"- {key} version: {value}" if key in LIBRARIES or key in ("mmpo", "python") else f"- {key}: {value}"
        for key, value in report.items()
    )
