"""Run configuration: YAML files plus ``key.sub=value`` overrides, into typed dataclasses.

Unknown keys are errors (a typo such as ``learning_rte`` must not silently fall back to a default),
and every value is coerced to the field's declared type so that ``gamma=inf`` on the command line
means float('inf').
"""

from __future__ import annotations

import dataclasses
import math
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from mmpo.errors import ConfigError
from mmpo.losses import POLICY_LOSS_TYPES, REWARD_LOSS_TYPES
from mmpo.losses.hyperparameters import LossHyperparameters


@dataclass
class DataConfig:
    """Where the pairs come from and how to turn rows into (prompt, chosen, rejected, margin)."""

    train_path: str = ""
    eval_path: str = ""
    prompt_column: str = "prompt"
    chosen_column: str = "chosen"
    rejected_column: str = "rejected"
    # When set, chosen/rejected columns are responses A and B and this column says which won (1/2, A/B, 0 = tie).
    label_column: str = ""
    section_column: str = ""
    format: str = "auto"  # auto | standard | conversational | hh
    # plain-text prompts through the tokenizer's chat template: auto = when the tokenizer has one
    chat_template: str = "auto"  # auto | always | never
    margin_source: str = "scores"  # scores | votes | annotators | similarity | constant
    chosen_score: str = "auto"
    rejected_score: str = "auto"
    completion_column: str = "completion"  # KTO: unpaired rows (prompt, completion, kto_score)
    kto_score: str = "score"
    chosen_votes: str = "score_A"
    rejected_votes: str = "score_B"
    annotator_columns: list[str] = field(default_factory=list)
    constant_margin: float = 1.0
    margin_scale: float = 1.0
    similarity_model: str = ""
    on_tie: str = "soft"  # soft (p = 0.5) | drop | error
    on_negative: str = "error"  # error | swap | drop
    on_empty: str = "error"  # error | drop
    max_train_samples: int = 0
    max_eval_samples: int = 0
    max_pairs_per_prompt: int = 0  # SHP-style: 0 = no limit, the paper uses 5
    margin_quartiles: list[int] = field(default_factory=list)  # keep pairs in these quartiles (1..4) of margin
    shuffle_seed: int = 0

    def validate(self) -> None:
        check_choices(
            {
                "on_tie": (self.on_tie, ("soft", "drop", "error")),
                "on_negative": (self.on_negative, ("error", "swap", "drop")),
                "on_empty": (self.on_empty, ("error", "drop")),
                "chat_template": (self.chat_template, ("auto", "always", "never")),
                "format": (self.format, ("auto", "standard", "conversational", "hh")),
                "margin_source": (self.margin_source, ("scores", "votes", "annotators", "similarity", "constant")),
            },
            "data.",
        )


def check_choices(choices: dict[str, tuple[str, tuple[str, ...]]], prefix: str) -> None:
    """Raise ConfigError naming the first key whose value is not one of its allowed choices."""
    for key, (value, allowed) in choices.items():
        if value not in allowed:
            raise ConfigError(f"{prefix}{key} = {value!r}; choose one of {allowed}")


LossSettings = LossHyperparameters  # one definition of the loss fields, shared with mmpo.losses


@dataclass
class LoraSettings:
    enabled: bool = False
    r: int = 16
    alpha: int = 32
    dropout: float = 0.05
    target_modules: list[str] = field(default_factory=lambda: ["all-linear"])


@dataclass
class TrainSettings:
    """The subset of transformers.TrainingArguments users set most; ``extra`` passes anything else."""

    output_dir: str = "outputs/run"
    num_train_epochs: float = 1.0
    max_steps: int = -1
    learning_rate: float = 5e-6
    per_device_train_batch_size: int = 8
    per_device_eval_batch_size: int = 16
    gradient_accumulation_steps: int = 1
    lr_scheduler_type: str = "cosine"
    warmup_ratio: float = 0.1
    weight_decay: float = 0.0
    max_grad_norm: float = 1.0
    bf16: bool = False
    gradient_checkpointing: bool = False
    logging_steps: int = 10
    eval_steps: int = 0  # 0 = evaluate once per epoch
    save_steps: int = 0  # 0 = save once per epoch
    save_total_limit: int = 2
    seed: int = 42
    report_to: list[str] = field(default_factory=lambda: ["tensorboard"])
    resume_from_checkpoint: str = ""  # "" = auto (latest in output_dir), "none" = start fresh, or a path
    disable_tqdm: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class RunConfig:
    """One training run: ``kind`` is 'reward', 'policy' (pairwise, DPO family) or 'kto' (unpaired)."""

    kind: str = "reward"
    model: str = "bundled:all-minilm-l6-v2"
    # reward models only: fine-tune a sequence-classification model, or train an MLP head on frozen,
    # cached sentence embeddings of `model` (CPU-sized; see mmpo.reward_head)
    reward_head: str = "sequence_classification"  # sequence_classification | frozen_encoder
    head_hidden_dim: int = 256
    head_dropout: float = 0.1
    trust_remote_code: bool = False
    # weights dtype at load time; float32 keeps fp32 master weights under train.bf16 autocast,
    # bfloat16 halves memory for large models (DeepSpeed keeps its own fp32 master copy)
    model_dtype: str = "float32"  # float32 | bfloat16 | float16
    max_length: int = 512
    max_prompt_length: int = 256
    overlong: str = "error"  # error | truncate | drop
    cache_dir: str = ""  # reference log-probs and embeddings cache; default <output_dir>/../cache
    ece_bins: int = 10
    data: DataConfig = field(default_factory=DataConfig)
    loss: LossSettings = field(default_factory=LossSettings)
    lora: LoraSettings = field(default_factory=LoraSettings)
    train: TrainSettings = field(default_factory=TrainSettings)

    def validate(self) -> None:
        choices = {
            "kind": (self.kind, ("reward", "policy", "kto")),
            "overlong": (self.overlong, ("error", "truncate", "drop")),
            "reward_head": (self.reward_head, ("sequence_classification", "frozen_encoder")),
            "model_dtype": (self.model_dtype, ("float32", "bfloat16", "float16")),
        }
        check_choices(choices, "")
        self.data.validate()
        allowed_losses = {"reward": REWARD_LOSS_TYPES, "policy": POLICY_LOSS_TYPES, "kto": ("kto",)}[self.kind]
        if self.loss.loss_type not in allowed_losses:
            raise ConfigError(
                f"loss.loss_type = {self.loss.loss_type!r} for a {self.kind} model; choose one of {allowed_losses}"
            )
        if not self.data.train_path:
            raise ConfigError("data.train_path is required")
        if self.max_prompt_length >= self.max_length:
            raise ConfigError("max_prompt_length must be smaller than max_length")
        if not (self.loss.gamma > 0):
            raise ConfigError(f"loss.gamma must be > 0 or inf (got {self.loss.gamma})")


