"""The run configuration schema: typed dataclasses and their validation, nothing else.

Reading YAML and ``key.sub=value`` overrides lives in ``loading.py``; the copy saved beside a trained
model in ``saved_run.py``. ``validate()`` checks every value that can be checked without loading data or
models, so that a bad setting fails in well under a second, before any heavy work.
"""

from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass, field
from typing import Any

from mmpo.config.strict_yaml import short_repr
from mmpo.errors import ConfigError
from mmpo.losses import LossConfig

MARGIN_SOURCES = ("scores", "votes", "annotators", "similarity", "constant", "auto")

# transformers' own names; the flash kernels are separate packages, checked before loading (training.preflight)
ATTENTION_IMPLEMENTATIONS = ("", "sdpa", "eager", "flash_attention_2", "flash_attention_3", "flex_attention")

# what activation checkpointing keeps of a layer's forward (training/checkpointing.py): its input only, also its
# attention's output, or also the outputs of its matmuls and attention (all, or every other matmul)
CHECKPOINT_SAVES = ("inputs", "attention", "matmuls", "half_matmuls")


def check_choices(choices: dict[str, tuple[str, tuple[str, ...]]], prefix: str) -> None:
    """Raise ConfigError naming the first key whose value is not one of its allowed choices."""
    for key, (value, allowed) in choices.items():
        if value not in allowed:
            raise ConfigError(f"{prefix}{key} = {short_repr(value)}; choose one of {allowed}")


def check_range(key: str, value: float, *, low: float | None = None, strict_low: bool = False) -> None:
    """A finite number above ``low`` (strictly when ``strict_low``); the message names the key."""
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(f"{key} must be a finite number (got {value})")
    if low is not None and (value <= low if strict_low else value < low):
        raise ConfigError(f"{key} must be {'>' if strict_low else '>='} {low:g} (got {value:g})")


@dataclass
class DataConfig:
    """Where the pairs come from and how to turn rows into (prompt, chosen, rejected, margin)."""

    train_path: str = ""
    # several train sources instead of train_path (YAML may also give train_path a list): each a mapping with
    # `path`, at most one of `count` (pairs) or `fraction` (of the source's pairs), and any data.* setting for that
    # source alone (columns, margin_source, ...), as TRL's dataset_mixture
    train_mixture: list[dict[str, Any]] = field(default_factory=list)
    eval_path: str = ""
    prompt_column: str = "prompt"
    chosen_column: str = "chosen"
    rejected_column: str = "rejected"
    # When set, chosen/rejected columns are responses A and B and this column says which won (1/2, A/B, 0 = tie).
    label_column: str = ""
    section_column: str = ""
    format: str = "auto"  # auto | standard | conversational | implicit (TRL's implicit prompt) | hh
    # plain-text prompts through the tokenizer's chat template: auto = when the tokenizer has one
    chat_template: str = "auto"  # auto | always | never
    margin_source: str = "scores"  # scores | votes | annotators | similarity | constant | auto (see data/reading.py)
    chosen_score: str = "auto"
    rejected_score: str = "auto"
    completion_column: str = "completion"  # KTO: unpaired rows (prompt, completion, kto_score)
    kto_score: str = "score"
    kto_label: str = "label"  # KTO: TRL's boolean label (desirable or not) where rows have no score
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
    min_margin: float | None = None  # keep only pairs with margin > min_margin (the paper's DPO_{>k} ablation)
    # sample max_*_samples (0: 4 x the smallest quartile) equally from the four margin quartiles, as the paper
    # samples SHP uniformly across score differences (a sampling, unlike the margin_quartiles filter)
    stratify_margin_quartiles: bool = False
    shuffle_seed: int = 0
    # processes that tokenise a training file into its cached Arrow table (features/feature_table.py)
    num_proc: int = 1

    def validate(self) -> None:
        check_choices(
            {
                "on_tie": (self.on_tie, ("soft", "drop", "error")),
                "on_negative": (self.on_negative, ("error", "swap", "drop")),
                "on_empty": (self.on_empty, ("error", "drop")),
                "chat_template": (self.chat_template, ("auto", "always", "never")),
                "format": (self.format, ("auto", "standard", "conversational", "implicit", "hh")),
                "margin_source": (self.margin_source, MARGIN_SOURCES),
            },
            "data.",
        )
        check_range("data.num_proc", self.num_proc, low=1)
        # margin_scale multiplies every margin: a negative scale would flip every target, 0 would tie them all
        check_range("data.margin_scale", self.margin_scale, low=0, strict_low=True)
        check_range("data.constant_margin", self.constant_margin, low=0, strict_low=True)
        for key in ("max_train_samples", "max_eval_samples", "max_pairs_per_prompt", "shuffle_seed"):
            check_range(f"data.{key}", getattr(self, key), low=0)
        if self.min_margin is not None:
            check_range("data.min_margin", self.min_margin)
        if self.stratify_margin_quartiles and self.margin_quartiles:
            raise ConfigError("data.stratify_margin_quartiles samples all four quartiles; drop data.margin_quartiles")
        bad = [q for q in self.margin_quartiles if q not in (1, 2, 3, 4)]
        if bad:
            raise ConfigError(f"data.margin_quartiles must be in 1..4 (got {bad})")
        for index, source in enumerate(self.train_mixture):
            mixture_source(self, index, source)
        if self.train_mixture and self.train_path:
            raise ConfigError("give data.train_path or data.train_mixture, not both")
        if self.margin_source == "annotators" and not self.annotator_columns:
            raise ConfigError("data.margin_source = 'annotators' needs data.annotator_columns (e.g. [a1, a2, a3])")
        if self.label_column and self.margin_source not in LABEL_DIRECTED_SOURCES:
            raise ConfigError(
                f"data.label_column only applies to margin_source {LABEL_DIRECTED_SOURCES}; with "
                f"{self.margin_source!r} the sign of the margin already says which response won"
            )


