"""`mmpo serve` survives its clients: every malformed body is a 400 naming the field, a body over the limit a 413,
max_tokens is capped at the server's limit, a reply stops at the time limit or when its client hangs up, health
is answered while a reply is generating, a full queue answers 503, and a key is asked for when one is set.

The server runs in this process on a free port, around the bundled SmolLM2 (a real model, generating)."""

from __future__ import annotations

import http.client
import json
import logging
import socket
import threading
import time
from contextlib import contextmanager
from dataclasses import replace

import pytest

from mmpo.cli import main
from mmpo.commands.serve import ServeParams, make_server
from mmpo.models.generation import ChatGenerator
from mmpo.serving.handler import ServerLimits

LONG = [{"role": "user", "content": "Write a very long essay about the history of Rome, with many chapters."}]


@pytest.fixture(scope="module")
def generator() -> ChatGenerator:
    return ChatGenerator("bundled:smollm2-135m-instruct")


@contextmanager
def serving(generator: ChatGenerator, **limits):
    params = ServeParams("smollm2", port=0, limits=replace(ServerLimits(max_tokens=16), **limits))
    server = make_server(generator, params)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


def post(port: int, body, headers: dict | None = None, timeout: float = 120) -> tuple[int, dict]:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    connection.request("POST", "/v1/chat/completions", raw, {"Content-Type": "application/json", **(headers or {})})
    response = connection.getresponse()
    payload = json.loads(response.read())
    connection.close()
    return response.status, payload | {"_headers": dict(response.getheaders())}


def get(port: int, path: str, headers: dict | None = None) -> tuple[int, dict]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    connection.request("GET", path, headers=headers or {})
    response = connection.getresponse()
    payload = json.loads(response.read())
    connection.close()
    return response.status, payload


MALFORMED = [
    ([1, 2], "JSON object"),
    ({}, "'messages' must be a non-empty list"),
    ({"messages": []}, "'messages' must be a non-empty list"),
    ({"messages": "hi"}, "'messages' must be a non-empty list"),
    ({"messages": ["hi"]}, "messages[0] must be an object"),
    ({"messages": [{"content": "hi"}]}, "messages[0] has no 'role'"),
    ({"messages": [{"role": "robot", "content": "hi"}]}, "messages[0].role 'robot' is not one of"),
    ({"messages": [{"role": "user", "content": 3}]}, "messages[0].content must be a string"),
    ({"messages": [{"role": "user", "content": "hi"}], "max_tokens": "ten"}, "'max_tokens' must be a whole number"),
    ({"messages": [{"role": "user", "content": "hi"}], "max_tokens": -1}, "'max_tokens' must be a whole number"),
    ({"messages": [{"role": "user", "content": "hi"}], "max_tokens": 2.5}, "'max_tokens' must be a whole number"),
    ({"messages": [{"role": "user", "content": "hi"}], "temperature": "hot"}, "'temperature' must be a finite"),
    ({"messages": [{"role": "user", "content": "hi"}], "temperature": -0.5}, "'temperature' must be in [0, 2]"),
    ({"messages": [{"role": "user", "content": "hi"}], "stream": True}, "'stream' is not supported"),
]


def test_every_malformed_body_is_a_400_naming_the_field_and_the_server_keeps_serving(generator):
    with serving(generator) as port:
        for body, expected in MALFORMED:
            status, payload = post(port, body)
            assert status == 400, body
            assert expected in payload["error"]["message"], (body, payload)
        status, payload = post(port, b"{not json")
        assert status == 400 and "the body is not JSON" in payload["error"]["message"]
        assert get(port, "/health") == (200, {"status": "ok", "model": "smollm2"})
        status, payload = post(port, {"messages": [{"role": "user", "content": "Say hi."}], "max_tokens": 4})
        assert status == 200 and payload["choices"][0]["message"]["role"] == "assistant"


