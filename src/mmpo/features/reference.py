"""Precomputing the reference model's log-probs once, with an on-disk cache.

The reference model is frozen, so its log-probs of every (prompt, response) are a pure function of
(weights, token ids). We compute them once before training, store them as safetensors keyed by a
fingerprint of both, and reuse them across epochs, resumed runs and a whole gamma/beta sweep: the
loss hyper-parameters are deliberately *not* part of the key.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Sequence
from pathlib import Path

import datasets
import torch
from accelerate.utils import gather_object

from mmpo.distributed import decide_on_main, is_main_process, process_state
from mmpo.features.collators import PackedPolicyCollator, PolicyCollator
from mmpo.features.logprobs import LogpStats, batch_logp_stats
from mmpo.models.varlen_attention import prepare_packed_attention
from mmpo.progress import progress
from mmpo.records import PolicyFeatures
from mmpo.tensor_cache import load_cached, save_atomically

logger = logging.getLogger("mmpo")

# Policy features as training holds them (a memory-mapped table, features/feature_table.py) or as a list of rows.
FeatureRows = Sequence[PolicyFeatures] | datasets.Dataset
_TOKEN_COLUMNS = ("chosen_input_ids", "chosen_completion_mask", "rejected_input_ids", "rejected_completion_mask")


def model_fingerprint(model: torch.nn.Module) -> str:
    """Cheap content hash of the weights: per-tensor name, shape, sum and abs-sum in float64."""
    digest = hashlib.sha256()
    with torch.no_grad():
        for name, param in model.state_dict().items():
            t = param.detach().double()
            digest.update(f"{name}:{tuple(t.shape)}:{t.sum().item():.10e}:{t.abs().sum().item():.10e}".encode())
    return digest.hexdigest()[:24]


def features_fingerprint(features: FeatureRows) -> str:
    """Hash of every pair's token ids and completion masks (the same for a table and for its rows as a list);
    a table is read a batch at a time, so hashing never holds all its ids as Python lists."""
    digest = hashlib.sha256()
    for row in _token_rows(features):
        digest.update(json.dumps(row).encode())
    return digest.hexdigest()[:24]


def _token_rows(features: FeatureRows):
    if isinstance(features, datasets.Dataset):
        for batch in features.select_columns(list(_TOKEN_COLUMNS)).iter(batch_size=1000):
            yield from zip(*(batch[name] for name in _TOKEN_COLUMNS), strict=True)
        return
    for f in features:
        yield [f[name] for name in _TOKEN_COLUMNS]


@torch.no_grad()
def compute_logp_stats(
    model: torch.nn.Module,
    features: FeatureRows,
    pad_token_id: int,
    batch_size: int = 8,
    bf16: bool = False,
    padding_free: bool = False,
) -> tuple[LogpStats, LogpStats]:
    """LogpStats (float64) of the chosen and of the rejected completions under ``model``; each process scores
    its share and the shares are gathered once."""
    state = process_state()
    packed = padding_free and prepare_packed_attention(model) is not None
    collate = (PackedPolicyCollator if packed else PolicyCollator)(pad_token_id)
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    indices = list(range(len(features)))
    results: list[tuple[int, tuple[float, ...], tuple[float, ...]]] = []
    with state.split_between_processes(indices) as mine:
        batches = [mine[i : i + batch_size] for i in range(0, len(mine), batch_size)]
        for batch_ids in progress(batches, "reference log-probs", enabled=state.is_local_main_process):
            batch = collate([features[i] for i in batch_ids])
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
                stats = batch_logp_stats(model, {k: v.to(device) for k, v in batch.items()})
            rows = torch.stack([stats.total, stats.tokens, stats.squares], dim=1).cpu().tolist()
            n = len(batch_ids)
            results.extend(zip(batch_ids, map(tuple, rows[:n]), map(tuple, rows[n:]), strict=True))
    results = sorted(gather_object(results)) if state.num_processes > 1 else results
    model.train(was_training)

    def side(k: int) -> LogpStats:
        values = torch.tensor([r[k] for r in results], dtype=torch.float64).reshape(-1, 3)
        return LogpStats(values[:, 0], values[:, 1], values[:, 2])

    return side(1), side(2)


def compute_reference_logps(
    model: torch.nn.Module,
    features: FeatureRows,
    pad_token_id: int,
    batch_size: int = 8,
    bf16: bool = False,
    padding_free: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(chosen, rejected) summed completion log-probs (float64) under ``model``."""
    chosen, rejected = compute_logp_stats(model, features, pad_token_id, batch_size, bf16, padding_free)
    return chosen.total, rejected.total


