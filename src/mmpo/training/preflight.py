"""Checks of a whole run configuration that need no data and no model, run before anything heavy.

``RunConfig.validate`` (at load time) already checks every value's type and range; this adds what needs
the installed libraries or the file system: transformers' names for schedulers and extra arguments,
logging backends that are actually installed, data files that exist, and a resumable checkpoint.
"""

from __future__ import annotations

import dataclasses
import importlib.util

from transformers import SchedulerType, TrainingArguments

from mmpo.config.paths import data_source_exists, hub_offline
from mmpo.config.schema import RunConfig
from mmpo.errors import ConfigError
from mmpo.file_errors import ensure_writable_folder
from mmpo.models.inspect import max_positions, model_kind, require_model_kind
from mmpo.training.arguments import MANAGED_ARGUMENTS
from mmpo.training.resume import resolve_resume

_BACKEND_PACKAGES = {"wandb": "wandb", "mlflow": "mlflow", "comet_ml": "comet_ml", "trackio": "trackio"}


def check_trainer_settings(cfg: RunConfig) -> None:
    train = cfg.train
    schedulers = sorted(s.value for s in SchedulerType)
    if train.lr_scheduler_type not in schedulers:
        raise ConfigError(f"train.lr_scheduler_type = {train.lr_scheduler_type!r}; choose one of {schedulers}")
    known = {f.name for f in dataclasses.fields(TrainingArguments)}
    for key in train.extra:
        if key not in known:
            raise ConfigError(f"train.extra.{key} is not a transformers.TrainingArguments field")
        if key in MANAGED_ARGUMENTS:
            raise ConfigError(f"train.extra.{key} is set by mmpo; use the train.{MANAGED_ARGUMENTS[key]} setting")
    for backend in train.report_to:
        package = _BACKEND_PACKAGES.get(backend)
        if package and importlib.util.find_spec(package) is None:
            raise ConfigError(f"train.report_to includes {backend!r} but it is not installed: pip install {package}")
    if train.log_completions and cfg.kind == "reward":
        raise ConfigError("train.log_completions generates with a policy; a reward model has nothing to generate")
    if train.log_completions and not cfg.data.eval_path:
        raise ConfigError("train.log_completions answers eval prompts; set data.eval_path")
    if train.push_to_hub and hub_offline():
        raise ConfigError("train.push_to_hub with HF_HUB_OFFLINE=1: the run could not be pushed; unset one of them")
    if train.bf16 and cfg.model_dtype == "float16":
        raise ConfigError("train.bf16 with model_dtype float16 mixes two half-precision formats; use bfloat16")


_KERNEL_PACKAGES = {"flash_attention_2": "flash_attn", "flash_attention_3": "flash_attn_interface"}


def check_attention_kernel(cfg: RunConfig) -> None:
    """A FlashAttention setting without its package fails inside from_pretrained, after the model is read."""
    package = _KERNEL_PACKAGES.get(cfg.attn_implementation)
    if package and importlib.util.find_spec(package) is None:
        raise ConfigError(
            f"attn_implementation {cfg.attn_implementation} needs the {package} package; it is not installed"
        )


def check_data_paths(cfg: RunConfig) -> None:
    named = [(key, getattr(cfg.data, key)) for key in ("train_path", "eval_path")]
    named += [(f"train_mixture[{i}].path", source["path"]) for i, source in enumerate(cfg.data.train_mixture)]
    for key, value in named:
        if value and not data_source_exists(value):
            raise ConfigError(f"data.{key}: {value!r} does not exist")


def check_model_kind(cfg: RunConfig) -> None:
    """The model exists (locally or in the hub cache / on the hub) and can serve the run's kind."""
    if cfg.kind in ("policy", "kto"):
        require_model_kind(cfg.model, "policy", "model", cfg.trust_remote_code)
    else:
        # an encoder or a causal LM gets a fresh reward head: only its existence (and its code) matters
        model_kind(cfg.model, cfg.trust_remote_code)
    positions = max_positions(cfg.model)
    if positions is not None and cfg.max_length > positions:
        raise ConfigError(
            f"max_length {cfg.max_length} is beyond the {positions} positions {cfg.model} was built for; "
            f"set max_length <= {positions}"
        )


def preflight(cfg: RunConfig) -> str | None:
    """Everything that can fail without loading data or a model; returns the checkpoint to resume from."""
    cfg.validate()
    check_trainer_settings(cfg)
    check_attention_kernel(cfg)
    check_data_paths(cfg)
    ensure_writable_folder(cfg.train.output_dir, "train.output_dir")
    resume = resolve_resume(cfg)
    check_model_kind(cfg)
    return resume
