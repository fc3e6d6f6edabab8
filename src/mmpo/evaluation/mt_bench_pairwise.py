"""MT-bench pairwise judging as FastChat's llm_judge does it (``gen_judgment.py --mode pairwise-baseline`` /
``pairwise-all``, ``common.run_judge_pair`` / ``play_a_match_pair``, ``show_result.py``).

Every match is judged twice with the answers swapped (game 1: model_1 is assistant A; game 2: model_2 is), with
``pair-v2`` (turn 1) and ``pair-v2-multi-turn`` (turn 2), or their ``pair-math-v1`` variants with the reference
answers for math, reasoning and coding. The verdict is read as FastChat reads it: "[[A]]", else "[[B]]", else
"[[C]]" (a tie), else "error". Records are FastChat's (``model_judgment/<judge>_pair.jsonl``):
``{question_id, model_1, model_2, g1_winner, g2_winner, judge, g1_user_prompt, g1_judgment, g2_user_prompt,
g2_judgment, turn, tstamp}``. Win rates are ``show_result.py``'s: a row with an "error" game is left out, a tie in
game 1 or two games that disagree count as a tie for both, and ``win_rate_adjusted = (win + tie / 2) / games``.
As in single mode, a request the judge could not answer is not written (the next run asks again) and judging
resumes on (question, turn, model_1, model_2, judge prompt).
"""

from __future__ import annotations

import json
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mmpo.errors import ConfigError, DataError
from mmpo.evaluation.judges import JudgePrompt, JudgeRequest
from mmpo.evaluation.mt_bench import NEED_REF_CATS, AnswerSet, JudgingOutcome, Question, judgment_rows
from mmpo.progress import progress

PAIRWISE_MODES = ("pairwise-baseline", "pairwise-all")
FASTCHAT_BASELINE = "gpt-3.5-turbo"


@dataclass(frozen=True)
class Match:
    question: Question
    model_1: str
    model_2: str
    turns_1: list[str]
    turns_2: list[str]
    turn: int


def pair_prompt_name(question: Question, turn: int) -> str:
    name = "pair-math-v1" if question.category in NEED_REF_CATS else "pair-v2"
    return name + ("-multi-turn" if turn == 2 else "")


def pair_request(
    match: Match, a: list[str], b: list[str], prompts: dict[str, JudgePrompt], refs: dict[int, list[str]]
) -> tuple[str, JudgeRequest]:
    """(prompt name, request) with ``a`` as assistant A, as FastChat's run_judge_pair formats it."""
    question = match.question
    name = pair_prompt_name(question, match.turn)
    if name not in prompts:
        raise ConfigError(f"judge prompts lack {name!r}")
    kwargs: dict[str, str] = {}
    if question.category in NEED_REF_CATS:
        if question.question_id not in refs:
            raise DataError(f"question {question.question_id} ({question.category}) has no reference answer")
        ref = refs[question.question_id]
        kwargs["ref_answer_1"] = ref[0]
        if match.turn == 2:
            kwargs["ref_answer_2"] = ref[1] if len(ref) > 1 else ""
    if match.turn == 2:
        user = prompts[name].prompt_template.format(
            question_1=question.turns[0],
            question_2=question.turns[1],
            answer_a_1=a[0],
            answer_b_1=b[0],
            answer_a_2=a[1],
            answer_b_2=b[1],
            **kwargs,
        )
    else:
        user = prompts[name].prompt_template.format(question=question.turns[0], answer_a=a[0], answer_b=b[0], **kwargs)
    return name, JudgeRequest(prompts[name].system_prompt, user, question.turns[match.turn - 1], "")


def verdict(judgment: str) -> str:
    """FastChat's reading of a pairwise judgment: 'A', 'B', 'tie' or 'error'."""
    if "[[A]]" in judgment:
        return "A"
    if "[[B]]" in judgment:
        return "B"
    if "[[C]]" in judgment:
        return "tie"
    return "error"


def make_matches(
    answer_sets: Sequence[AnswerSet], questions: Sequence[Question], mode: str, baseline: str
) -> list[Match]:
    """FastChat's make_match (every model against ``baseline``) or make_match_all_pairs (every pair of models),
    for turn 1 and, for two-turn questions, turn 2."""
    answers = {s.model: {int(r["question_id"]): r["choices"][0]["turns"] for r in s.rows} for s in answer_sets}
    models = [s.model for s in answer_sets]
    if mode == "pairwise-baseline":
        if baseline not in answers:
            raise ConfigError(
                f"--baseline {baseline!r} has no answer file among --answers (models are named by file: {models})"
            )
        pairs = [(m, baseline) for m in models if m != baseline]
    else:
        pairs = [(models[i], models[j]) for i in range(len(models)) for j in range(i + 1, len(models))]
    if not pairs:
        raise ConfigError(f"{mode} needs at least two models' answer files (got {models})")
    matches = []
    for turn in (1, 2):
        for question in questions:
            if turn == 2 and len(question.turns) != 2:
                continue
            for m1, m2 in pairs:
                qid = question.question_id
                missing = [m for m in (m1, m2) if qid not in answers[m]]
                if missing:
                    raise DataError(f"question {qid}: no answer from {missing} (FastChat's check_data)")
                matches.append(Match(question, m1, m2, answers[m1][qid], answers[m2][qid], turn))
    return matches


