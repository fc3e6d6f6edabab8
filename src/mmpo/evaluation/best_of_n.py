"""Best-of-n selection with a reward model: score every candidate, keep the highest-reward one.

If the rows also carry judge scores for the candidates, the report compares the judge score of the
selected response with a random pick (the mean over candidates) and the oracle (the best candidate),
which is how reward-model quality shows up in downstream use.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import torch

from mmpo.data.io import load_records
from mmpo.errors import DataError
from mmpo.evaluation.scoring import RewardPairScorer


def select_best(rewards: list[float]) -> int:
    return max(range(len(rewards)), key=rewards.__getitem__)


def best_of_n_from_args(args: argparse.Namespace) -> dict[str, Any]:
    rows = load_records(args.data)
    scorer = RewardPairScorer(args.reward_model, args.max_length, max(1, args.max_length // 2), args.batch_size)
    selected, judge_selected, judge_mean, judge_best = [], [], [], []
    for i, row in enumerate(rows):
        candidates = row.get(args.responses_column)
        if not isinstance(candidates, list) or len(candidates) < 2:
            raise DataError(f"row {i}: column {args.responses_column!r} must be a list of >= 2 responses")
        if any(not isinstance(c, str) or not c.strip() for c in candidates):
            raise DataError(f"row {i}: column {args.responses_column!r} has an empty or non-text response")
        prompt = row.get(args.prompt_column)
        if not isinstance(prompt, str):
            raise DataError(f"row {i}: column {args.prompt_column!r} is missing")
        # Score each candidate against the first one: r_k - r_0 ranks candidates exactly like r_k.
        pairs = [
            {"prompt": prompt, "chosen": c, "rejected": candidates[0], "margin": 0.0, "source_row": i, "section": ""}
            for c in candidates
        ]
        rewards = scorer.logits(pairs).tolist()
        best = select_best(rewards)
        selected.append({"row": i, "selected": best, "response": candidates[best], "rewards": rewards})
        if args.scores_column:
            scores = [float(s) for s in row[args.scores_column]]
            judge_selected.append(scores[best])
            judge_mean.append(sum(scores) / len(scores))
            judge_best.append(max(scores))
    report: dict[str, Any] = {"rows": len(selected)}
    if judge_selected:
        report.update(
            {
                "judge_score_selected": float(torch.tensor(judge_selected).mean()),
                "judge_score_random": float(torch.tensor(judge_mean).mean()),
                "judge_score_oracle": float(torch.tensor(judge_best).mean()),
            }
        )
    if args.out:
        Path(args.out).write_text("".join(json.dumps(s) + "\n" for s in selected))
    return report
