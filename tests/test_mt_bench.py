"""MT-bench as FastChat's llm_judge runs it (lm-sys/FastChat @ 0e6d3e4, fastchat/llm_judge), and what mmpo
adds: generation at each category's temperature, question ranges and several choices; judging that never
turns an API error into a silent -1, reads ratings without crashing, resumes per judge and writes FastChat's
file layout. The judge is a real HTTP server on the loopback address whose replies the test chooses."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from helpers import write_jsonl

from mmpo.cli import main

# fastchat/llm_judge/common.py `temperature_config`, copied verbatim
FASTCHAT_TEMPERATURE_CONFIG = {
    "writing": 0.7,
    "roleplay": 0.7,
    "extraction": 0.0,
    "math": 0.0,
    "coding": 0.0,
    "reasoning": 0.0,
    "stem": 0.1,
    "humanities": 0.1,
    "arena-hard-200": 0.0,
}


@pytest.fixture(scope="module")
def mt_bench_questions(shared_data) -> list[dict]:
    return [json.loads(line) for line in (shared_data / "mt_bench" / "question.jsonl").open()]


def test_generation_temperature_per_category_ranges_and_choices(
    mt_bench_questions, tiny_llama_dir, tmp_path, capsys, monkeypatch
):
    from mmpo.evaluation.mt_bench import TEMPERATURE_CONFIG
    from mmpo.models.generation import ChatGenerator

    assert TEMPERATURE_CONFIG == FASTCHAT_TEMPERATURE_CONFIG
    categories = ("writing", "math", "stem", "roleplay", "reasoning")
    picked = [next(q for q in mt_bench_questions if q["category"] == c) for c in categories]
    qfile = write_jsonl(tmp_path / "question.jsonl", picked)
    seen: list[tuple[str, float]] = []
    original = ChatGenerator.generate

    def recording(self, conversations, settings):
        seen.extend((c[0]["content"], settings.temperature) for c in conversations)
        return original(self, conversations, settings)

    monkeypatch.setattr(ChatGenerator, "generate", recording)
    out = tmp_path / "model_answer" / "tiny.jsonl"
    argv = ["generate", "--model", str(tiny_llama_dir), "--questions", qfile, "--out", str(out)]
    argv += ["--max-new-tokens", "3", "--question-begin", "1", "--question-end", "4", "--num-choices", "2"]
    assert main(argv) == 0
    assert json.loads(capsys.readouterr().out)["answered_now"] == 3
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert sorted(r["question_id"] for r in rows) == sorted(q["question_id"] for q in picked[1:4])
    for row in rows:
        assert row["model_id"] == "tiny"  # the answer file's stem, as FastChat names models
        assert [c["index"] for c in row["choices"]] == [0, 1]
        assert all(len(c["turns"]) == 2 for c in row["choices"])
    temperature = {q["turns"][0]: FASTCHAT_TEMPERATURE_CONFIG[q["category"]] for q in picked[1:4]}
    first_turns = [(text, t) for text, t in seen if text in temperature]
    assert first_turns and all(t == temperature[text] for text, t in first_turns)
    seen.clear()
    assert main([*argv[:5], "--out", str(tmp_path / "all07.jsonl"), "--max-new-tokens", "2", "--limit", "1"]) == 0
    assert main([*argv[:5], "--out", str(tmp_path / "t0.jsonl"), "--temperature", "0", "--limit", "2"]) == 0
    assert {t for _, t in seen} == {0.7, 0.0}  # writing at 0.7; then --temperature 0 for every question


class ScriptedJudge(BaseHTTPRequestHandler):
    """An OpenAI-compatible endpoint whose reply depends on a marker in the answer being judged."""

    fail = True

    def reply_for(self, prompt: str) -> str | None:
        """The judge's text, or None for an HTTP 500."""
        if "FAILME" in prompt and ScriptedJudge.fail:
            return None
        if "LEADING_ZERO" in prompt:
            return "Rating: [[07]]"
        if "HUGE" in prompt:
            return "Rating: [[" + "9" * 400 + "]]"
        return "Rating: [[8]]"

    def do_POST(self):  # noqa: N802
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        reply = self.reply_for(body["messages"][-1]["content"])
        if reply is None:
            self.send_response(500)
            self.end_headers()
            self.wfile.write(b"overloaded")
            return
        payload = json.dumps({"choices": [{"message": {"content": reply}}]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args):
        pass


@pytest.fixture()
def scripted_judge():
    server = ThreadingHTTPServer(("127.0.0.1", 0), ScriptedJudge)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    ScriptedJudge.fail = True
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()


def answer_row(question: dict, turns: list[str]) -> dict:
    return {
        "question_id": question["question_id"],
        "answer_id": "x",
        "model_id": "ignored",
        "tstamp": 0.0,
        "choices": [{"index": 0, "turns": turns}],
    }


def test_judging_errors_ratings_resume_and_paths(
    mt_bench_questions, shared_data, scripted_judge, tmp_path, capsys, caplog
):
    writing = [q for q in mt_bench_questions if q["category"] == "writing"][:2]
    qfile = write_jsonl(tmp_path / "question.jsonl", writing)
    bench = tmp_path / "mt"
    good = write_jsonl(
        (bench / "model_answer").mkdir(parents=True) or bench / "model_answer" / "good.jsonl",
        [answer_row(writing[0], ["FAILME", "fine"]), answer_row(writing[1], ["fine", "LEADING_ZERO"])],
    )
    unreadable = write_jsonl(
        bench / "model_answer" / "unreadable.jsonl",
        [answer_row(q, ["HUGE", "LEADING_ZERO"]) for q in writing],
    )
    argv = ["judge", "mt-bench", "--answers", good, unreadable, "--questions", qfile]
    argv += ["--judge-prompts", str(shared_data / "mt_bench" / "judge_prompts.jsonl")]
    argv += ["--judge", "openai:gpt-4", "--base-url", scripted_judge, "--retries", "0"]
    assert main(argv) == 1  # requests failed (turn 1 and turn 2, which shows turn 1 too): reported, not recorded
    summary = json.loads(capsys.readouterr().out)
    first = f"question {writing[0]['question_id']}, turn 1, model good: API error: HTTP 500"
    assert f"2 judge requests failed and were not recorded (run the same command again to retry them): {first}" in (
        caplog.text
    )
    judgments = bench / "model_judgment" / "gpt-4_single.jsonl"  # FastChat's layout, by default
    assert summary["judgments"] == str(judgments) and summary["failed"] == 2
    rows = [json.loads(line) for line in judgments.read_text().splitlines()]
    assert len(rows) == 6  # 8 judgments asked, the failed ones not written
    assert all(r["judge"][0] == "gpt-4" for r in rows)
    scores = {(r["model"], r["question_id"], r["turn"]): r["score"] for r in rows}
    assert scores[("good", writing[1]["question_id"], 1)] == 8
    assert scores[("good", writing[1]["question_id"], 2)] == -1  # [[07]]: unparsable, as no rating
    assert all(scores[("unreadable", q["question_id"], t)] == -1 for q in writing for t in (1, 2))
    models = summary["models"]
    assert models["unreadable"]["mt_bench/unparsed"] == 4 and models["unreadable"]["mt_bench/judgments"] == 0
    assert models["good"]["mt_bench/unparsed"] == 1 and models["good"]["mt_bench/judgments"] == 1

    ScriptedJudge.fail = False  # the API is back: the next run asks only what failed
    assert main(argv) == 0
    again = json.loads(capsys.readouterr().out)
    assert again["judged_now"] == 2 and again["failed"] == 0
    assert len(judgments.read_text().splitlines()) == 8
    assert again["models"]["good"]["mt_bench/judgments"] == 3

    assert main([*argv[:-4], "--judge", "openai:gpt-4o", "--base-url", scripted_judge, "--out", str(judgments)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "holds judgments by 'gpt-4', not 'gpt-4o'" in err[0]


def test_rating_reader_never_crashes():
    from mmpo.evaluation.judges import parse_rating

    assert parse_rating("Rating: [[7]]") == 7 and isinstance(parse_rating("[[7]]"), int)
    assert parse_rating("[[7.5]]") == 7.5 and parse_rating("Rating: [8]") == 8
    for text in ("[[07]]", "[[1e400]]", "[[" + "9" * 400 + "]]", "[[0]]", "[[11]]", "[[10.5]]", "no rating"):
        assert parse_rating(text) is None


class ScriptedPairJudge(ScriptedJudge):
    """Prefers whichever assistant's answer says STRONG; "[[C]]" when neither does; no verdict for NOVERDICT."""

    def reply_for(self, prompt: str) -> str:
        if "NOVERDICT" in prompt:
            return "Both are fine."
        strong, b_starts = prompt.find("STRONG"), prompt.find("Assistant B")
        return "[[C]]" if strong < 0 else ("[[A]]" if strong < b_starts else "[[B]]")


# lm-sys/FastChat @ 0e6d3e4, fastchat/llm_judge/show_result.py display_result_pairwise, copied verbatim (the part
# after reading the file; args.* are parameters here).
def fastchat_pairwise_table(df_all, model_list=None, baseline_model=None):
    import pandas as pd

    df_all = df_all[(df_all["g1_winner"] != "error") & (df_all["g2_winner"] != "error")]
    list_res = []
    for index, row in df_all.iterrows():  # noqa: B007 (verbatim)
        if model_list is not None and row["model_1"] not in model_list:
            continue
        if baseline_model is not None:
            if baseline_model not in [row["model_1"], row["model_2"]]:
                continue
        if row["g1_winner"] == "tie" or row["g1_winner"] != row["g2_winner"]:
            list_res.append({"model": row["model_1"], "win": 0, "loss": 0, "tie": 1})
            list_res.append({"model": row["model_2"], "win": 0, "loss": 0, "tie": 1})
        else:
            if row["g1_winner"] == "model_1":
                winner = row["model_1"]
                loser = row["model_2"]
            else:
                winner = row["model_2"]
                loser = row["model_1"]
            list_res.append({"model": winner, "win": 1, "loss": 0, "tie": 0})
            list_res.append({"model": loser, "win": 0, "loss": 1, "tie": 0})

    df = pd.DataFrame(list_res)
    df = df.groupby(["model"]).sum()

    # remove baseline model
    if baseline_model is not None:
        df = df[df.index != baseline_model]
    # add win rate
    df["win_rate"] = df["win"] / (df["win"] + df["loss"] + df["tie"])
    df["loss_rate"] = df["loss"] / (df["win"] + df["loss"] + df["tie"])
    # each tie counts as 0.5 win + 0.5 loss
    df["win_rate_adjusted"] = (df["win"] + 0.5 * df["tie"]) / (df["win"] + df["loss"] + df["tie"])
    return df


@pytest.mark.parametrize("mode", ["pairwise-baseline", "pairwise-all"])
def test_pairwise_modes_as_fastchat(mt_bench_questions, shared_data, tmp_path, capsys, mode):
    import pandas as pd

    server = ThreadingHTTPServer(("127.0.0.1", 0), ScriptedPairJudge)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    picked = [next(q for q in mt_bench_questions if q["category"] == c) for c in ("writing", "math")]
    qfile = write_jsonl(tmp_path / "question.jsonl", picked)
    folder = tmp_path / "mt" / "model_answer"
    folder.mkdir(parents=True)
    texts = {"strong": ["STRONG one", "STRONG two"], "weak": ["meh", "meh"], "other": ["meh", "NOVERDICT"]}
    files = [write_jsonl(folder / f"{m}.jsonl", [answer_row(q, t) for q in picked]) for m, t in texts.items()]
    argv = ["judge", "mt-bench", "--answers", *files, "--questions", qfile, "--mode", mode, "--baseline", "weak"]
    argv += ["--judge-prompts", str(shared_data / "mt_bench" / "judge_prompts.jsonl")]
    argv += ["--references", str(shared_data / "mt_bench" / "reference_answer_gpt-4.jsonl")]
    try:
        assert main([*argv, "--judge", "openai:gpt-4", "--base-url", url]) == 0
    finally:
        server.shutdown()
    summary = json.loads(capsys.readouterr().out)
    out = tmp_path / "mt" / "model_judgment" / "gpt-4_pair.jsonl"
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    pairs = 2 if mode == "pairwise-baseline" else 3
    assert len(rows) == pairs * 2 * 2  # model pairs x questions x turns
    assert list(rows[0]) == [
        "question_id", "model_1", "model_2", "g1_winner", "g2_winner", "judge", "g1_user_prompt", "g1_judgment",
        "g2_user_prompt", "g2_judgment", "turn", "tstamp",
    ]  # fmt: skip
    math_row = next(r for r in rows if r["question_id"] == picked[1]["question_id"] and r["turn"] == 2)
    assert math_row["judge"] == ["gpt-4", "pair-math-v1-multi-turn"] and "Reference" in math_row["g1_user_prompt"]
    strong_rows = [
        r for r in rows if "strong" in (r["model_1"], r["model_2"]) and "NOVERDICT" not in r["g1_user_prompt"]
    ]
    assert all(r["g1_winner"] == r["g2_winner"] == ("model_1" if r["model_1"] == "strong" else "model_2")
               for r in strong_rows)  # fmt: skip
    assert any(r["g1_winner"] == "error" for r in rows)  # NOVERDICT: no [[A]]/[[B]]/[[C]]
    baseline = "weak" if mode == "pairwise-baseline" else None
    expected = fastchat_pairwise_table(pd.DataFrame(rows), baseline_model=baseline)
    ours = summary["models"]
    assert sorted(ours) == sorted(expected.index)
    for model, row in expected.iterrows():
        for column in ("win", "loss", "tie", "win_rate", "loss_rate", "win_rate_adjusted"):
            assert ours[model][f"mt_bench/pair/{column}"] == pytest.approx(row[column])
    assert ours["strong"]["mt_bench/pair/win_rate"] == 1.0


def test_best_of_n_generation_picks_each_turn_with_the_reward_model(
    mt_bench_questions, shared_data, tiny_llama_dir, smollm2_tokenizer, tmp_path, capsys, monkeypatch
):
    """`mmpo generate --best-of n --reward-model RM`: n samples a turn, the RM's pick kept, turn 2 continuing the
    kept turn 1; the answers are a FastChat file that `mmpo judge mt-bench` grades."""
    from transformers import LlamaConfig, LlamaForSequenceClassification

    from mmpo.data.rendering import render_prompt_and_response
    from mmpo.features.scoring import RewardPairScorer
    from mmpo.models.generation import ChatGenerator
    from mmpo.records import Pair

    rm_dir = tmp_path / "rm"
    config = LlamaConfig(vocab_size=len(smollm2_tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, num_labels=1,
                         pad_token_id=smollm2_tokenizer.pad_token_id)  # fmt: skip
    LlamaForSequenceClassification(config).save_pretrained(rm_dir)
    smollm2_tokenizer.save_pretrained(rm_dir)
    picked = [next(q for q in mt_bench_questions if q["category"] == c) for c in ("writing", "roleplay")]
    qfile = write_jsonl(tmp_path / "question.jsonl", picked)
    conversations: list[list[dict]] = []
    original = ChatGenerator.generate

    def recording(self, batch, settings):
        conversations.extend([list(c) for c in batch])
        return original(self, batch, settings)

    monkeypatch.setattr(ChatGenerator, "generate", recording)
    out = tmp_path / "mt" / "model_answer" / "bon4.jsonl"
    argv = ["generate", "--model", str(tiny_llama_dir), "--questions", qfile, "--out", str(out)]
    argv += ["--best-of", "4", "--reward-model", str(rm_dir), "--max-new-tokens", "6", "--temperature", "1.0"]
    assert main(argv) == 0
    assert json.loads(capsys.readouterr().out)["answered_now"] == 2
    answers = {r["question_id"]: r for r in map(json.loads, out.read_text().splitlines())}
    logs = [json.loads(line) for line in (out.parent / "bon4.candidates.jsonl").read_text().splitlines()]
    scorer = RewardPairScorer(str(rm_dir))
    for log in logs:
        question = next(q for q in picked if q["question_id"] == log["question_id"])
        kept = answers[log["question_id"]]["choices"][0]["turns"]
        first, second = log["turns"]
        assert len(first["candidates"]) == len(second["candidates"]) == 4
        for turn in (first, second):
            assert turn["selected"] == max(range(4), key=turn["rewards"].__getitem__)
        assert kept == [first["candidates"][first["selected"]], second["candidates"][second["selected"]]]
        # the RM scored turn 1 against the question alone, as an independent scoring does
        pairs = []
        for c in first["candidates"]:
            prompt, response = render_prompt_and_response(
                [{"role": "user", "content": question["turns"][0]}], c, scorer.tokenizer, 0, True
            )
            pairs.append(Pair(prompt, response, response, 0.0, 0))
        assert scorer.rewards(pairs).tolist() == pytest.approx(first["rewards"], abs=1e-5)
        # every turn-2 sample continued the kept turn 1
        turn_two = [c for c in conversations if len(c) == 3 and c[0]["content"] == question["turns"][0]]
        assert len(turn_two) == 4 and all(c[1]["content"] == kept[0] for c in turn_two)
    argv = ["judge", "mt-bench", "--answers", str(out), "--questions", qfile, "--judge", f"rm:{rm_dir}"]
    argv += ["--judge-prompts", str(shared_data / "mt_bench" / "judge_prompts.jsonl")]
    assert main(argv) == 0
    graded = json.loads(capsys.readouterr().out)
    assert graded["model"] == "bon4" and graded["mt_bench/judgments"] == 4
