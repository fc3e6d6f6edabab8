"""``mmpo configs``: the configs shipped in the package, listed and copied out to be edited (``tune ls`` /
``tune cp``), so a pip user can start from the paper's settings without a checkout."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from mmpo.config.paths import CONFIG_DIR
from mmpo.errors import ConfigError


def bundled_configs() -> dict[str, Path]:
    """Name (``embedded_reward``, ``accelerate/fsdp``) -> file, for every bundled YAML."""
    return {str(p.relative_to(CONFIG_DIR).with_suffix("")): p for p in sorted(CONFIG_DIR.rglob("*.yaml"))}


def summary_line(path: Path) -> str:
    """The first comment line of a config: what it is for."""
    for line in path.read_text().splitlines():
        if line.startswith("#"):
            return line.lstrip("# ").strip()
        if line.strip():
            break
    return ""


def list_configs() -> list[dict[str, Any]]:
    return [{"name": name, "about": summary_line(path)} for name, path in bundled_configs().items()]


def copy_config(name: str, destination: str, overwrite: bool = False) -> dict[str, Any]:
    known = bundled_configs()
    source = known.get(name.removesuffix(".yaml"))
    if source is None:
        raise ConfigError(f"no bundled config {name!r}; bundled configs: {sorted(known)}")
    target = Path(destination).expanduser().absolute()
    if target.is_dir():
        target = target / source.name
    if target.exists() and not overwrite:
        raise ConfigError(f"{target} exists; pass --force to overwrite it")
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, target)
    return {"copied": name, "to": str(target)}