def existing_pairs(out: Path, judge_name: str) -> set[tuple[int, int, str, str, str]]:
    """(question, turn, model_1, model_2, prompt) already judged in ``out`` by ``judge_name`` (another judge's
    file is refused, as in single mode)."""
    rows = judgment_rows(out, judge_name)
    return {(int(r["question_id"]), int(r["turn"]), r["model_1"], r["model_2"], r["judge"][1]) for r in rows}


def judge_pairs(
    judge,
    judge_name: str,
    matches: Sequence[Match],
    prompts: dict[str, JudgePrompt],
    refs: dict[int, list[str]],
    out: Path,
    batch: int = 8,
) -> JudgingOutcome:
    """Both games of every match not yet in ``out``, written batch by batch as they are judged."""
    done = existing_pairs(out, judge_name)
    jobs = []
    for match in matches:
        name, game_1 = pair_request(match, match.turns_1, match.turns_2, prompts, refs)
        _, game_2 = pair_request(match, match.turns_2, match.turns_1, prompts, refs)
        key = (match.question.question_id, match.turn, match.model_1, match.model_2, name)
        if key not in done:
            jobs.append((match, name, game_1, game_2))
    out.parent.mkdir(parents=True, exist_ok=True)
    failed: list[str] = []
    written = 0
    with out.open("a", encoding="utf-8") as handle:
        for start in progress(range(0, len(jobs), batch), "MT-bench pairwise judgments"):
            chunk = jobs[start : start + batch]
            replies = judge.judge([request for _, _, g1, g2 in chunk for request in (g1, g2)])
            for k, (match, name, game_1, game_2) in enumerate(chunk):
                reply_1, reply_2 = replies[2 * k], replies[2 * k + 1]
                bad = next((r for r in (reply_1, reply_2) if r.request_failed), None)
                if bad is not None:
                    failed.append(
                        f"question {match.question.question_id}, turn {match.turn}, {match.model_1} vs "
                        f"{match.model_2}: {bad.error}"
                    )
                    continue
                v1, v2 = verdict(reply_1.text), verdict(reply_2.text)
                g1 = {"A": "model_1", "B": "model_2"}.get(v1, v1)
                g2 = {"A": "model_2", "B": "model_1"}.get(v2, v2)
                record = {
                    "question_id": match.question.question_id,
                    "model_1": match.model_1,
                    "model_2": match.model_2,
                    "g1_winner": g1,
                    "g2_winner": g2,
                    "judge": [judge_name, name],
                    "g1_user_prompt": game_1.user,
                    "g1_judgment": reply_1.text,
                    "g2_user_prompt": game_2.user,
                    "g2_judgment": reply_2.text,
                    "turn": match.turn,
                    "tstamp": time.time(),
                }
                handle.write(json.dumps(record, ensure_ascii=False) + "\n")
                written += 1
            handle.flush()
    return JudgingOutcome(written, failed)


def win_rates(rows: Sequence[dict[str, Any]], baseline: str | None = None) -> dict[str, dict[str, float]]:
    """show_result.py's pairwise table: win / loss / tie counts and rates per model (the baseline left out)."""
    counts: dict[str, dict[str, int]] = defaultdict(lambda: {"win": 0, "loss": 0, "tie": 0})
    errors = 0
    for row in rows:
        if row["g1_winner"] == "error" or row["g2_winner"] == "error":
            errors += 1
            continue
        if baseline is not None and baseline not in (row["model_1"], row["model_2"]):
            continue
        if row["g1_winner"] == "tie" or row["g1_winner"] != row["g2_winner"]:
            counts[row["model_1"]]["tie"] += 1
            counts[row["model_2"]]["tie"] += 1
        else:
            winner = row["model_1"] if row["g1_winner"] == "model_1" else row["model_2"]
            loser = row["model_2"] if winner == row["model_1"] else row["model_1"]
            counts[winner]["win"] += 1
            counts[loser]["loss"] += 1
    table: dict[str, dict[str, float]] = {}
    for model, c in sorted(counts.items()):
        if model == baseline:
            continue
        games = c["win"] + c["loss"] + c["tie"]
        table[model] = {
            "mt_bench/pair/win": c["win"],
            "mt_bench/pair/loss": c["loss"],
            "mt_bench/pair/tie": c["tie"],
            "mt_bench/pair/win_rate": c["win"] / games,
            "mt_bench/pair/loss_rate": c["loss"] / games,
            "mt_bench/pair/win_rate_adjusted": (c["win"] + 0.5 * c["tie"]) / games,
        }
    for model in table:
        table[model]["mt_bench/pair/error_rows"] = errors
    return table
