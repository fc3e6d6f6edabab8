"""Small real-text training tasks whose answer is known, so that tests can demand learning."""

from __future__ import annotations

import json
from pathlib import Path


def write_jsonl(path: Path, rows: list[dict]) -> str:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


def on_topic_pairs(shared_data: Path, start: int, count: int) -> list[dict]:
    """UltraFeedback prompts whose own chosen answer beats the answer to a different prompt.

    Learnable from prompt/response interaction alone, so held-out accuracy must rise far above 50%."""
    rows = [json.loads(line) for line in (shared_data / "ultrafeedback" / "train_clean.jsonl").open()]
    rows = [r for r in rows if r["chosen"].strip() and r["rejected"].strip()][start : start + count + 1]
    pairs = []
    for i in range(count):
        gap = 1.0 + (i % 4)  # varied margins so soft targets differ between pairs
        pairs.append(
            {
                "prompt": rows[i]["prompt"],
                "chosen": rows[i]["chosen"],
                "rejected": rows[i + 1]["chosen"],
                "score_chosen": 5.0 + gap,
                "score_rejected": 5.0,
            }
        )
    return pairs


def yes_no_pairs(count: int, offset: int = 0) -> list[dict]:
    """Toy policy task: the chosen answer always says 'yes', the rejected one 'no'."""
    return [
        {
            "prompt": f"Is {i + offset} a number? Answer:",
            "chosen": " yes, it is.",
            "rejected": " no, it is not.",
            "score_chosen": 9.0,
            "score_rejected": 9.0 - 1.0 - (i % 3),
        }
        for i in range(count)
    ]
