"""``mmpo bon``: best-of-n selection with a reward model over rows of candidate responses."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from mmpo.data.io import load_records
from mmpo.evaluation.best_of_n import best_of_n, judge_summary, read_candidates
from mmpo.features.scoring import RewardPairScorer
from mmpo.file_errors import ensure_writable_folder
from mmpo.models.inspect import require_model_kind


@dataclass(frozen=True)
class BonParams:
    reward_model: str
    data: str
    prompt_column: str = "prompt"
    responses_column: str = "responses"
    scores_column: str = ""
    max_length: int = 512
    batch_size: int = 16
    out: str = ""


def run_bon(params: BonParams) -> dict[str, Any]:
    require_model_kind(params.reward_model, "reward", "--reward-model")
    if params.out:
        ensure_writable_folder(Path(params.out).parent, "--out's folder")
    records = load_records(params.data)
    # every row is checked before the reward model is loaded
    rows = [
        read_candidates(row, i, params.prompt_column, params.responses_column, params.scores_column)
        for i, row in enumerate(records)
    ]
    scorer = RewardPairScorer(params.reward_model, params.max_length, max(1, params.max_length // 2), params.batch_size)
    selections = best_of_n(rows, scorer)
    if params.out:
        Path(params.out).write_text(
            "".join(json.dumps({k: v for k, v in asdict(s).items() if k != "judge_scores"}) + "\n" for s in selections)
        )
    return {"rows": len(selections), **judge_summary(selections)}