def test_a_body_over_the_limit_is_413_unread(generator):
    with serving(generator, max_body_bytes=100) as port:
        body = {"messages": [{"role": "user", "content": "x" * 500}]}
        status, payload = post(port, body)
        assert status == 413 and "limit of 100 bytes" in payload["error"]["message"]
        # a Content-Length that claims a huge body is refused before any of it is read
        with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
            raw.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 999999999999\r\n\r\n{")
            assert raw.recv(100).startswith(b"HTTP/1.1 413")


def test_max_tokens_is_capped_at_the_server_limit_and_usage_counts_tokens(generator):
    with serving(generator, max_tokens=6) as port:
        status, payload = post(port, {"messages": LONG, "max_tokens": 100000})
    assert status == 200
    (choice,) = payload["choices"]
    assert choice["finish_reason"] == "length"
    usage = payload["usage"]
    assert usage["completion_tokens"] == 6
    prompt = generator.tokenizer.apply_chat_template(LONG, tokenize=False, add_generation_prompt=True)
    assert usage["prompt_tokens"] == len(generator.tokenizer(prompt, add_special_tokens=False)["input_ids"])
    assert usage["total_tokens"] == usage["prompt_tokens"] + 6
    assert len(generator.tokenizer(choice["message"]["content"], add_special_tokens=False)["input_ids"]) <= 7


def test_a_reply_that_ends_its_turn_says_stop(generator):
    with serving(generator, max_tokens=200) as port:
        status, payload = post(port, {"messages": [{"role": "user", "content": "Reply with only the word yes."}]})
    assert status == 200
    assert payload["choices"][0]["finish_reason"] == "stop"
    assert payload["usage"]["completion_tokens"] < 200


def test_the_time_limit_cuts_a_reply(generator):
    with serving(generator, max_tokens=5000, request_time_limit_s=1.0) as port:
        started = time.monotonic()
        status, payload = post(port, {"messages": LONG})
        took = time.monotonic() - started
    assert status == 200 and payload["choices"][0]["finish_reason"] == "length"
    assert 0 < payload["usage"]["completion_tokens"] < 5000
    assert took < 10, took


def _start_long_request(port: int) -> socket.socket:
    body = json.dumps({"messages": LONG, "max_tokens": 5000}).encode()
    raw = socket.create_connection(("127.0.0.1", port), timeout=60)
    raw.sendall(
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        + f"Content-Length: {len(body)}\r\n\r\n".encode()
        + body
    )
    return raw


def test_a_client_that_hangs_up_stops_its_reply_and_health_answers_meanwhile(generator, caplog):
    caplog.set_level(logging.INFO, logger="mmpo.serve")
    with serving(generator, max_tokens=5000, request_time_limit_s=600) as port:
        raw = _start_long_request(port)
        time.sleep(1.5)  # it is generating now
        started = time.monotonic()
        assert get(port, "/health")[0] == 200
        assert time.monotonic() - started < 2, "health waited for the reply"
        raw.close()
        deadline = time.monotonic() + 20
        while not any("hung up; stopped after" in r.getMessage() for r in caplog.records):
            assert time.monotonic() < deadline, "generation went on after the client left"
            time.sleep(0.1)
        # the model is free again: a short request is answered at once
        started = time.monotonic()
        status, _ = post(port, {"messages": [{"role": "user", "content": "Say hi."}], "max_tokens": 2})
        assert status == 200 and time.monotonic() - started < 10
    stopped = next(r.getMessage() for r in caplog.records if "hung up; stopped after" in r.getMessage())
    assert int(stopped.split("after ")[1].split()[0]) < 5000


def test_a_full_queue_answers_503(generator):
    with serving(generator, max_tokens=5000, request_time_limit_s=600, max_waiting=0) as port:
        raw = _start_long_request(port)
        time.sleep(1.0)
        status, payload = post(port, {"messages": [{"role": "user", "content": "hi"}]}, timeout=10)
        raw.close()
    assert status == 503 and payload["_headers"]["Retry-After"] == "5"


def test_a_key_is_asked_for_when_one_is_set(generator, monkeypatch):
    monkeypatch.setenv("MMPO_SERVE_KEY", "s3cret")
    params = ServeParams("smollm2", port=0, limits=ServerLimits(max_tokens=2), api_key_env="MMPO_SERVE_KEY")
    server = make_server(generator, params)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_address[1]
    try:
        body = {"messages": [{"role": "user", "content": "hi"}]}
        assert post(port, body)[0] == 401
        assert post(port, body, {"Authorization": "Bearer wrong"})[0] == 401
        assert get(port, "/v1/models")[0] == 401
        assert get(port, "/health")[0] == 200
        assert post(port, body, {"Authorization": "Bearer s3cret"})[0] == 200
        assert get(port, "/v1/models", {"Authorization": "Bearer s3cret"})[1]["data"][0]["id"] == "smollm2"
    finally:
        server.shutdown()
        server.server_close()


def test_an_unset_key_variable_stops_serve_before_the_model_loads(monkeypatch, capsys):
    monkeypatch.delenv("MMPO_NO_SUCH_KEY", raising=False)
    started = time.monotonic()
    assert main(["serve", "--model", "bundled:smollm2-135m-instruct", "--api-key-env", "MMPO_NO_SUCH_KEY"]) == 2
    assert time.monotonic() - started < 5
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["mmpo: error: --api-key-env MMPO_NO_SUCH_KEY: that environment variable is not set or empty"]
