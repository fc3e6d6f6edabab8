"""Resolving data and config names: local paths, ``bundled:`` files and hub ids.

* ``bundled:ultrafeedback/train.jsonl.gz`` is a file shipped inside the package (``mmpo/bundled``), so the
  embedded configs, ``mmpo demo`` and MT-bench work offline on any machine after ``pip install``; the package
  never looks for files outside itself;
* ``org/name[@revision][:config][:split]`` that is not a local path is a Hugging Face hub dataset id,
  resolved by ``mmpo.data.hub``.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from mmpo.errors import ConfigError

BUNDLED_PREFIX = "bundled:"
PACKAGE_DIR = Path(__file__).resolve().parents[1]
CONFIG_DIR = PACKAGE_DIR / "configs"
BUNDLED_DATA_DIR = PACKAGE_DIR / "bundled"
DATA_SUFFIXES = (".jsonl", ".json", ".jsonl.gz", ".json.gz", ".parquet", ".csv")
_HUB_ID = re.compile(
    r"^(?P<repo>[A-Za-z0-9][\w.-]*/[\w.-]+)(?:@(?P<revision>[\w./-]+?))?(?::(?P<parts>[\w.-]+(?::[\w.-]+)?))?$"
)


@dataclass(frozen=True)
class HubDatasetId:
    """``org/name[@revision][:config][:split]``: with one ``:part`` it is the split."""

    repo_id: str
    revision: str | None = None
    config: str | None = None
    split: str | None = None


def parse_hub_dataset_id(text: str) -> HubDatasetId | None:
    """The hub id ``text`` names, or None when it is (or looks like) a local path."""
    if text.startswith((BUNDLED_PREFIX, "/", ".", "~")) or text.lower().endswith(DATA_SUFFIXES):
        return None
    if Path(os.path.expanduser(text)).exists():
        return None
    match = _HUB_ID.match(text)
    if match is None:
        return None
    parts = match.group("parts").split(":") if match.group("parts") else []
    config, split = (None, parts[0]) if len(parts) == 1 else (parts + [None, None])[:2]
    return HubDatasetId(match.group("repo"), match.group("revision"), config, split)


def hub_offline() -> bool:
    """HF_HUB_OFFLINE is set: hub ids resolve from the local cache only."""
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def resolve_data_path(path: str) -> str:
    """A local path for ``path`` (hub ids are left as they are: see mmpo.data.hub)."""
    if path.startswith(BUNDLED_PREFIX):
        bundled = BUNDLED_DATA_DIR / path[len(BUNDLED_PREFIX) :]
        if not bundled.exists():
            known = sorted(str(p.relative_to(BUNDLED_DATA_DIR)) for p in BUNDLED_DATA_DIR.rglob("*.gz"))
            raise ConfigError(f"no bundled data file {path!r}; bundled files: {known}")
        return str(bundled)
    return os.path.expandvars(os.path.expanduser(path))


def data_source_exists(path: str) -> bool:
    """True for an existing local file or folder, and for any hub id (whose existence needs the hub)."""
    return parse_hub_dataset_id(path) is not None or Path(resolve_data_path(path)).exists()


def resolve_config_path(name_or_path: str) -> Path:
    """A path to a YAML file, or the name of a bundled config (e.g. ``embedded_reward``)."""
    path = Path(name_or_path)
    if path.exists():
        return path
    bundled = CONFIG_DIR / (name_or_path if name_or_path.endswith(".yaml") else f"{name_or_path}.yaml")
    if bundled.exists():
        return bundled
    known = sorted(p.stem for p in CONFIG_DIR.glob("*.yaml"))
    raise ConfigError(f"config {name_or_path!r} not found; bundled configs: {known}")
