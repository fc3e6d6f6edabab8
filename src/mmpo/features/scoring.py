"""Scoring pairs with a model: the preference logits h that every metric is computed from.

Shared by training (the reward trainer's forward pass) and evaluation (``mmpo eval``, best-of-n, the
reward-model judge), so that both score a pair in exactly the same way.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import torch

from mmpo.config.saved_run import SavedRun
from mmpo.errors import ConfigError
from mmpo.features.collators import EmbeddingPairCollator, RewardCollator
from mmpo.features.embedding_features import embed_pairs
from mmpo.features.logprobs import LogpStats
from mmpo.features.reference import cached_logp_stats, compute_logp_stats
from mmpo.features.rewardbench_tokenize import rewardbench_reward_features
from mmpo.features.tokenize import LengthPolicy, tokenize_reward_pairs
from mmpo.models.embeddings import SentenceEmbedder
from mmpo.models.loading import load_reward_model, load_tokenizer, local_model_folder, model_file
from mmpo.models.reward_head import HEAD_CONFIG, load_reward_head
from mmpo.progress import progress
from mmpo.records import EmbeddingFeatures, Pair, PolicyFeatures, RewardFeatures

_MODEL_INPUTS = ("input_ids", "attention_mask", "token_type_ids", "prompt_embedding", "response_embedding")


def score_sequences(model: torch.nn.Module, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
    """Rewards (N,) of collated sequences: the reward model's scalar output per sequence."""
    return model(**{k: batch[k] for k in _MODEL_INPUTS if k in batch}).logits.squeeze(-1).float()


