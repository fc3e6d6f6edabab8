"""One recipe per model kind: how its pairs are read and featurised, which model and collator it trains,
and which trainer runs it. ``recipe_for`` is the only place that looks at ``cfg.kind``.

Adding a model kind means adding one Recipe subclass here (and its trainer); nothing else branches on it.
"""

from __future__ import annotations

import logging
import random
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path

import datasets
import torch
from transformers import PreTrainedTokenizerBase

from mmpo.config.schema import RunConfig
from mmpo.data.mixture import train_pairs
from mmpo.data.prepare import cap_samples, prepare_pairs
from mmpo.data.unpaired import kto_pseudo_pairs, median_score, scored_samples
from mmpo.distributed import process_state
from mmpo.errors import ConfigError
from mmpo.features.collators import EmbeddingPairCollator, PackedPolicyCollator, PolicyCollator, RewardCollator
from mmpo.features.embedding_features import check_text_lengths, embed_pairs
from mmpo.features.feature_table import build_feature_table, dropped_rows, features_key
from mmpo.features.reference import attach_reference_logps, cached_reference_logps
from mmpo.features.tokenize import LengthPolicy, report_dropped, tokenize_policy_pairs, tokenize_reward_pairs
from mmpo.models.embeddings import SentenceEmbedder
from mmpo.models.loading import LoadOptions, load_causal_lm, load_reward_model, load_tokenizer
from mmpo.models.reward_head import FrozenEncoderRewardHead
from mmpo.models.varlen_attention import prepare_packed_attention
from mmpo.records import Pair
from mmpo.training.base_trainer import PairwiseTrainer
from mmpo.training.kto_trainer import KTOTrainer
from mmpo.training.lora import maybe_wrap_lora
from mmpo.training.policy_trainer import PolicyTrainer
from mmpo.training.reward_trainer import RewardTrainer

logger = logging.getLogger("mmpo")


def resolve_cache_dir(cfg: RunConfig) -> str:
    """Where reference log-probs and embeddings are cached: shared by sibling runs (sweeps, baselines)."""
    return cfg.cache_dir or str(Path(cfg.train.output_dir).parent / "cache")


@dataclass(frozen=True)
class TrainingSetup:
    """What a recipe hands the Trainer: the model to train, its collator, and the features it trains and
    evaluates on (with reference log-probs attached, for policies)."""

    model: torch.nn.Module
    collator: object
    train: datasets.Dataset
    evaluation: datasets.Dataset | None


class Recipe(ABC):
    """setup (tokenizer, pairs, features, model) for one model kind; the Trainer does the rest."""

    trainer_class: type[PairwiseTrainer]

    def __init__(self, cfg: RunConfig) -> None:
        self.cfg = cfg
        self.length = LengthPolicy(cfg.max_length, cfg.max_prompt_length, cfg.overlong)

    def load_options(self) -> LoadOptions:
        cfg = self.cfg
        dtype = getattr(torch, cfg.model_dtype)
        return LoadOptions(cfg.trust_remote_code, dtype, cfg.allow_pickled_weights, cfg.attn_implementation)

    def load_tokenizer(self) -> PreTrainedTokenizerBase:
        return load_tokenizer(self.cfg.model, self.cfg.trust_remote_code)

    def load_pairs(self, tokenizer: PreTrainedTokenizerBase) -> tuple[list[Pair], list[Pair]]:
        """Validated train and eval pairs (eval empty without data.eval_path)."""
        data = self.cfg.data
        train = train_pairs(data, tokenizer, data.max_train_samples)
        evaluation = (
            prepare_pairs(data, data.eval_path, tokenizer, data.max_eval_samples, "eval") if data.eval_path else []
        )
        return train, evaluation

    @abstractmethod
    def featurize(self, pairs: list[Pair], tokenizer: PreTrainedTokenizerBase) -> datasets.Dataset:
        """Model inputs of each pair (token ids or embeddings); over-long pairs follow cfg.overlong."""

    @abstractmethod
    def build_model(
        self, tokenizer: PreTrainedTokenizerBase, train: datasets.Dataset, evaluation: datasets.Dataset | None
    ) -> TrainingSetup:
        """The model to train, its collator and the features as training reads them."""

    def check_features(self, features: datasets.Dataset) -> None:
        """Refuse data the loss cannot train on, before the first step rather than in the middle."""
        return None

    def tokenized_table(
        self, pairs: list[Pair], tokenizer: PreTrainedTokenizerBase, featurizer: str, tokenize
    ) -> datasets.Dataset:
        """``tokenize`` (pairs, tokenizer, length policy) through the cached Arrow table of features_key."""
        key = features_key(pairs, tokenizer, featurizer, self.length)
        table = build_feature_table(
            pairs,
            lambda batch: tokenize(batch, tokenizer, self.length, report=False),
            key,
            resolve_cache_dir(self.cfg),
            self.cfg.data.num_proc,
        )
        report_dropped(dropped_rows(pairs, table), self.length)
        return table


