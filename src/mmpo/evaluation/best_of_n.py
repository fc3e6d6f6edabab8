"""Best-of-n selection with a reward model: score every candidate, keep the highest-reward one.

If the rows also carry judge scores for the candidates, the report compares the judge score of the
selected response with a random pick (the mean over candidates) and the oracle (the best candidate),
which is how reward-model quality shows up in downstream use.

``best_of_n_answers`` does it on MT-bench while generating (``mmpo generate --best-of n``): n samples of turn 1,
the reward model keeps one, then n samples of turn 2 *continuing the kept turn 1*, and the reward model keeps one
again; the kept turns form a FastChat answer file that ``mmpo judge mt-bench`` grades, and every candidate with
its reward goes to a ``.candidates.jsonl`` file beside it.
"""

from __future__ import annotations

import json
import math
import time
import uuid
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from mmpo.errors import DataError
from mmpo.features.scoring import RewardPairScorer
from mmpo.records import Pair, get_field, has_field


@dataclass(frozen=True)
class Selection:
    row: int
    selected: int
    response: str
    rewards: list[float]
    judge_scores: list[float] | None


def select_best(rewards: list[float]) -> int:
    return max(range(len(rewards)), key=rewards.__getitem__)


def read_candidates(
    row: Mapping[str, Any], i: int, prompt_column: str, responses_column: str, scores_column: str
) -> tuple[str, list[str], list[float] | None]:
    """(prompt, candidates, judge scores or None), or a DataError naming the row and column."""
    if not has_field(row, prompt_column) or not isinstance(get_field(row, prompt_column), str):
        raise DataError(f"row {i}: column {prompt_column!r} is missing or not text; columns present: {sorted(row)}")
    candidates = row.get(responses_column)
    if not isinstance(candidates, list) or len(candidates) < 2:
        raise DataError(f"row {i}: column {responses_column!r} must be a list of >= 2 responses")
    if any(not isinstance(c, str) or not c.strip() for c in candidates):
        raise DataError(f"row {i}: column {responses_column!r} has an empty or non-text response")
    if not scores_column:
        return get_field(row, prompt_column), candidates, None
    raw = row.get(scores_column)
    if not isinstance(raw, list):
        raise DataError(f"row {i}: column {scores_column!r} is missing or not a list of scores")
    if len(raw) != len(candidates):
        raise DataError(f"row {i}: column {scores_column!r} has {len(raw)} scores for {len(candidates)} candidates")
    scores = []
    for value in raw:
        try:
            score = float(value)
        except (TypeError, ValueError):
            raise DataError(f"row {i}: column {scores_column!r} holds {value!r}, not a number") from None
        if isinstance(value, bool) or not math.isfinite(score):
            raise DataError(f"row {i}: column {scores_column!r} holds {value!r}, not a finite number")
        scores.append(score)
    return get_field(row, prompt_column), candidates, scores


def best_of_n(rows: list[tuple[str, list[str], list[float] | None]], scorer: RewardPairScorer) -> list[Selection]:
    """Pick the highest-reward candidate of every row."""
    selections = []
    for i, (prompt, candidates, scores) in enumerate(rows):
        # Score each candidate against the first one: r_k - r_0 ranks candidates exactly like r_k.
        pairs = [Pair(prompt, c, candidates[0], 0.0, i) for c in candidates]
        rewards = scorer.preference_logits(pairs).tolist()
        best = select_best(rewards)
        selections.append(Selection(i, best, candidates[best], rewards, scores))
    return selections


def judge_summary(selections: list[Selection]) -> dict[str, float]:
    """Mean judge score of the selected, a random (mean) and the best candidate; empty without scores."""
    scored = [s for s in selections if s.judge_scores is not None]
    if not scored:
        return {}
    n = len(scored)
    return {
        "judge_score_selected": sum(s.judge_scores[s.selected] for s in scored) / n,
        "judge_score_random": sum(sum(s.judge_scores) / len(s.judge_scores) for s in scored) / n,
        "judge_score_oracle": sum(max(s.judge_scores) for s in scored) / n,
    }