@torch.no_grad()
def pair_rewards(
    model: torch.nn.Module,
    features: Sequence[RewardFeatures] | Sequence[EmbeddingFeatures],
    collate: Callable[[Sequence], dict[str, torch.Tensor]],
    batch_size: int = 16,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(r(chosen), r(rejected)) for every pair, each (N,); ``collate`` is the trainer's collator."""
    model.eval()
    device = next(model.parameters()).device
    chosen_all, rejected_all = [torch.empty(0)], [torch.empty(0)]
    for start in progress(range(0, len(features), batch_size), "scoring pairs"):
        batch = {k: v.to(device) for k, v in collate(features[start : start + batch_size]).items()}
        chosen, rejected = score_sequences(model, batch).chunk(2)
        chosen_all.append(chosen.cpu())
        rejected_all.append(rejected.cpu())
    return torch.cat(chosen_all), torch.cat(rejected_all)


def reward_preference_logits(
    model: torch.nn.Module,
    features: Sequence[RewardFeatures] | Sequence[EmbeddingFeatures],
    collate: Callable[[Sequence], dict[str, torch.Tensor]],
    batch_size: int = 16,
) -> torch.Tensor:
    """h = r(chosen) - r(rejected) for every pair, (N,)."""
    chosen, rejected = pair_rewards(model, features, collate, batch_size)
    return chosen - rejected


def policy_rewards(
    policy: torch.nn.Module,
    reference: torch.nn.Module | None,
    features: Sequence[PolicyFeatures],
    pad_token_id: int,
    batch_size: int = 8,
    cache_dir: str | None = None,
    padding_free: bool = True,
    reference_free_reduction: str = "sum",
) -> tuple[torch.Tensor, torch.Tensor]:
    """The implicit rewards (chosen, rejected) of every pair, float64 and without beta, as reward-bench's
    ``DPOInference.inference_step`` returns them: log pi(y) - log pi_ref(y) summed over the response, or with
    no reference log pi(y) reduced by ``reference_free_reduction`` ('sum', 'avg' or 'norm').

    With a ``cache_dir`` the log-probs of each model are cached like the training reference pass (keyed by
    weights and tokens), so scoring a second policy against the same reference does not redo the reference.
    Batches are packed like training's where the model can attend per sequence (``padding_free``)."""

    def stats(model: torch.nn.Module) -> tuple[LogpStats, LogpStats]:
        if cache_dir:
            chosen, rejected, _ = cached_logp_stats(
                model, features, pad_token_id, cache_dir, batch_size, padding_free=padding_free
            )
            return chosen, rejected
        return compute_logp_stats(model, features, pad_token_id, batch_size, padding_free=padding_free)

    pc, pr = stats(policy)
    if reference is None:
        return pc.reduce(reference_free_reduction), pr.reduce(reference_free_reduction)
    rc, rr = stats(reference)
    return pc.total - rc.total, pr.total - rr.total


def policy_preference_logits(
    policy: torch.nn.Module,
    reference: torch.nn.Module | None,
    features: Sequence[PolicyFeatures],
    pad_token_id: int,
    beta: float,
    batch_size: int = 8,
    cache_dir: str | None = None,
    padding_free: bool = True,
) -> torch.Tensor:
    """h = beta * (log-ratio of chosen - log-ratio of rejected): the policy's implicit reward difference, in
    float64. Without a reference (SimPO-style, reference-free) h = beta * (log pi(y_w) - log pi(y_l))."""
    chosen, rejected = policy_rewards(policy, reference, features, pad_token_id, batch_size, cache_dir, padding_free)
    return beta * (chosen - rejected)


class RewardPairScorer:
    """Scores (prompt, chosen, rejected) text pairs with a trained reward model folder of either kind:
    a sequence-classification model, or a frozen-encoder head (whose encoder is read from the
    mmpo_config.yaml saved beside it; it embeds at ``encoder_max_length`` tokens, or as trained when None).
    ``tokenization``: 'mmpo' encodes (prompt, response) as the tokenizer's
    text pair; 'rewardbench' tokenises the whole conversation once, as reward-bench's pipeline does."""

    def __init__(
        self,
        model_dir: str,
        max_length: int = 512,
        max_prompt_length: int = 256,
        batch_size: int = 16,
        cache_dir: str | None = None,
        tokenization: str = "mmpo",
        encoder_max_length: int | None = None,
    ) -> None:
        self.batch_size = batch_size
        self.tokenization = tokenization
        self.cache_dir = cache_dir
        self.head_mode = model_file(model_dir, HEAD_CONFIG) is not None
        if self.head_mode:
            folder = local_model_folder(model_dir)
            trained = SavedRun.read(folder)
            if trained is None:
                raise ConfigError(f"{model_dir}: a reward head without its mmpo_config.yaml (which encoder?)")
            self.model = load_reward_head(folder)
            self.embedder = SentenceEmbedder(
                trained.config.model, max_length=encoder_max_length or trained.config.max_length
            )
            positions = getattr(self.embedder.model.config, "max_position_embeddings", None)
            if positions is not None and self.embedder.max_length > positions:
                raise ConfigError(
                    f"--max-length {self.embedder.max_length}: the reward head's encoder {trained.config.model} reads "
                    f"at most {positions} tokens (it was trained at {trained.config.max_length})"
                )
        else:
            self.tokenizer = load_tokenizer(model_dir)
            self.model = load_reward_model(model_dir)
            self.length = LengthPolicy(max_length, max_prompt_length, "truncate")  # evaluation scores every pair

    def features(self, pairs: list[Pair]) -> list[RewardFeatures] | list[EmbeddingFeatures]:
        if self.head_mode:
            return embed_pairs(pairs, self.embedder, self.cache_dir)
        if self.tokenization == "rewardbench":
            return rewardbench_reward_features(pairs, self.tokenizer, self.length.max_length)
        return tokenize_reward_pairs(pairs, self.tokenizer, self.length)

    def _collator(self):
        return EmbeddingPairCollator() if self.head_mode else RewardCollator(self.tokenizer.pad_token_id)

    def preference_logits(self, pairs: list[Pair]) -> torch.Tensor:
        """h = r(chosen) - r(rejected) per pair."""
        return reward_preference_logits(self.model, self.features(pairs), self._collator(), self.batch_size)

    def pair_rewards(self, pairs: list[Pair]) -> tuple[torch.Tensor, torch.Tensor]:
        """(r(prompt, chosen), r(prompt, rejected)) per pair."""
        return pair_rewards(self.model, self.features(pairs), self._collator(), self.batch_size)

    def rewards(self, pairs: list[Pair]) -> torch.Tensor:
        """r(prompt, chosen) per pair: the scalar reward, for judging single responses."""
        return pair_rewards(self.model, self.features(pairs), self._collator(), self.batch_size)[0]
