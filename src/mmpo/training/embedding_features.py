"""Features for the frozen-encoder reward head: cached sentence embeddings of prompts and responses."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mmpo.embeddings import SentenceEmbedder


def embed_pairs(
    pairs: list[dict[str, Any]], embedder: SentenceEmbedder, cache_dir: str | Path | None
) -> list[dict[str, Any]]:
    """Each pair -> prompt/chosen/rejected embeddings; every distinct text is embedded once."""
    texts = sorted({t for p in pairs for t in (p["prompt"], p["chosen"], p["rejected"])})
    index = {t: i for i, t in enumerate(texts)}
    table = embedder.cached_embed(texts, cache_dir)
    return [
        {
            "prompt_embedding": table[index[p["prompt"]]].tolist(),
            "chosen_embedding": table[index[p["chosen"]]].tolist(),
            "rejected_embedding": table[index[p["rejected"]]].tolist(),
            "margin": p["margin"],
            "source_row": p["source_row"],
            "section": p["section"],
        }
        for p in pairs
    ]