class FrozenEncoderRewardRecipe(Recipe):
    """An MLP reward head on cached sentence embeddings of a frozen encoder (the CPU-sized default)."""

    trainer_class = RewardTrainer

    def featurize(self, pairs, tokenizer):
        kept = check_text_lengths(pairs, tokenizer, self.length)
        embedder = SentenceEmbedder(
            self.cfg.model, max_length=self.cfg.max_length, trust_remote_code=self.cfg.trust_remote_code
        )
        return datasets.Dataset.from_list(embed_pairs(kept, embedder, resolve_cache_dir(self.cfg)))

    def build_model(self, tokenizer, train, evaluation):
        dim = len(train[0]["prompt_embedding"])
        head = FrozenEncoderRewardHead(dim, self.cfg.head_hidden_dim, self.cfg.head_dropout)
        return TrainingSetup(head, EmbeddingPairCollator(), train, evaluation)


class SequenceClassificationRewardRecipe(Recipe):
    """Fine-tuning (or LoRA) of any sequence-classification model with one output, the scalar reward."""

    trainer_class = RewardTrainer

    def featurize(self, pairs, tokenizer):
        return self.tokenized_table(pairs, tokenizer, "reward", tokenize_reward_pairs)

    def build_model(self, tokenizer, train, evaluation):
        cfg = self.cfg
        model = maybe_wrap_lora(load_reward_model(cfg.model, self.load_options()), cfg.lora, "SEQ_CLS")
        return TrainingSetup(model, RewardCollator(tokenizer.pad_token_id), train, evaluation)


