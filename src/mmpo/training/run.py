"""Training entry point shared by the CLI, the demo and the benchmarks: config in, trained model out."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import datasets
import torch
from accelerate import PartialState
from transformers import TrainerCallback
from transformers.trainer_utils import get_last_checkpoint

from mmpo.config import RunConfig, config_to_dict, save_run_config, saved_run_config
from mmpo.data.prepare import cap_samples, prepare_pairs
from mmpo.data.unpaired import kto_pseudo_pairs, median_score, scored_samples
from mmpo.embeddings import SentenceEmbedder
from mmpo.errors import ConfigError
from mmpo.evaluation.metrics import pairwise_calibration
from mmpo.evaluation.reliability import plot_margin_history, plot_reliability
from mmpo.losses.policy import PolicyLossConfig
from mmpo.losses.reward import RewardLossConfig
from mmpo.models import load_causal_lm, load_reward_model, load_tokenizer
from mmpo.reward_head import FrozenEncoderRewardHead
from mmpo.training.arguments import build_training_arguments
from mmpo.training.collators import EmbeddingPairCollator, PolicyCollator, RewardCollator
from mmpo.training.embedding_features import embed_pairs
from mmpo.training.kto_trainer import KTOTrainer
from mmpo.training.lora import maybe_wrap_lora
from mmpo.training.policy_trainer import PolicyTrainer
from mmpo.training.reference import attach_reference_logps, cached_reference_logps
from mmpo.training.reward_trainer import RewardTrainer
from mmpo.training.tokenize import LengthPolicy, tokenize_policy_pairs, tokenize_reward_pairs

logger = logging.getLogger("mmpo")


@dataclass
class TrainResult:
    output_dir: Path
    metrics: dict[str, float]
    reliability_png: Path | None
    margin_history_png: Path | None
    eval_logits: list[float]
    eval_margins: list[float]


class MarginHistoryPlot(TrainerCallback):
    """Writes implicit_margin_history.png at the end of training (the paper's overfitting analysis)."""

    def on_train_end(self, args, state, control, **kwargs):
        if state.is_world_process_zero:
            plot_margin_history(state.log_history, Path(args.output_dir) / "implicit_margin_history.png")


def resolve_resume(cfg: RunConfig) -> str | None:
    """'' = latest checkpoint in output_dir if any (so re-running a killed command resumes), 'none' = fresh."""
    choice = cfg.train.resume_from_checkpoint
    if choice == "none":
        return None
    if choice:
        return choice
    out = Path(cfg.train.output_dir)
    return get_last_checkpoint(str(out)) if out.is_dir() else None


def check_resume_matches(cfg: RunConfig, out: Path) -> None:
    """Resuming a checkpoint under a different model, data or loss would silently mix two experiments.
    Everything outside ``train`` (schedule, logging, epochs may change on resume) and the cache location
    must match."""
    saved = saved_run_config(out)
    if not saved:
        return
    current = config_to_dict(cfg)
    changed = sorted(k for k in current if k not in ("train", "cache_dir") and saved.get(k) != current[k])
    if changed:
        raise ConfigError(
            f"{out} holds a run with different {', '.join(changed)}; resuming it would mix two experiments. "
            "Use a new train.output_dir, or train.resume_from_checkpoint=none to overwrite."
        )


def resolve_cache_dir(cfg: RunConfig) -> str:
    """Where reference log-probs and embeddings are cached: shared by sibling runs (sweeps, baselines)."""
    return cfg.cache_dir or str(Path(cfg.train.output_dir).parent / "cache")


def uses_frozen_encoder(cfg: RunConfig) -> bool:
    return cfg.kind == "reward" and cfg.reward_head == "frozen_encoder"


def precompute_reference(cfg: RunConfig, model, pad_token_id: int, feature_sets: dict[str, list[dict]]) -> None:
    """Attach cached-or-computed reference log-probs to every feature, with the model as it is now
    (before LoRA adapters or any training step, so it *is* the reference)."""
    if any(hasattr(p, "ds_id") for p in model.parameters()):
        raise ConfigError(
            "the model was loaded already partitioned by DeepSpeed ZeRO-3 (zero3_init_flag: true), so "
            "reference log-probs cannot be precomputed; set zero3_init_flag: false in the accelerate "
            "config: ZeRO-3 still shards the model once training starts"
        )
    model.to(PartialState().device)
    for name, features in feature_sets.items():
        if not features:
            continue
        chosen, rejected, hit = cached_reference_logps(
            model, features, pad_token_id, resolve_cache_dir(cfg), cfg.train.per_device_eval_batch_size, cfg.train.bf16
        )
        attach_reference_logps(features, chosen, rejected)
        logger.info("%s reference log-probs %s", name, "from cache" if hit else "computed")


def _reward_model_and_collator(cfg: RunConfig, tokenizer, train_features):
    if uses_frozen_encoder(cfg):
        dim = len(train_features[0]["prompt_embedding"])
        return FrozenEncoderRewardHead(dim, cfg.head_hidden_dim, cfg.head_dropout), EmbeddingPairCollator()
    model = load_reward_model(cfg.model, cfg.trust_remote_code, getattr(torch, cfg.model_dtype))
    return maybe_wrap_lora(model, cfg.lora, "SEQ_CLS"), RewardCollator(tokenizer.pad_token_id)


def _policy_model_and_collator(cfg: RunConfig, needs_reference: bool, tokenizer, train_features, eval_features):
    model = load_causal_lm(cfg.model, cfg.trust_remote_code, getattr(torch, cfg.model_dtype))
    if needs_reference:
        precompute_reference(cfg, model, tokenizer.pad_token_id, {"train": train_features, "eval": eval_features})
    model = maybe_wrap_lora(model, cfg.lora, "CAUSAL_LM")
    if cfg.train.gradient_checkpointing:
        model.config.use_cache = False
    return model, PolicyCollator(tokenizer.pad_token_id)


def _build_trainer(cfg: RunConfig, tokenizer, train_features, eval_features, callbacks):
    if cfg.kind == "reward":
        loss = RewardLossConfig(cfg.loss.loss_type, cfg.loss.gamma, cfg.loss.label_smoothing)
        trainer_cls = partial(RewardTrainer, loss_config=loss)
        model, collator = _reward_model_and_collator(cfg, tokenizer, train_features)
    elif cfg.kind == "kto":
        model, collator = _policy_model_and_collator(cfg, True, tokenizer, train_features, eval_features)
        trainer_cls = partial(KTOTrainer, beta=cfg.loss.beta, gamma=cfg.loss.gamma)
    else:
        loss = PolicyLossConfig(**vars(cfg.loss))
        trainer_cls = partial(PolicyTrainer, loss_config=loss)
        model, collator = _policy_model_and_collator(
            cfg, loss.needs_reference, tokenizer, train_features, eval_features
        )
    # TrainingArguments are created after the model is loaded on purpose: under DeepSpeed ZeRO-3 they would
    # make from_pretrained partition the weights at load time, before the reference pass needs them whole.
    return trainer_cls(
        model=model,
        args=build_training_arguments(cfg.train),
        data_collator=collator,
        train_dataset=datasets.Dataset.from_list(train_features),
        eval_dataset=datasets.Dataset.from_list(eval_features) if eval_features else None,
        processing_class=tokenizer,
        ece_bins=cfg.ece_bins,
        callbacks=[MarginHistoryPlot(), *callbacks],
    )


def _kto_features(cfg: RunConfig, tokenizer, featurize) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Unpaired samples as pseudo-pairs; the train median of the scores centres train and eval alike."""
    seed = cfg.data.shuffle_seed
    train_samples = cap_samples(scored_samples(cfg.data, cfg.data.train_path), cfg.data.max_train_samples, seed)
    median = median_score(train_samples)
    logger.info("kto: %d train samples, median score %g", len(train_samples), median)
    train = featurize(kto_pseudo_pairs(train_samples, median, tokenizer, cfg.data.chat_template))
    evaluation: list[dict[str, Any]] = []
    if cfg.data.eval_path:
        eval_samples = cap_samples(scored_samples(cfg.data, cfg.data.eval_path), cfg.data.max_eval_samples, seed)
        evaluation = featurize(kto_pseudo_pairs(eval_samples, median, tokenizer, cfg.data.chat_template))
    return train, evaluation


def load_features(cfg: RunConfig, tokenizer) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Validated, tokenised train and eval features."""
    length = LengthPolicy(cfg.max_length, cfg.max_prompt_length, cfg.overlong)
    if uses_frozen_encoder(cfg):
        embedder = SentenceEmbedder(cfg.model, max_length=cfg.max_length)

        def featurize(pairs):
            return embed_pairs(pairs, embedder, resolve_cache_dir(cfg))
    else:
        tokenize = tokenize_reward_pairs if cfg.kind == "reward" else tokenize_policy_pairs

        def featurize(pairs):
            return tokenize(pairs, tokenizer, length)

    if cfg.kind == "kto":
        return _kto_features(cfg, tokenizer, featurize)
    train = featurize(prepare_pairs(cfg.data, cfg.data.train_path, tokenizer, cfg.data.max_train_samples, "train"))
    evaluation: list[dict[str, Any]] = []
    if cfg.data.eval_path:
        evaluation = featurize(
            prepare_pairs(cfg.data, cfg.data.eval_path, tokenizer, cfg.data.max_eval_samples, "eval")
        )
    return train, evaluation


def check_margins_fit_loss(cfg: RunConfig, features: list[dict[str, Any]]) -> None:
    """ODPO takes log(m), so a tie or negative margin would crash mid-training; refuse it up front."""
    if cfg.kind == "policy" and cfg.loss.loss_type == "odpo":
        bad = [f["source_row"] for f in features if f["margin"] <= 0]
        if bad:
            raise ConfigError(
                f"loss_type odpo needs margin > 0 but rows {bad[:10]} have margin <= 0; set data.on_tie: drop"
            )


def train_from_config(cfg: RunConfig, callbacks: list[TrainerCallback] | None = None) -> TrainResult:
    """Load data and model, train (resuming if a checkpoint exists), evaluate, save safetensors."""
    out = Path(cfg.train.output_dir)
    resume = resolve_resume(cfg)
    if resume:
        check_resume_matches(cfg, out)  # before any expensive loading
    torch.manual_seed(cfg.train.seed)
    tokenizer = load_tokenizer(cfg.model, cfg.trust_remote_code)
    train_features, eval_features = load_features(cfg, tokenizer)
    check_margins_fit_loss(cfg, train_features + eval_features)
    trainer = _build_trainer(cfg, tokenizer, train_features, eval_features, callbacks or [])
    if resume:
        logger.info("resuming from %s", resume)
    if trainer.is_world_process_zero():
        save_run_config(cfg, out)
    trainer.train(resume_from_checkpoint=resume)
    trainer.save_model(str(out))
    if uses_frozen_encoder(cfg) and trainer.is_world_process_zero():
        trainer.model.save_config(out)
    metrics: dict[str, float] = {}
    reliability = None
    logits: list[float] = []
    margins: list[float] = []
    if eval_features:
        if trainer.last_eval is None or trainer.last_eval[0] != trainer.state.global_step:
            trainer.evaluate()  # no evaluation at the final step yet (e.g. eval_steps not dividing max_steps)
        final_eval = next(e for e in reversed(trainer.state.log_history) if "eval_loss" in e)
        metrics = {k: v for k, v in final_eval.items() if k.startswith("eval_")}
        _, logits, margins = trainer.last_eval
        if trainer.is_world_process_zero():
            reliability = plot_reliability(
                {cfg.loss.loss_type: pairwise_calibration(logits, margins, cfg.ece_bins)},
                out / "reliability.png",
                title=f"{cfg.kind} model, eval pairs",
            )
    if trainer.is_world_process_zero():
        (out / "eval_metrics.json").write_text(json.dumps(metrics, indent=2))
    history_png = out / "implicit_margin_history.png"
    return TrainResult(out, metrics, reliability, history_png if history_png.exists() else None, logits, margins)
