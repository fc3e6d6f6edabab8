"""The per-example files of a RewardBench evaluation.

* ``results.jsonl``: one line per pair (id, subset, score_chosen, score_rejected, correct), RewardBench and
  Prior Sets alike, for error analysis and significance tests;
* reward-bench's own two files, laid out as its scripts save them locally (``save_to_hub`` with
  ``--do_not_save`` in ``scripts/run_rm.py`` / ``scripts/run_dpo.py``): ``eval-set/<model>.json`` with the
  accuracy of every subset, and ``eval-set-scores/<model>.json`` with every pair's text and scores as columns
  (``pref-sets/`` and ``pref-sets-scores/`` for the Prior Sets). A reference-free policy's names end in
  ``_ref_free`` as there. Scores are the reward model's rewards, or the policy's implicit rewards without beta.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # imported for types only: rewardbench imports this module
    from mmpo.evaluation.pair_eval import PairScores, ScoringSettings
    from mmpo.evaluation.rewardbench import BenchmarkPairs


def _correct(scores: PairScores) -> list[int]:
    return [int(c > r) for c, r in zip(scores.chosen.tolist(), scores.rejected.tolist(), strict=True)]


def write_results_jsonl(path: Path, parts: Sequence[tuple[BenchmarkPairs, PairScores]]) -> None:
    with path.open("w") as handle:
        for data, scores in parts:
            rows = zip(data.pairs, data.ids, scores.chosen.tolist(), scores.rejected.tolist(), strict=True)
            for pair, pair_id, chosen, rejected in rows:
                record = {
                    "id": pair_id,
                    "subset": pair.section,
                    "score_chosen": chosen,
                    "score_rejected": rejected,
                    "correct": chosen > rejected,
                }
                handle.write(json.dumps(record) + "\n")


def _model_type(settings: ScoringSettings) -> str:
    if settings.kind == "reward":
        return "Seq. Classifier"
    return "DPO Ref. Free" if settings.reference_free else "DPO"


def _dump(path: Path, record: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=4, sort_keys=True))  # as reward-bench's save_to_hub


def write_rewardbench_files(
    folder: Path,
    settings: ScoringSettings,
    sub_path: str,
    data: BenchmarkPairs,
    scores: PairScores,
) -> None:
    """``<sub_path>/<model>.json`` and ``<sub_path>-scores/<model>.json`` under ``folder``."""
    name = Path(settings.model).name + ("_ref_free" if settings.kind == "policy" and settings.reference_free else "")
    correct = _correct(scores)
    model_type = _model_type(settings)
    grouped: dict[str, Any] = {"model": settings.model, "model_type": model_type, "chat_template": "tokenizer"}
    if settings.kind == "policy":
        grouped["ref_model"] = None if settings.reference_free else settings.ref_model
    subsets = [p.section for p in data.pairs]
    for subset in sorted(set(subsets)):
        results = [c for c, s in zip(correct, subsets, strict=True) if s == subset]
        grouped[subset] = sum(results) / len(results)
    _dump(folder / sub_path / f"{name}.json", grouped)
    columns: dict[str, Any] = {
        "prompt": [p.prompt for p in data.pairs],
        "text_chosen": [p.prompt + p.chosen for p in data.pairs],
        "text_rejected": [p.prompt + p.rejected for p in data.pairs],
        "id": list(data.ids),
        "results": correct,
        "subset": subsets,
        "scores_chosen": scores.chosen.tolist(),
        "scores_rejected": scores.rejected.tolist(),
        "model": settings.model,
        "model_type": model_type,
        "chat_template": "tokenizer",
    }
    _dump(folder / f"{sub_path}-scores" / f"{name}.json", columns)
