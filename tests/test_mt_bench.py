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

    def do_POST(self):  # noqa: N802
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        prompt = body["messages"][-1]["content"]
        if "FAILME" in prompt and ScriptedJudge.fail:
            self.send_response(500)
            self.end_headers()
            self.wfile.write(b"overloaded")
            return
        reply = "Rating: [[8]]"
        if "LEADING_ZERO" in prompt:
            reply = "Rating: [[07]]"
        elif "HUGE" in prompt:
            reply = "Rating: [[" + "9" * 400 + "]]"
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