MIXTURE_KEYS = ("path", "count", "fraction")


def mixture_source(data: DataConfig, index: int, source: dict[str, Any]) -> tuple[str, int, float, DataConfig]:
    """(path, count, fraction, this source's DataConfig) of ``data.train_mixture[index]``, checked."""
    where = f"data.train_mixture[{index}]"
    if not isinstance(source, dict) or not isinstance(source.get("path"), str) or not source["path"]:
        raise ConfigError(f"{where} needs a path (got {short_repr(source)})")
    count, fraction = source.get("count", 0), source.get("fraction", 1.0)
    if "count" in source and "fraction" in source:
        raise ConfigError(f"{where}: give count or fraction, not both")
    if isinstance(count, bool) or not isinstance(count, int) or count < 0:
        raise ConfigError(f"{where}.count must be a whole number >= 0 (got {short_repr(count)})")
    if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not 0 < fraction <= 1:
        raise ConfigError(f"{where}.fraction must be in (0, 1] (got {short_repr(fraction)})")
    settings = {k: v for k, v in source.items() if k not in MIXTURE_KEYS}
    known = {f.name for f in dataclasses.fields(DataConfig)} - {"train_path", "train_mixture", "eval_path"}
    unknown = sorted(set(settings) - known)
    if unknown:
        raise ConfigError(f"{where}: unknown data setting(s) {unknown}")
    own = dataclasses.replace(data, train_path="", train_mixture=[], **settings)
    own.validate()
    return source["path"], count, float(fraction), own


# Margin sources whose value carries no direction: a label column says which response won.
LABEL_DIRECTED_SOURCES = ("constant", "similarity")


