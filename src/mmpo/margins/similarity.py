"""Margins estimated from response similarity when no judge scores exist.

Idea: two near-identical responses cannot differ much in quality, so their preference should be soft
(close to a tie); very different responses can carry a strong preference. We embed both responses
with a sentence encoder (all-MiniLM-L6-v2 by default) and set m = scale * (1 - cos(e_w, e_l)), which
lies in [0, 2 * scale]. The direction of the preference still comes from the dataset's labels.
"""

from __future__ import annotations

from collections.abc import Sequence

from mmpo.models.embeddings import SentenceEmbedder
from mmpo.models.loading import BUNDLED_ENCODER


class SimilarityMarginEstimator:
    def __init__(self, model_path: str | None = None, batch_size: int = 32, max_length: int = 256) -> None:
        self.embedder = SentenceEmbedder(model_path or BUNDLED_ENCODER, batch_size, max_length)

    def cosines(self, chosen: Sequence[str], rejected: Sequence[str]) -> list[float]:
        """cos(e_w, e_l) per pair: how alike the two responses read (the MMPO paper's Figure 7 axis)."""
        if len(chosen) != len(rejected):
            raise ValueError("chosen and rejected must have the same length")
        e_w, e_l = self.embedder.embed(chosen), self.embedder.embed(rejected)
        return (e_w * e_l).sum(-1).clamp(-1.0, 1.0).tolist()

    def margins(self, chosen: Sequence[str], rejected: Sequence[str], scale: float = 1.0) -> list[float]:
        return [scale * (1.0 - cosine) for cosine in self.cosines(chosen, rejected)]
