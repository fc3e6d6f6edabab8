"""The HTTP handler of ``mmpo serve``: every request bounded in size, time and number.

One model generates one reply at a time. What a client can do to the server is bounded: a body above
``max_body_bytes`` is refused unread (413), a malformed body is a 400 naming the field, ``max_tokens`` is
capped at the server's limit, a reply stops at the time limit or as soon as its client hangs up, and at
most ``max_waiting`` requests queue behind the one generating (more get 503 with ``Retry-After``).
Health and model listing are answered meanwhile, from their own threads. With an API key, every route but
``/health`` wants ``Authorization: Bearer <key>``.
"""

from __future__ import annotations

import hmac
import json
import logging
import select
import socket
import threading
import time
import uuid
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from typing import Protocol

from mmpo.models.generation import Completion, Conversation
from mmpo.serving.requests import BadRequest, RequestLimits, parse_chat_request

logger = logging.getLogger("mmpo.serve")


class Generator(Protocol):
    def complete(
        self, conversation: Conversation, max_new_tokens: int, temperature: float, time_limit_s: float, should_stop
    ) -> Completion: ...


@dataclass(frozen=True)
class ServerLimits:
    max_tokens: int = 512
    max_body_bytes: int = 1 << 20
    request_time_limit_s: float = 120.0
    max_waiting: int = 4
    read_timeout_s: float = 30.0  # a client that sends its body this slowly is dropped


def peer_hung_up(connection: socket.socket) -> bool:
    """True when the client closed its side: its socket reads as end-of-file (checked without blocking)."""
    try:
        readable, _, _ = select.select([connection], [], [], 0)
        return bool(readable) and connection.recv(1, socket.MSG_PEEK) == b""
    except (OSError, ValueError):
        return True


class _Admission:
    """One request generating and at most ``max_waiting`` queued; a request beyond that is refused at once."""

    def __init__(self, max_waiting: int) -> None:
        self.capacity = 1 + max_waiting
        self.admitted = 0
        self.count_lock = threading.Lock()
        self.model_lock = threading.Lock()

    def try_admit(self) -> bool:
        with self.count_lock:
            if self.admitted >= self.capacity:
                return False
            self.admitted += 1
            return True

    def leave(self) -> None:
        with self.count_lock:
            self.admitted -= 1


def make_handler(generator: Generator, served_name: str, limits: ServerLimits, api_key: str | None = None):
    admission = _Admission(limits.max_waiting)
    request_limits = RequestLimits(limits.max_tokens)

    class Handler(BaseHTTPRequestHandler):
        timeout = limits.read_timeout_s  # socket timeout for reading the request
        protocol_version = "HTTP/1.1"

        def _send(self, status: int, payload: dict, headers: dict[str, str] | None = None) -> None:
            body = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            try:
                self.wfile.write(body)
            except OSError:  # the client is gone; nothing to tell it
                self.close_connection = True

        def _error(self, status: int, message: str, kind: str = "invalid_request_error", **headers: str) -> None:
            self._send(status, {"error": {"message": message, "type": kind, "code": status}}, headers)

        def log_message(self, format: str, *args) -> None:  # noqa: A002 - http.server's signature
            logger.info("%s %s", self.address_string(), format % args)

        def _authorised(self) -> bool:
            if api_key is None:
                return True
            given = self.headers.get("Authorization", "")
            if given.startswith("Bearer ") and hmac.compare_digest(given[7:].encode(), api_key.encode()):
                return True
            self._error(401, "a valid 'Authorization: Bearer <key>' header is required", "authentication_error")
            return False

        def do_GET(self) -> None:  # noqa: N802 - http.server's method name
            route = self.path.rstrip("/")
            if route == "/health":
                self._send(200, {"status": "ok", "model": served_name})
            elif route == "/v1/models":
                if self._authorised():
                    self._send(200, {"object": "list", "data": [{"id": served_name, "object": "model"}]})
            else:
                self._error(404, f"no route {self.path[:100]}", "not_found_error")

        def _read_body(self) -> object:
            length_text = self.headers.get("Content-Length")
            if length_text is None:
                self.close_connection = True
                raise _Refused(411, "a Content-Length header is required")
            try:
                length = int(length_text)
            except ValueError:
                self.close_connection = True
                raise _Refused(400, "Content-Length is not a number") from None
            if not 0 <= length <= limits.max_body_bytes:
                self.close_connection = True  # the body is left unread
                raise _Refused(413, f"the body is over this server's limit of {limits.max_body_bytes} bytes")
            try:
                raw = self.rfile.read(length)
            except OSError:
                self.close_connection = True
                raise _Refused(408, "the body did not arrive in time") from None
            try:
                return json.loads(raw)
            except (ValueError, UnicodeDecodeError) as exc:
                raise _Refused(400, f"the body is not JSON: {str(exc)[:100]}") from None

        def do_POST(self) -> None:  # noqa: N802
            if self.path.rstrip("/") != "/v1/chat/completions":
                self._error(404, f"no route {self.path[:100]}", "not_found_error")
                return
            if not self._authorised():
                return
            try:
                request = parse_chat_request(self._read_body(), request_limits)
            except _Refused as refused:
                self._error(refused.status, refused.message)
                return
            except BadRequest as exc:
                self._error(400, str(exc))
                return
            if not admission.try_admit():
                self._error(503, "the server is busy; try again shortly", "server_busy", **{"Retry-After": "5"})
                return
            try:
                self._complete(request)
            finally:
                admission.leave()

        def _complete(self, request) -> None:
            connection = self.connection
            started = time.monotonic()
            with admission.model_lock:
                waited = time.monotonic() - started
                remaining = limits.request_time_limit_s - waited
                if peer_hung_up(connection):
                    logger.info("%s hung up while queued", self.address_string())
                    return
                try:
                    completion = generator.complete(
                        request.messages,
                        request.max_tokens,
                        request.temperature,
                        max(remaining, 0.0),
                        lambda: peer_hung_up(connection),
                    )
                except Exception as exc:  # noqa: BLE001 - one request's failure must not take the server down
                    logger.error("generation failed: %s: %s", type(exc).__name__, str(exc)[:200])
                    self._error(500, f"generation failed: {type(exc).__name__}", "server_error")
                    return
            if completion.finish_reason == "cancelled":
                logger.info("%s hung up; stopped after %d tokens", self.address_string(), completion.completion_tokens)
                self.close_connection = True
                return
            self._send(200, _response(served_name, completion))

    return Handler


class _Refused(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _response(served_name: str, completion: Completion) -> dict:
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": served_name,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": completion.text},
                "finish_reason": completion.finish_reason,
            }
        ],
        "usage": {
            "prompt_tokens": completion.prompt_tokens,
            "completion_tokens": completion.completion_tokens,
            "total_tokens": completion.prompt_tokens + completion.completion_tokens,
        },
    }