@dataclass
class LoraSettings:
    enabled: bool = False
    r: int = 16
    alpha: int = 32
    dropout: float = 0.05
    target_modules: list[str] = field(default_factory=lambda: ["all-linear"])

    def validate(self) -> None:
        check_range("lora.r", self.r, low=0, strict_low=True)
        check_range("lora.alpha", self.alpha, low=0, strict_low=True)
        if not 0 <= self.dropout < 1:
            raise ConfigError(f"lora.dropout must be in [0, 1) (got {self.dropout})")
        if not self.target_modules:
            raise ConfigError("lora.target_modules is empty; use [all-linear] or name the modules")


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
    # with gradient_checkpointing: inputs (full), attention, matmuls or half_matmuls (selective)
    checkpoint_saves: str = "inputs"
    # keep freed host memory in the process (glibc mallopt) so each step's large tensors do not page-fault in again
    reuse_freed_memory: bool = True
    logging_steps: int = 10
    eval_steps: int = 0  # 0 = evaluate once per epoch
    save_steps: int = 0  # 0 = save once per epoch
    save_total_limit: int = 2
    seed: int = 42
    report_to: list[str] = field(default_factory=lambda: ["tensorboard"])
    resume_from_checkpoint: str = ""  # "" = auto (latest in output_dir), "none" = start fresh, or a path
    disable_tqdm: bool = False
    log_completions: int = 0  # policies: greedy answers to this many eval prompts at every evaluation
    log_completions_max_new_tokens: int = 64
    # push the finished folder (weights, card, config, metrics) to the Hub, after all of it is written
    push_to_hub: bool = False
    hub_model_id: str = ""  # org/name
    hub_private: bool = True
    extra: dict[str, Any] = field(default_factory=dict)

    def validate(self) -> None:
        if not self.output_dir:
            raise ConfigError("train.output_dir is empty")
        check_choices({"checkpoint_saves": (self.checkpoint_saves, CHECKPOINT_SAVES)}, "train.")
        if self.checkpoint_saves != "inputs" and not self.gradient_checkpointing:
            raise ConfigError(
                f"train.checkpoint_saves = {self.checkpoint_saves} chooses what checkpointing keeps; "
                "it needs train.gradient_checkpointing: true"
            )
        if self.max_steps == 0 or self.max_steps < -1:
            raise ConfigError(f"train.max_steps must be > 0, or -1 to train by epochs (got {self.max_steps})")
        if self.max_steps == -1:
            check_range("train.num_train_epochs", self.num_train_epochs, low=0, strict_low=True)
        check_range("train.learning_rate", self.learning_rate, low=0)
        for key in ("per_device_train_batch_size", "per_device_eval_batch_size", "gradient_accumulation_steps"):
            check_range(f"train.{key}", getattr(self, key), low=0, strict_low=True)
        if not 0 <= self.warmup_ratio < 1:
            raise ConfigError(f"train.warmup_ratio must be in [0, 1) (got {self.warmup_ratio})")
        check_range("train.weight_decay", self.weight_decay, low=0)
        check_range("train.max_grad_norm", self.max_grad_norm, low=0)
        check_range("train.logging_steps", self.logging_steps, low=0, strict_low=True)
        check_range("train.eval_steps", self.eval_steps, low=0)
        check_range("train.save_steps", self.save_steps, low=0)
        check_range("train.save_total_limit", self.save_total_limit, low=0, strict_low=True)
        check_range("train.log_completions", self.log_completions, low=0)
        check_range("train.log_completions_max_new_tokens", self.log_completions_max_new_tokens, low=0, strict_low=True)
        if self.push_to_hub and not re.fullmatch(r"[A-Za-z0-9][\w.-]*/[\w.-]+", self.hub_model_id):
            raise ConfigError(f"train.push_to_hub needs train.hub_model_id as org/name (got {self.hub_model_id!r})")
        unknown = [r for r in self.report_to if r not in REPORT_BACKENDS]
        if unknown:
            raise ConfigError(f"train.report_to: unknown backend(s) {unknown}; choose from {REPORT_BACKENDS}")


REPORT_BACKENDS = ("tensorboard", "wandb", "mlflow", "comet_ml", "trackio", "none")


