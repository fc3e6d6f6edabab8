"""The run configuration saved beside every trained model (``mmpo_config.yaml``), read back as a type.

Evaluation (which encoder, which beta, which reference model), LoRA merging (which base model) and the
resume guard (is this the same experiment?) all read it; ``SavedRun`` is the one reader.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

from mmpo.config.loading import fill_dataclass, read_yaml_mapping
from mmpo.config.schema import RunConfig
from mmpo.config.strict_yaml import dump_plain
from mmpo.errors import ConfigError

RUN_CONFIG_FILE = "mmpo_config.yaml"
# Settings that may change when a run is resumed: the schedule, logging and where caches live.
RESUMABLE_SECTIONS = ("train", "cache_dir")


@dataclass(frozen=True)
class SavedRun:
    folder: Path
    config: RunConfig

    @classmethod
    def read(cls, folder: str | Path) -> SavedRun | None:
        """The run saved in ``folder``, or None when mmpo did not train it."""
        path = Path(folder) / RUN_CONFIG_FILE
        if not path.is_file():
            return None
        config = RunConfig()
        try:
            fill_dataclass(config, read_yaml_mapping(path), "")
        except ConfigError as exc:
            raise ConfigError(f"{path}: {exc}") from None
        return cls(Path(folder), config)

    @staticmethod
    def write(config: RunConfig, folder: str | Path) -> Path:
        Path(folder).mkdir(parents=True, exist_ok=True)
        path = Path(folder) / RUN_CONFIG_FILE
        tmp = path.with_suffix(".tmp")
        tmp.write_text(dump_plain(dataclasses.asdict(config)))
        tmp.replace(path)
        return path

    def cache_folder(self) -> str:
        """The cache the run used: its ``cache_dir``, else ``cache`` beside its output folder (training's default,
        found from where the model is now, so that it holds wherever the run was started from)."""
        return self.config.cache_dir or str(self.folder.parent / "cache")

    def experiment_differences(self, other: RunConfig) -> list[str]:
        """Top-level sections that differ from ``other`` outside RESUMABLE_SECTIONS: resuming across any of
        them would mix two experiments in one model."""
        saved, current = dataclasses.asdict(self.config), dataclasses.asdict(other)
        return sorted(k for k in current if k not in RESUMABLE_SECTIONS and saved.get(k) != current[k])
