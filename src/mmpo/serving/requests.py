"""A chat-completions body, checked field by field before it reaches the model.

Every way a body can be wrong becomes a ``BadRequest`` whose message names the field, so the handler
answers 400 with an OpenAI-style error instead of a traceback and a dropped connection.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

ROLES = ("system", "user", "assistant")
MAX_TEMPERATURE = 2.0  # OpenAI's range


class BadRequest(ValueError):
    """The body cannot be served; the message names the field."""


@dataclass(frozen=True)
class ChatRequest:
    messages: tuple[dict[str, str], ...]
    max_tokens: int
    temperature: float
    capped: bool  # max_tokens was asked above the server's limit and cut to it


@dataclass(frozen=True)
class RequestLimits:
    max_tokens: int  # the most new tokens one request may have (asking for more is capped, as vLLM does)
    max_messages: int = 256


def _number(body: dict, key: str) -> float | None:
    value = body.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise BadRequest(f"'{key}' must be a finite number (got {str(value)[:40]!r})")
    return float(value)


def _message(index: int, message: object) -> dict[str, str]:
    if not isinstance(message, dict):
        raise BadRequest(f"messages[{index}] must be an object with 'role' and 'content'")
    role, content = message.get("role"), message.get("content")
    if role is None:
        raise BadRequest(f"messages[{index}] has no 'role'")
    if role not in ROLES:
        raise BadRequest(f"messages[{index}].role {str(role)[:40]!r} is not one of {', '.join(ROLES)}")
    if not isinstance(content, str):
        raise BadRequest(f"messages[{index}].content must be a string")
    return {"role": role, "content": content}


def parse_chat_request(body: object, limits: RequestLimits) -> ChatRequest:
    """The request a client meant, or ``BadRequest`` naming the first field that is wrong."""
    if not isinstance(body, dict):
        raise BadRequest(f"the body must be a JSON object (got {type(body).__name__})")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise BadRequest("'messages' must be a non-empty list")
    if len(messages) > limits.max_messages:
        raise BadRequest(f"'messages' has {len(messages)} entries; this server takes at most {limits.max_messages}")
    parsed = tuple(_message(i, m) for i, m in enumerate(messages))
    if body.get("stream"):
        raise BadRequest("'stream' is not supported by mmpo serve")
    if body.get("n") not in (None, 1):
        raise BadRequest("'n' must be 1 (mmpo serve returns one choice)")
    tokens = body.get("max_completion_tokens", body.get("max_tokens"))
    if tokens is not None and (isinstance(tokens, bool) or not isinstance(tokens, int) or tokens < 1):
        raise BadRequest(f"'max_tokens' must be a whole number >= 1 (got {str(tokens)[:40]!r})")
    temperature = _number(body, "temperature")
    if temperature is not None and not 0 <= temperature <= MAX_TEMPERATURE:
        raise BadRequest(f"'temperature' must be in [0, {MAX_TEMPERATURE:g}] (got {temperature:g})")
    wanted = limits.max_tokens if tokens is None else tokens
    return ChatRequest(parsed, min(wanted, limits.max_tokens), temperature or 0.0, wanted > limits.max_tokens)
