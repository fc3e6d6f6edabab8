"""Scoring tokenised pairs with a trained model: the logits h that every metric is computed from."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from tqdm.auto import tqdm

from mmpo.config import saved_run_config
from mmpo.embeddings import SentenceEmbedder
from mmpo.models import load_reward_model, load_tokenizer
from mmpo.reward_head import is_reward_head_folder, load_reward_head
from mmpo.training.collators import EmbeddingPairCollator, RewardCollator
from mmpo.training.embedding_features import embed_pairs
from mmpo.training.reference import compute_reference_logps
from mmpo.training.reward_trainer import score_sequences
from mmpo.training.tokenize import LengthPolicy, tokenize_reward_pairs


@torch.no_grad()
def reward_pair_logits(
    model: torch.nn.Module,
    features: list[dict[str, Any]],
    collate: Callable[[list[dict[str, Any]]], dict[str, torch.Tensor]],
    batch_size: int = 16,
) -> torch.Tensor:
    """h = r(chosen) - r(rejected) for every pair, (N,); ``collate`` is the trainer's collator."""
    model.eval()
    device = next(model.parameters()).device
    out = []
    for start in tqdm(range(0, len(features), batch_size), desc="scoring pairs", leave=False):
        batch = {k: v.to(device) for k, v in collate(features[start : start + batch_size]).items()}
        chosen, rejected = score_sequences(model, batch).chunk(2)
        out.append((chosen - rejected).cpu())
    return torch.cat(out)


def policy_pair_logits(
    policy: torch.nn.Module,
    reference: torch.nn.Module,
    features: list[dict[str, Any]],
    pad_token_id: int,
    beta: float,
    batch_size: int = 8,
) -> torch.Tensor:
    """h = beta * (log-ratio of chosen - log-ratio of rejected): the policy's implicit reward margin."""
    pc, pr = compute_reference_logps(policy, features, pad_token_id, batch_size)
    rc, rr = compute_reference_logps(reference, features, pad_token_id, batch_size)
    return beta * ((pc - rc) - (pr - rr))


class RewardPairScorer:
    """Scores (prompt, chosen, rejected) text pairs with a trained reward model folder of either kind:
    a sequence-classification model, or a frozen-encoder head (whose encoder is read from the
    mmpo_config.yaml saved beside it)."""

    def __init__(self, model_dir: str, max_length: int = 512, max_prompt_length: int = 256, batch_size: int = 16):
        self.batch_size = batch_size
        self.head_mode = is_reward_head_folder(model_dir)
        if self.head_mode:
            trained = saved_run_config(model_dir)
            self.model = load_reward_head(model_dir)
            self.embedder = SentenceEmbedder(trained["model"], max_length=trained["max_length"])
        else:
            self.tokenizer = load_tokenizer(model_dir)
            self.model = load_reward_model(model_dir)
            self.length = LengthPolicy(max_length, max_prompt_length, "truncate")  # evaluation scores every pair

    def features(self, pairs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        if self.head_mode:
            return embed_pairs(pairs, self.embedder, None)
        return tokenize_reward_pairs(pairs, self.tokenizer, self.length)

    @torch.no_grad()
    def logits(self, pairs: list[dict[str, Any]]) -> torch.Tensor:
        """h = r(chosen) - r(rejected) per pair."""
        collate = EmbeddingPairCollator() if self.head_mode else RewardCollator(self.tokenizer.pad_token_id)
        return reward_pair_logits(self.model, self.features(pairs), collate, self.batch_size)