class PolicyRecipe(Recipe):
    """A causal LM trained with a DPO-family loss against cached reference log-probs."""

    trainer_class = PolicyTrainer
    packed = False  # set by build_model: padding-free batches, when the config and the model allow them

    def featurize(self, pairs, tokenizer):
        return self.tokenized_table(pairs, tokenizer, "policy", tokenize_policy_pairs)

    def build_model(self, tokenizer, train, evaluation):
        cfg = self.cfg
        model = load_causal_lm(cfg.model, self.load_options())
        self.packed = cfg.padding_free and self.use_packed_rows(model)
        if cfg.loss.needs_reference:
            train = self.with_reference(model, tokenizer.pad_token_id, "train", train)
            if evaluation is not None:
                evaluation = self.with_reference(model, tokenizer.pad_token_id, "eval", evaluation)
        model = maybe_wrap_lora(model, cfg.lora, "CAUSAL_LM")
        if cfg.train.gradient_checkpointing:
            model.config.use_cache = False
        collator = PackedPolicyCollator if self.packed else PolicyCollator
        return TrainingSetup(model, collator(tokenizer.pad_token_id), train, evaluation)

    @staticmethod
    def use_packed_rows(model: torch.nn.Module) -> bool:
        """Padding-free batches where the model can attend within each packed sequence without a dense mask."""
        attention = prepare_packed_attention(model)
        if attention is None:
            implementation = getattr(model.config, "_attn_implementation", None)
            logger.info(
                "padded batches: padding_free needs SDPA or FlashAttention without a sliding window, and this model "
                "uses %s (a packed row would need a dense mask over all its tokens)",
                implementation,
            )
            return False
        logger.info("padding-free batches: attention by %s", attention)
        return True

    def with_reference(
        self, model: torch.nn.Module, pad_token_id: int, name: str, features: datasets.Dataset
    ) -> datasets.Dataset:
        """``features`` with cached-or-computed reference log-probs, scored by the model as it is now (before LoRA
        adapters or any training step, so it *is* the reference)."""
        if any(hasattr(p, "ds_id") for p in model.parameters()):
            raise ConfigError(
                "the model was loaded already partitioned by DeepSpeed ZeRO-3 (zero3_init_flag: true), so "
                "reference log-probs cannot be precomputed; set zero3_init_flag: false in the accelerate "
                "config: ZeRO-3 still shards the model once training starts"
            )
        model.to(process_state().device)
        cfg = self.cfg
        chosen, rejected, hit = cached_reference_logps(
            model,
            features,
            pad_token_id,
            resolve_cache_dir(cfg),
            cfg.train.per_device_eval_batch_size,
            cfg.train.bf16,
            self.packed,
        )
        logger.info("%s reference log-probs %s", name, "from cache" if hit else "computed")
        return attach_reference_logps(features, chosen, rejected)

    def check_features(self, features):
        """ODPO takes log(m), so a tie would crash mid-training; refuse it up front."""
        if self.cfg.loss.loss_type == "odpo":
            bad = [row for row, m in zip(features["source_row"], features["margin"], strict=True) if m <= 0]
            if bad:
                raise ConfigError(
                    f"loss_type odpo needs margin > 0 but rows {bad[:10]} have margin <= 0; "
                    "add data.on_tie=drop to the command (or to the config)"
                )


class KTORecipe(PolicyRecipe):
    """Unpaired (prompt, completion, score) samples as pseudo-pairs with a mismatched KL completion; the
    train median of the scores centres train and eval alike."""

    trainer_class = KTOTrainer

    def load_pairs(self, tokenizer):
        data = self.cfg.data
        seed = data.shuffle_seed
        if data.train_mixture:
            raise ConfigError("data.train_mixture is for pair data; KTO reads one data.train_path")
        train_samples = cap_samples(scored_samples(data, data.train_path), data.max_train_samples, seed)
        median = median_score(train_samples)
        logger.info("kto: %d train samples, median score %g", len(train_samples), median)
        # batches are taken in this order (each batch holds its own KL mismatches): a seeded shuffle, once, so that
        # a file sorted by score does not make batches of one kind
        random.Random(seed).shuffle(train_samples)
        train = kto_pseudo_pairs(
            train_samples, median, tokenizer, data.chat_template, self.cfg.train.per_device_train_batch_size
        )
        evaluation: list[Pair] = []
        if data.eval_path:
            eval_samples = cap_samples(scored_samples(data, data.eval_path), data.max_eval_samples, seed)
            evaluation = kto_pseudo_pairs(
                eval_samples, median, tokenizer, data.chat_template, self.cfg.train.per_device_eval_batch_size
            )
        return train, evaluation

    def check_features(self, features):
        """Every loss term of KTO is defined for any score, ties with the median included."""


def recipe_for(cfg: RunConfig) -> Recipe:
    if cfg.kind == "reward":
        if cfg.reward_head == "frozen_encoder":
            return FrozenEncoderRewardRecipe(cfg)
        return SequenceClassificationRewardRecipe(cfg)
    return {"policy": PolicyRecipe, "kto": KTORecipe}[cfg.kind](cfg)
