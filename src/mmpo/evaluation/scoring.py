"""Scoring tokenised pairs with a trained model: the logits h that every metric is computed from."""

from __future__ import annotations

from typing import Any

import torch
from tqdm.auto import tqdm

from mmpo.training.collators import RewardCollator
from mmpo.training.reference import compute_reference_logps
from mmpo.training.reward_trainer import score_sequences


@torch.no_grad()
def reward_pair_logits(
    model: torch.nn.Module, features: list[dict[str, Any]], pad_token_id: int, batch_size: int = 16
) -> torch.Tensor:
    """h = r(chosen) - r(rejected) for every pair, (N,)."""
    model.eval()
    device = next(model.parameters()).device
    collate = RewardCollator(pad_token_id)
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
