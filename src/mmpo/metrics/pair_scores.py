"""Per-pair results of one evaluation on disk (``pair_scores.jsonl``), so two runs can be compared pair by pair.

A paired comparison needs both models' preference logit on the *same* pairs: each line holds a key naming the
pair (its section or file and its 0-based row), the margin and h. ``mmpo eval --out`` writes the file beside
report.json, training writes ``eval_pair_scores.jsonl`` in the run folder, and ``mmpo compare`` reads either.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import torch

PAIR_SCORES_FILE = "pair_scores.jsonl"
TRAINING_PAIR_SCORES_FILE = "eval_pair_scores.jsonl"


def pair_key(section: str, source_row: int) -> str:
    return f"{section}#{source_row}"


def write_pair_scores(path: Path, keys: Sequence[str], margins: Sequence[float], preference_logits) -> None:
    h = torch.as_tensor(preference_logits, dtype=torch.float64).flatten().tolist()
    if not len(keys) == len(margins) == len(h):
        raise ValueError(f"{len(keys)} keys, {len(margins)} margins and {len(h)} preference logits")
    lines = (
        json.dumps({"pair": k, "margin": float(m), "preference_logit": v})
        for k, m, v in zip(keys, margins, h, strict=True)
    )
    path.write_text("".join(line + "\n" for line in lines))


def read_pair_scores(path: Path) -> dict[str, tuple[float, float]]:
    """pair key -> (margin, preference logit)."""
    scores: dict[str, tuple[float, float]] = {}
    for line in path.read_text().splitlines():
        if line.strip():
            row = json.loads(line)
            scores[row["pair"]] = (float(row["margin"]), float(row["preference_logit"]))
    return scores