def _conversation_pair(conversation: list[dict[str, str]], candidate: str, tokenizer, row: int) -> Pair:
    """The reward model's view of a candidate reply: the conversation so far as its prompt, rendered through the
    reward model's chat template (plain "role: content" lines for a frozen-encoder head)."""
    from mmpo.data.rendering import render_prompt_and_response

    prompt, response = render_prompt_and_response(conversation, candidate, tokenizer, row, True)
    return Pair(prompt, response, response, 0.0, row)


def best_of_n_answers(
    generator,
    settings,
    questions,
    model_id: str,
    out: Path,
    n: int,
    scorer: RewardPairScorer,
    temperature: float | None = None,
) -> int:
    """Answer every question not yet in ``out`` with the reward model's pick of ``n`` samples per turn, each turn
    continuing the picked one; returns how many questions were answered. Sample i is drawn after
    ``torch.manual_seed(i)``, at each category's FastChat temperature unless ``temperature`` is given (a greedy
    category gives n equal samples: pass a temperature for best-of-n)."""
    import torch

    from mmpo.evaluation.mt_bench import question_temperature, read_answers

    done = {int(r["question_id"]) for r in read_answers(str(out))} if out.exists() else set()
    pending = [q for q in questions if q.question_id not in done]
    tokenizer = getattr(scorer, "tokenizer", None)
    by_temperature: dict[float, list] = defaultdict(list)
    for question in pending:
        by_temperature[question_temperature(question, temperature)].append(question)
    chunk = max(1, settings.batch_size)
    out.parent.mkdir(parents=True, exist_ok=True)
    candidates_path = out.with_name(out.name.removesuffix(".jsonl") + ".candidates.jsonl")
    with out.open("a", encoding="utf-8") as answers, candidates_path.open("a", encoding="utf-8") as log:
        for t, group in by_temperature.items():
            at_t = replace(settings, temperature=t)
            for start in range(0, len(group), chunk):
                batch = group[start : start + chunk]
                conversations = [[{"role": "user", "content": q.turns[0]}] for q in batch]
                kept: list[list[str]] = [[] for _ in batch]
                turns_log: list[list[dict[str, Any]]] = [[] for _ in batch]
                for turn in range(max(len(q.turns) for q in batch)):
                    active = [k for k, q in enumerate(batch) if len(q.turns) > turn]
                    samples = []
                    for index in range(n):
                        torch.manual_seed(index)
                        samples.append(generator.generate([conversations[k] for k in active], at_t))
                    for j, k in enumerate(active):
                        candidates = [samples[i][j] for i in range(n)]
                        pairs = [_conversation_pair(conversations[k], c, tokenizer, k) for c in candidates]
                        rewards = scorer.rewards(pairs).tolist()
                        best = select_best(rewards)
                        kept[k].append(candidates[best])
                        turns_log[k].append({"turn": turn + 1, "candidates": candidates, "rewards": rewards,
                                             "selected": best})  # fmt: skip
                        conversations[k].append({"role": "assistant", "content": candidates[best]})
                        if len(batch[k].turns) > turn + 1:
                            conversations[k].append({"role": "user", "content": batch[k].turns[turn + 1]})
                for k, question in enumerate(batch):
                    record = {
                        "question_id": question.question_id,
                        "answer_id": uuid.uuid4().hex[:22],
                        "model_id": model_id,
                        "choices": [{"index": 0, "turns": kept[k]}],
                        "tstamp": time.time(),
                    }
                    answers.write(json.dumps(record, ensure_ascii=False) + "\n")
                    log.write(json.dumps({"question_id": question.question_id, "turns": turns_log[k]}) + "\n")
                answers.flush()
                log.flush()
    return len(pending)
