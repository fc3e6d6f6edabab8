"""Sentence embeddings from a local encoder (mean pooling + L2 norm, as sentence-transformers does),
with an on-disk cache keyed per text, so that a frozen encoder runs once per text across runs, seeds, baselines
and evaluations."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn.functional as F

from mmpo.models.loading import BUNDLED_ENCODER, load_encoder, resolve_model
from mmpo.progress import progress
from mmpo.tensor_cache import load_cached, save_atomically

logger = logging.getLogger("mmpo")


class SentenceEmbedder:
    def __init__(
        self, model: str = BUNDLED_ENCODER, batch_size: int = 32, max_length: int = 256, trust_remote_code: bool = False
    ) -> None:
        self.model_name = model
        self.tokenizer, self.model = load_encoder(model, trust_remote_code)
        self.model.eval()
        self.batch_size = batch_size
        self.max_length = max_length

    @torch.no_grad()
    def embed(self, texts: Sequence[str], show_progress: bool = False) -> torch.Tensor:
        """(N, D) unit-norm embeddings, in the order of ``texts``.

        Texts are batched in order of length so that a batch pads to similar lengths (several times
        less padding on real data than arbitrary order); results are put back in input order."""
        if not texts:
            return torch.empty(0, 0)
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        pooled_in_order = []
        starts = range(0, len(order), self.batch_size)
        for start in progress(starts, "embedding", enabled=show_progress):
            batch_ids = order[start : start + self.batch_size]
            batch = self.tokenizer(
                [texts[i] for i in batch_ids],
                padding=True,
                truncation=True,
                max_length=self.max_length,
                return_tensors="pt",
            )
            hidden = self.model(**batch).last_hidden_state
            mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            pooled_in_order.append(F.normalize(pooled, dim=-1))
        stacked = torch.cat(pooled_in_order)
        result = torch.empty_like(stacked)
        result[torch.tensor(order)] = stacked
        return result

    def cached_embed(self, texts: Sequence[str], cache_dir: str | Path | None) -> torch.Tensor:
        """embed() through a per-text cache: a folder per (encoder, max_length) holding shards of
        (text digests, embeddings). Only texts no shard has are embedded, and they become one new shard, so adding
        a file to an evaluation embeds that file alone, and training and evaluation share what they embedded."""
        if not cache_dir:
            return self.embed(texts, show_progress=True)
        key = hashlib.sha256(f"{resolve_model(self.model_name)[0]}|{self.max_length}".encode()).hexdigest()[:24]
        folder = Path(cache_dir) / f"embeddings-{key}"
        digests = [hashlib.sha256(text.encode()).digest() for text in texts]
        known = _read_shards(folder)
        missing = sorted({d: i for i, d in enumerate(digests) if d not in known}.values())
        if missing:
            fresh = self.embed([texts[i] for i in missing], show_progress=True)
            new_digests = [digests[i] for i in missing]
            shard = hashlib.sha256(b"".join(new_digests)).hexdigest()[:24]
            save_atomically(
                folder / f"{shard}.safetensors",
                {"digests": torch.tensor([list(d) for d in new_digests], dtype=torch.uint8), "embeddings": fresh},
            )
            known.update(zip(new_digests, fresh))
        if len(missing) < len(texts):
            logger.info("embeddings: %d of %d texts from the cache %s", len(texts) - len(missing), len(texts), folder)
        return torch.stack([known[d] for d in digests]) if texts else torch.empty(0, 0)


def _read_shards(folder: Path) -> dict[bytes, torch.Tensor]:
    """Digest -> embedding of every text cached in ``folder``."""
    table: dict[bytes, torch.Tensor] = {}
    for path in sorted(folder.glob("*.safetensors")) if folder.is_dir() else []:
        shard = load_cached(path, ("digests", "embeddings"))
        if shard is None:  # unreadable: removed, its texts are embedded again
            continue
        for digest, row in zip(shard["digests"].tolist(), shard["embeddings"], strict=True):
            table[bytes(digest)] = row
    return table