@dataclass
class RunConfig:
    """One training run: ``kind`` is 'reward', 'policy' (pairwise, DPO family) or 'kto' (unpaired)."""

    kind: str = "reward"
    model: str = "bundled:all-minilm-l6-v2"
    # reward models only: fine-tune a sequence-classification model, or train an MLP head on frozen,
    # cached sentence embeddings of `model` (CPU-sized; see mmpo.models.reward_head)
    reward_head: str = "sequence_classification"  # sequence_classification | frozen_encoder
    head_hidden_dim: int = 256
    head_dropout: float = 0.1
    trust_remote_code: bool = False
    # weights load from safetensors only; true also accepts pickled .bin weights (only for models you trust)
    allow_pickled_weights: bool = False
    # weights dtype at load time; float32 keeps fp32 master weights under train.bf16 autocast,
    # bfloat16 halves memory for large models (DeepSpeed keeps its own fp32 master copy)
    model_dtype: str = "float32"  # float32 | bfloat16 | float16
    # transformers' attention: "" keeps its default (SDPA); flash_attention_2 needs the flash-attn package
    attn_implementation: str = ""  # "" | sdpa | eager | flash_attention_2 | flash_attention_3 | flex_attention
    max_length: int = 512
    max_prompt_length: int = 256
    overlong: str = "error"  # error | truncate | drop
    # policies and KTO: pack each batch's sequences into one row (no padding computed) when the model can attend
    # per sequence without a dense mask (SDPA or FlashAttention, no sliding window); see models/varlen_attention.py
    padding_free: bool = True
    cache_dir: str = ""  # reference log-probs and embeddings cache; default <output_dir>/../cache
    ece_bins: int = 10
    # held-out NLL/Brier are measured against p = sigmoid(eval_target_gamma * m) whatever the loss, so that an
    # MMPO run and its DPO/BT baseline (hard labels) are scored against the same stated target
    eval_target_gamma: float = 1.0
    data: DataConfig = field(default_factory=DataConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    lora: LoraSettings = field(default_factory=LoraSettings)
    train: TrainSettings = field(default_factory=TrainSettings)

    def _check_loss_needs(self) -> None:
        """What the loss's row in the table of losses asks of the run: a loss that reads batch statistics needs
        at least two pairs per batch (a standard deviation of one pair is undefined)."""
        from mmpo.losses.table import loss_spec

        spec = loss_spec(self.loss.loss_type)
        if spec.batch_statistics and self.train.per_device_train_batch_size < 2:
            raise ConfigError(
                f"loss.loss_type={self.loss.loss_type} adapts to each batch's statistics and needs "
                f"train.per_device_train_batch_size >= 2 (got {self.train.per_device_train_batch_size})"
            )

    def validate(self) -> None:
        choices = {
            "kind": (self.kind, ("reward", "policy", "kto")),
            "overlong": (self.overlong, ("error", "truncate", "drop")),
            "reward_head": (self.reward_head, ("sequence_classification", "frozen_encoder")),
            "model_dtype": (self.model_dtype, ("float32", "bfloat16", "float16")),
            "attn_implementation": (self.attn_implementation, ATTENTION_IMPLEMENTATIONS),
        }
        check_choices(choices, "")
        if not self.model:
            raise ConfigError("model is empty; name a local folder, a hub id (org/name) or a bundled model")
        check_range("max_length", self.max_length, low=0, strict_low=True)
        check_range("max_prompt_length", self.max_prompt_length, low=0, strict_low=True)
        if self.max_prompt_length >= self.max_length:
            raise ConfigError("max_prompt_length must be smaller than max_length")
        check_range("head_hidden_dim", self.head_hidden_dim, low=0, strict_low=True)
        if not 0 <= self.head_dropout < 1:
            raise ConfigError(f"head_dropout must be in [0, 1) (got {self.head_dropout})")
        if not self.eval_target_gamma > 0:
            raise ConfigError(f"eval_target_gamma must be > 0 or inf (got {self.eval_target_gamma})")
        if self.ece_bins < 2:
            raise ConfigError(f"ece_bins must be >= 2 (got {self.ece_bins})")
        self.data.validate()
        try:
            self.loss.validate(self.kind)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        self.lora.validate()
        self.train.validate()
        self._check_loss_needs()
        if not (self.data.train_path or self.data.train_mixture):
            raise ConfigError("data.train_path is required")
