"""Judge margins and MT-bench: FastChat's rating parsing, an OpenAI-compatible client with retries, and
`mmpo margins annotate` / `mmpo generate` / `mmpo judge mt-bench` against a real HTTP server process
(`mmpo serve`) serving the bundled SmolLM2, plus the hf: and rm: judges."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from helpers import write_jsonl

from mmpo.cli import main
from mmpo.evaluation.chat_client import ChatEndpoint, ChatRequestFailed
from mmpo.evaluation.judges import parse_rating

# SmolLM2-135M does not write [[n]]; this template and regex make it a (weak, but real) judge.
TEMPLATE = {
    "name": "one-number",
    "system_prompt": "You are a helpful assistant.",
    "prompt_template": "Question: {question}\nAnswer: {answer}\nHow good is this answer on a scale of 1 to 10? "
    "Answer with one number in square brackets, e.g. [8].",
    "rating_regex": r"(\d+(?:\.\d+)?)",
}


def test_ratings_are_read_as_fastchat_does():
    assert parse_rating("Good answer. Rating: [[7]]") == 7.0
    assert parse_rating("Rating: [[8.5]] and later [[2]]") == 8.5
    assert parse_rating("only single brackets [6]") == 6.0
    assert parse_rating("no rating at all, 9 out of 10") is None


class FlakyServer(BaseHTTPRequestHandler):
    """429 (with Retry-After) on the first call, 503 on the second, then an answer; 400 for model 'bad'."""

    calls = 0

    def do_POST(self):  # noqa: N802
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).calls += 1
        if body["model"] == "bad":
            self.send_response(400)
            self.end_headers()
            self.wfile.write(b'{"error": "bad model"}')
            return
        if type(self).calls <= 2:
            self.send_response(429 if type(self).calls == 1 else 503)
            self.send_header("Retry-After", "0.05")
            self.end_headers()
            return
        payload = json.dumps({"choices": [{"message": {"role": "assistant", "content": "Rating: [[9]]"}}]}).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args):
        pass


def test_client_retries_rate_limits_and_server_errors_but_not_bad_requests():
    server = ThreadingHTTPServer(("127.0.0.1", 0), FlakyServer)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/v1"
        endpoint = ChatEndpoint(base_url=url, model="judge", backoff_s=0.01, max_retries=3)
        assert endpoint.complete([{"role": "user", "content": "hi"}]) == "Rating: [[9]]"
        assert FlakyServer.calls == 3
        with pytest.raises(ChatRequestFailed, match="HTTP 400"):
            ChatEndpoint(base_url=url, model="bad", backoff_s=0.01).complete([{"role": "user", "content": "hi"}])
        assert FlakyServer.calls == 4  # a 400 is not retried
    finally:
        server.shutdown()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def smollm2_server():
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "mmpo.cli", "serve", "--model", "bundled:smollm2-135m-instruct", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.time() + 180
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                break
        except OSError:
            assert process.poll() is None, process.stderr.read()[-2000:]
            assert time.time() < deadline, "mmpo serve did not start"
            time.sleep(0.5)
    yield f"http://127.0.0.1:{port}/v1"
    process.terminate()
    process.wait(timeout=30)


@pytest.fixture(scope="module")
def unscored_pairs(tmp_path_factory, shared_data) -> Path:
    rows = [json.loads(line) for line in (shared_data / "ultrafeedback" / "eval_clean.jsonl").open()][:5]
    pairs = [{"prompt": r["prompt"][:200], "chosen": r["chosen"][:200], "rejected": r["rejected"][:200]} for r in rows]
    pairs.append({"prompt": "Say hi.", "chosen": "Hi!", "rejected": "  "})  # an empty response: reported, not judged
    return Path(write_jsonl(tmp_path_factory.mktemp("ann") / "pairs.jsonl", pairs))


def test_annotate_through_an_openai_compatible_server(smollm2_server, unscored_pairs, tmp_path, capsys, caplog):
    template = tmp_path / "template.json"
    template.write_text(json.dumps(TEMPLATE))
    out = tmp_path / "scored.jsonl"
    argv = ["margins", "annotate", "--data", str(unscored_pairs), "--out", str(out), "--judge", "openai:smollm2"]
    argv += ["--base-url", smollm2_server, "--max-new-tokens", "16", "--prompt-template", str(template)]
    assert main(argv) == 0
    captured = capsys.readouterr()
    summary = json.loads(captured.out)
    assert "row 5 not annotated: column 'rejected' is empty" in caplog.text  # reported with its row, not dropped
    written = [json.loads(line) for line in out.read_text().splitlines()]
    assert summary["rows"] == 6 and summary["annotated"] == len(written) >= 1
    assert summary["annotated"] + summary["failed"] == 6 and 5 in summary["failed_rows"]
    for row in written:  # every score is the number the judge wrote
        assert str(int(row["score_chosen"])) in row["judgment_chosen"]
        assert str(int(row["score_rejected"])) in row["judgment_rejected"]
        assert row["judge"] == "openai:smollm2" and row["prompt"]

    # re-running resumes: the rows in OUT are skipped, only failed ones are tried again
    assert main(argv) == 0
    again = json.loads(capsys.readouterr().out)
    assert again["already_annotated"] == len(written) and again["annotated"] + again["failed"] == 6 - len(written)

    # the annotated file is ordinary scored data for margins (and training)
    assert main(["margins", "--data", str(out), "--set", "on_negative=swap"]) == 0
    assert json.loads(capsys.readouterr().out)["pairs"] == len(written) + again["annotated"]


def test_annotate_reports_api_errors_per_row(unscored_pairs, tmp_path, capsys):
    dead = f"http://127.0.0.1:{free_port()}/v1"  # nothing listens there
    argv = ["margins", "annotate", "--data", str(unscored_pairs), "--out", str(tmp_path / "o.jsonl")]
    assert main([*argv, "--judge", "openai:x", "--base-url", dead, "--retries", "1", "--limit", "2"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["annotated"] == 0 and summary["failed_rows"] == [0, 1]
    assert not (tmp_path / "o.jsonl").read_text()


def test_annotate_with_a_local_hf_judge(unscored_pairs, tmp_path, capsys):
    template = tmp_path / "template.json"
    template.write_text(json.dumps(TEMPLATE))
    argv = ["margins", "annotate", "--data", str(unscored_pairs), "--out", str(tmp_path / "hf.jsonl")]
    argv += ["--judge", "hf:bundled:smollm2-135m-instruct", "--prompt-template", str(template)]
    assert main([*argv, "--max-new-tokens", "12", "--limit", "2"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["annotated"] + summary["failed"] == 2


def test_mt_bench_generate_and_judge_in_fastchat_formats(smollm2_server, shared_data, tmp_path, capsys):
    questions = [json.loads(line) for line in (shared_data / "mt_bench" / "question.jsonl").open()]
    picked = [next(q for q in questions if q["category"] == c) for c in ("writing", "math")]
    qfile = write_jsonl(tmp_path / "questions.jsonl", picked)
    answers = tmp_path / "model_answer" / "smollm2.jsonl"
    gen = ["generate", "--model", "bundled:smollm2-135m-instruct", "--questions", qfile, "--out", str(answers)]
    assert main([*gen, "--max-new-tokens", "16", "--model-id", "smollm2"]) == 0
    assert json.loads(capsys.readouterr().out)["answered_now"] == 2
    rows = [json.loads(line) for line in answers.read_text().splitlines()]
    assert {r["question_id"] for r in rows} == {q["question_id"] for q in picked}
    assert all(r["model_id"] == "smollm2" and len(r["choices"][0]["turns"]) == 2 for r in rows)
    assert main(gen) == 0 and json.loads(capsys.readouterr().out)["answered_now"] == 0  # resumable

    shared = ["--questions", qfile, "--references", str(shared_data / "mt_bench" / "reference_answer_gpt-4.jsonl")]
    shared += ["--judge-prompts", str(shared_data / "mt_bench" / "judge_prompts.jsonl")]
    judgments = tmp_path / "model_judgment" / "smollm2_single.jsonl"
    argv = ["judge", "mt-bench", "--answers", str(answers), "--out", str(judgments), *shared]
    assert main([*argv, "--judge", "openai:smollm2", "--base-url", smollm2_server, "--max-new-tokens", "24"]) == 0
    capsys.readouterr()
    graded = [json.loads(line) for line in judgments.read_text().splitlines()]
    assert sorted((g["question_id"], g["turn"]) for g in graded) == sorted(
        (q["question_id"], t) for q in picked for t in (1, 2)
    )
    math_id = picked[1]["question_id"]
    reference = next(
        json.loads(line)
        for line in (shared_data / "mt_bench" / "reference_answer_gpt-4.jsonl").open()
        if json.loads(line)["question_id"] == math_id
    )
    for g in graded:
        assert g["model"] == "smollm2" and g["judge"][0] == "smollm2"
        assert isinstance(g["score"], (int, float)) and (g["score"] == -1 or g["score"] >= 0)
        if g["question_id"] == math_id:  # math is graded against the reference answer, as in FastChat
            assert g["judge"][1] == ("single-math-v1" if g["turn"] == 1 else "single-math-v1-multi-turn")
            assert reference["choices"][0]["turns"][0] in g["user_prompt"]
        else:
            assert g["judge"][1] == ("single-v1" if g["turn"] == 1 else "single-v1-multi-turn")


def test_mt_bench_summary_per_turn_and_category(shared_data):
    from mmpo.evaluation.mt_bench import Question, summarize

    questions = [Question(1, "writing", ["a", "b"]), Question(2, "math", ["c", "d"])]
    rows = [
        {"question_id": 1, "model": "m", "turn": 1, "score": 8},
        {"question_id": 1, "model": "m", "turn": 2, "score": 6},
        {"question_id": 2, "model": "m", "turn": 1, "score": 4},
        {"question_id": 2, "model": "m", "turn": 2, "score": -1},  # unparsed: left out, as FastChat does
    ]
    got = summarize(rows, questions)["m"]
    assert got["mt_bench/turn_1"] == 6.0 and got["mt_bench/turn_2"] == 6.0
    assert got["mt_bench/overall"] == pytest.approx(6.0)
    assert got["mt_bench/category/writing"] == 7.0 and got["mt_bench/category/math"] == 4.0
    assert got["mt_bench/unparsed"] == 1


class RecordingServer(BaseHTTPRequestHandler):
    """Another origin: records the headers of every request that reaches it."""

    seen: list[dict] = []

    def do_POST(self):  # noqa: N802
        type(self).seen.append(dict(self.headers))
        payload = json.dumps({"choices": [{"message": {"role": "assistant", "content": "Rating: [[9]]"}}]}).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST  # noqa: N815  (urllib turns a redirected POST into a GET for 301-303)

    def log_message(self, *args):
        pass


@pytest.mark.parametrize("status", [302, 307, 308])
def test_a_redirect_is_not_followed_and_the_key_stays_home(status, monkeypatch):
    other = ThreadingHTTPServer(("127.0.0.1", 0), RecordingServer)
    target = f"http://127.0.0.1:{other.server_address[1]}/v1/chat/completions"

    class Redirecting(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802
            self.rfile.read(int(self.headers["Content-Length"]))
            self.send_response(status)
            self.send_header("Location", target)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    home = ThreadingHTTPServer(("127.0.0.1", 0), Redirecting)
    for server in (home, other):
        threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("MMPO_TEST_KEY", "sk-secret")
    RecordingServer.seen = []
    try:
        endpoint = ChatEndpoint(
            base_url=f"http://127.0.0.1:{home.server_address[1]}/v1", api_key_env="MMPO_TEST_KEY", max_retries=1
        )
        with pytest.raises(ChatRequestFailed, match=f"HTTP {status}: .* redirects to {target}; redirects are not"):
            endpoint.complete([{"role": "user", "content": "hi"}])
        assert RecordingServer.seen == []  # nothing, and so no Authorization header, reached the other origin
    finally:
        home.shutdown()
        other.shutdown()


def test_annotate_resumes_only_the_same_work_and_never_overwrites_its_input(tmp_path, capsys):
    """OUT.provenance.json says what OUT was made from: the same command resumes; another input file or judge is
    refused in one line (their rows would mix by source_row); OUT may not be the input itself."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), RecordingServer)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    rows = [{"prompt": f"q{i}", "chosen": f"good {i}", "rejected": f"bad {i}"} for i in range(3)]
    data = write_jsonl(tmp_path / "pairs.jsonl", rows)
    other = write_jsonl(tmp_path / "other.jsonl", [{**r, "prompt": r["prompt"] + "?"} for r in rows])
    out = tmp_path / "scored.jsonl"
    url = f"http://127.0.0.1:{server.server_address[1]}/v1"

    def annotate(data_file, judge="openai:judge-a", out_file=out):
        argv = ["margins", "annotate", "--data", data_file, "--out", str(out_file), "--judge", judge]
        code = main([*argv, "--base-url", url, "--retries", "0"])
        captured = capsys.readouterr()
        return code, captured.out, captured.err.strip().splitlines()

    try:
        assert annotate(data)[0] == 0
        record = json.loads((tmp_path / "scored.jsonl.provenance.json").read_text())
        assert record["judge"] == "openai:judge-a" and len(record["data_sha256"]) == 64
        code, stdout, _ = annotate(data)
        assert code == 0 and json.loads(stdout)["already_annotated"] == 3
        code, stdout, err = annotate(other)
        assert (code, stdout, len(err)) == (2, "", 1)
        assert err[0] == f"mmpo: error: {out} was made from {data} with another input file; choose another --out"
        code, _, err = annotate(data, judge="openai:judge-b")
        assert code == 2 and err == [
            f"mmpo: error: {out} was made from {data} with another judge (openai:judge-a then, openai:judge-b now); "
            "choose another --out"
        ]
        assert len(out.read_text().splitlines()) == 3  # nothing appended by the refused runs
        code, _, err = annotate(data, out_file=Path(data))
        assert code == 2 and err == [
            f"mmpo: error: --out {data} is the input file; annotated rows go to a file of their own"
        ]
    finally:
        server.shutdown()
    assert main(["margins", "--data", data, "--out", data]) == 2
    assert capsys.readouterr().err.strip() == (
        f"mmpo: error: --out {data} is one of the input files; write the margins to a file of their own"
    )