def cached_logp_stats(
    model: torch.nn.Module,
    features: FeatureRows,
    pad_token_id: int,
    cache_dir: str | Path,
    batch_size: int = 8,
    bf16: bool = False,
    padding_free: bool = False,
) -> tuple[LogpStats, LogpStats, bool]:
    """Like compute_logp_stats, through the cache. Returns (chosen, rejected, was_cached)."""

    def cache_path() -> Path:
        # bf16v2: since rotary runs in bf16 under autocast (models/rotary_dtype.py), a policy's bf16 log-probs differ
        # in rounding from those cached before, and its first step must start from its own reference
        key = f"{model_fingerprint(model)}-{features_fingerprint(features)}-{'bf16v2' if bf16 else 'fp32'}"
        return Path(cache_dir) / f"logp_stats-{key}.safetensors"

    # the main process reads the cache and sends it: every rank takes the same branch (a rank that found the file
    # while another did not would wait forever in the other's gather), and ranks on other nodes need no copy
    path = cache_path() if is_main_process() else None
    cached = decide_on_main(lambda: load_cached(path, ("chosen", "rejected")))
    if cached is not None:
        logger.info("reference log-probs: reusing cache %s", path)
        return LogpStats(*cached["chosen"]), LogpStats(*cached["rejected"]), True
    chosen, rejected = compute_logp_stats(model, features, pad_token_id, batch_size, bf16, padding_free)
    if is_main_process():
        save_atomically(
            path,
            {
                name: torch.stack([s.total, s.tokens, s.squares])
                for name, s in (("chosen", chosen), ("rejected", rejected))
            },
        )
        logger.info("reference log-probs: cached at %s", path)
    return chosen, rejected, False


def cached_reference_logps(
    model: torch.nn.Module,
    features: FeatureRows,
    pad_token_id: int,
    cache_dir: str | Path,
    batch_size: int = 8,
    bf16: bool = False,
    padding_free: bool = False,
) -> tuple[torch.Tensor, torch.Tensor, bool]:
    """(chosen, rejected, was_cached): the summed log-probs of cached_logp_stats."""
    chosen, rejected, hit = cached_logp_stats(model, features, pad_token_id, cache_dir, batch_size, bf16, padding_free)
    return chosen.total, rejected.total, hit


def attach_reference_logps(features: FeatureRows, chosen: torch.Tensor, rejected: torch.Tensor) -> FeatureRows:
    """``features`` with ``ref_chosen_logps`` / ``ref_rejected_logps``: two new columns of a table, or two keys
    added to each row of a list."""
    if len(features) != len(chosen):
        raise ValueError(f"{len(chosen)} reference log-probs for {len(features)} pairs")
    if isinstance(features, datasets.Dataset):
        for name, values in (("ref_chosen_logps", chosen), ("ref_rejected_logps", rejected)):
            if name in features.column_names:
                features = features.remove_columns(name)
            features = features.add_column(name, values.tolist())
        return features
    for feature, c, r in zip(features, chosen.tolist(), rejected.tolist(), strict=True):
        feature["ref_chosen_logps"] = c
        feature["ref_rejected_logps"] = r
    return features
