"""Run configuration: the schema (``schema``), YAML + override loading (``loading``), the copy saved beside
trained models (``saved_run``) and where bundled configs and data live (``paths``)."""

from mmpo.config.loading import data_config_from_overrides, load_config, parse_overrides
from mmpo.config.paths import resolve_config_path, resolve_data_path
from mmpo.config.saved_run import RUN_CONFIG_FILE, SavedRun
from mmpo.config.schema import DataConfig, LoraSettings, RunConfig, TrainSettings

__all__ = [
    "RUN_CONFIG_FILE",
    "DataConfig",
    "LoraSettings",
    "RunConfig",
    "SavedRun",
    "TrainSettings",
    "data_config_from_overrides",
    "load_config",
    "parse_overrides",
    "resolve_config_path",
    "resolve_data_path",
]
