"""Margins estimated from response similarity when no judge scores exist.

Idea: two near-identical responses cannot differ much in quality, so their preference should be soft
(close to a tie); very different responses can carry a strong preference. We embed both responses
with a sentence encoder (all-MiniLM-L6-v2, mean pooling + L2 normalisation, as sentence-transformers
does) and set m = scale * (1 - cos(e_w, e_l)), which lies in [0, 2 * scale]. The direction of the
preference still comes from the dataset's chosen/rejected labels.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from mmpo.models import default_encoder_path, load_encoder


class SimilarityMarginEstimator:
    """Embeds text with a local sentence encoder and turns cosine distance into margins."""

    def __init__(self, model_path: str | None = None, batch_size: int = 32, max_length: int = 256) -> None:
        self.tokenizer, self.model = load_encoder(model_path or str(default_encoder_path()))
        self.model.eval()
        self.batch_size = batch_size
        self.max_length = max_length

    @torch.no_grad()
    def embed(self, texts: Sequence[str]) -> torch.Tensor:
        """(N, D) unit-norm sentence embeddings."""
        chunks = []
        for start in range(0, len(texts), self.batch_size):
            batch = self.tokenizer(
                list(texts[start : start + self.batch_size]),
                padding=True,
                truncation=True,
                max_length=self.max_length,
                return_tensors="pt",
            )
            hidden = self.model(**batch).last_hidden_state
            mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            chunks.append(F.normalize(pooled, dim=-1))
        return torch.cat(chunks) if chunks else torch.empty(0, 0)

    def margins(self, chosen: Sequence[str], rejected: Sequence[str], scale: float = 1.0) -> list[float]:
        if len(chosen) != len(rejected):
            raise ValueError("chosen and rejected must have the same length")
        e_w, e_l = self.embed(chosen), self.embed(rejected)
        cosine = (e_w * e_l).sum(-1).clamp(-1.0, 1.0)
        return (scale * (1.0 - cosine)).tolist()
