"""Padding tokenised pairs into batches where chosen rows come first and rejected rows second.

One forward pass over the 2B stacked sequences (instead of two passes) halves kernel launches and keeps
batch-norm-free models exactly equivalent; the trainers split the outputs with ``chunk(2)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from mmpo.records import EmbeddingFeatures, PolicyFeatures, RewardFeatures


def pad(sequences: list[list[int]], value: int) -> torch.Tensor:
    width = max(len(s) for s in sequences)
    return torch.tensor([s + [value] * (width - len(s)) for s in sequences], dtype=torch.long)


@dataclass
class RewardCollator:
    pad_token_id: int

    def __call__(self, features: Sequence[RewardFeatures]) -> dict[str, torch.Tensor]:
        sequences = [f["chosen_input_ids"] for f in features] + [f["rejected_input_ids"] for f in features]
        if "chosen_attention_mask" in features[0]:
            masks = [f["chosen_attention_mask"] for f in features] + [f["rejected_attention_mask"] for f in features]
        else:
            masks = [[1] * len(s) for s in sequences]
        batch = {
            "input_ids": pad(sequences, self.pad_token_id),
            "attention_mask": pad(masks, 0),
            "margin": torch.tensor([f["margin"] for f in features], dtype=torch.float32),
        }
        if "chosen_token_type_ids" in features[0]:
            types = [f["chosen_token_type_ids"] for f in features] + [f["rejected_token_type_ids"] for f in features]
            batch["token_type_ids"] = pad(types, 0)
        return batch


@dataclass
class PolicyCollator:
    pad_token_id: int

    def __call__(self, features: Sequence[PolicyFeatures]) -> dict[str, torch.Tensor]:
        sequences = [f["chosen_input_ids"] for f in features] + [f["rejected_input_ids"] for f in features]
        masks = [f["chosen_completion_mask"] for f in features] + [f["rejected_completion_mask"] for f in features]
        batch = {
            "input_ids": pad(sequences, self.pad_token_id),
            "attention_mask": pad([[1] * len(s) for s in sequences], 0),
            "completion_mask": pad(masks, 0),
            "margin": torch.tensor([f["margin"] for f in features], dtype=torch.float32),
        }
        if "ref_chosen_logps" in features[0]:
            batch["ref_chosen_logps"] = torch.tensor([f["ref_chosen_logps"] for f in features], dtype=torch.float32)
            batch["ref_rejected_logps"] = torch.tensor([f["ref_rejected_logps"] for f in features], dtype=torch.float32)
        return batch


@dataclass
class EmbeddingPairCollator:
    """For the frozen-encoder reward head: stacked [chosen; rejected] response embeddings, prompt repeated."""

    def __call__(self, features: Sequence[EmbeddingFeatures]) -> dict[str, torch.Tensor]:
        prompts = torch.tensor([f["prompt_embedding"] for f in features], dtype=torch.float32)
        responses = [f["chosen_embedding"] for f in features] + [f["rejected_embedding"] for f in features]
        return {
            "prompt_embedding": torch.cat([prompts, prompts]),
            "response_embedding": torch.tensor(responses, dtype=torch.float32),
            "margin": torch.tensor([f["margin"] for f in features], dtype=torch.float32),
        }


@dataclass
class PackedPolicyCollator:
    """Padding-free batches: the 2B sequences (chosen first, then rejected) concatenated into one row, with
    position ids restarting at 0 per sequence and ``sequence_index`` saying which sequence each token is in.
    No token is padding, so nothing is computed for padding; real pairs vary a lot in length."""

    pad_token_id: int  # unused: kept so that both policy collators are built alike

    def __call__(self, features: Sequence[PolicyFeatures]) -> dict[str, torch.Tensor]:
        sequences = [f["chosen_input_ids"] for f in features] + [f["rejected_input_ids"] for f in features]
        masks = [f["chosen_completion_mask"] for f in features] + [f["rejected_completion_mask"] for f in features]
        batch = {
            "input_ids": torch.tensor([[t for s in sequences for t in s]], dtype=torch.long),
            "position_ids": torch.tensor([[p for s in sequences for p in range(len(s))]], dtype=torch.long),
            "completion_mask": torch.tensor([[m for mask in masks for m in mask]], dtype=torch.long),
            "sequence_index": torch.tensor([i for i, s in enumerate(sequences) for _ in s], dtype=torch.long),
            "margin": torch.tensor([f["margin"] for f in features], dtype=torch.float32),
        }
        if "ref_chosen_logps" in features[0]:
            batch["ref_chosen_logps"] = torch.tensor([f["ref_chosen_logps"] for f in features], dtype=torch.float32)
            batch["ref_rejected_logps"] = torch.tensor([f["ref_rejected_logps"] for f in features], dtype=torch.float32)
        return batch