def _coerce(value: Any, annotation: Any, key: str) -> Any:
    """Convert YAML/CLI values to the dataclass field type, with an error naming the key."""
    origin = typing.get_origin(annotation)
    try:
        if annotation is float:
            if isinstance(value, str) and value.strip().lower() in ("inf", "+inf", "infinity"):
                return math.inf
            return float(value)
        if annotation is int:
            if isinstance(value, float) and not value.is_integer():
                raise ValueError(value)
            return int(value)
        if annotation is bool:
            if isinstance(value, str):
                if value.lower() in ("true", "1", "yes", "on"):
                    return True
                if value.lower() in ("false", "0", "no", "off"):
                    return False
                raise ValueError(value)
            return bool(value)
        if annotation is str:
            return "" if value is None else str(value)
        if origin is list:
            if isinstance(value, str):
                value = [v for v in value.split(",") if v]
            (item_type,) = typing.get_args(annotation)
            return [_coerce(v, item_type, key) for v in value]
        if origin is dict:
            if not isinstance(value, dict):
                raise ValueError(value)
            return dict(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{key}: cannot read {value!r} as {getattr(annotation, '__name__', annotation)}") from None
    return value


def _fill(instance: Any, values: dict[str, Any], prefix: str) -> None:
    hints = typing.get_type_hints(type(instance))
    names = {f.name for f in dataclasses.fields(instance)}
    for key, value in values.items():
        full = f"{prefix}{key}"
        if key not in names:
            raise ConfigError(f"unknown config key {full!r}; known keys here: {sorted(names)}")
        current = getattr(instance, key)
        if dataclasses.is_dataclass(current):
            if not isinstance(value, dict):
                raise ConfigError(f"{full} must be a mapping")
            _fill(current, value, full + ".")
        else:
            setattr(instance, key, _coerce(value, hints[key], full))


def parse_overrides(overrides: list[str]) -> dict[str, Any]:
    """``a.b=1`` strings to a nested dict; values are parsed as YAML scalars (so 1e-5, true, [a,b] work)."""
    nested: dict[str, Any] = {}
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override {item!r} must look like key.sub=value")
        key, raw = item.split("=", 1)
        value = yaml.safe_load(raw) if raw else ""
        node = nested
        parts = key.strip().split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return nested


def load_config(
    path: str | Path | None = None, overrides: list[str] | None = None, kind: str | None = None
) -> RunConfig:
    """Read YAML (if any), apply overrides, validate. ``kind`` from the CLI wins over the file."""
    config = RunConfig()
    if path:
        path = Path(path)
        if not path.exists():
            raise ConfigError(f"config file {str(path)!r} does not exist")
        loaded = yaml.safe_load(path.read_text()) or {}
        if not isinstance(loaded, dict):
            raise ConfigError(f"{path}: top level must be a mapping")
        _fill(config, loaded, "")
    if overrides:
        _fill(config, parse_overrides(overrides), "")
    if kind:
        config.kind = kind
    config.validate()
    return config


def data_config_from_overrides(overrides: list[str]) -> DataConfig:
    """A validated DataConfig from ``key=value`` strings (the ``--set`` of ``mmpo eval`` / ``margins``)."""
    cfg = DataConfig()
    _fill(cfg, parse_overrides(overrides), "data.")
    cfg.validate()
    return cfg


def config_to_dict(config: RunConfig) -> dict[str, Any]:
    return dataclasses.asdict(config)


RUN_CONFIG_FILE = "mmpo_config.yaml"


def save_run_config(config: RunConfig, folder: str | Path) -> None:
    """Written beside every trained model: eval, LoRA merging and the resume guard read it back."""
    Path(folder).mkdir(parents=True, exist_ok=True)
    (Path(folder) / RUN_CONFIG_FILE).write_text(yaml.safe_dump(config_to_dict(config), sort_keys=False))


def saved_run_config(folder: str | Path) -> dict[str, Any]:
    """The run config saved in ``folder`` as a plain dict, or {} when mmpo did not train it."""
    path = Path(folder) / RUN_CONFIG_FILE
    return yaml.safe_load(path.read_text()) if path.exists() else {}
