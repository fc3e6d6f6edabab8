"""A client for any OpenAI-compatible chat-completions endpoint (OpenAI itself, vLLM, llama.cpp,
``mmpo serve``), with retries and backoff on rate limits and server errors.

Standard library only: one POST per request, JSON in and out. The API key is read from an environment
variable named by the user (never from a file or a flag, so it stays out of shell history and logs).
"""

from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.request
from dataclasses import dataclass

RETRY_STATUS = (408, 409, 429, 500, 502, 503, 504)
REDIRECT_STATUS = (301, 302, 303, 307, 308)


class _RefuseRedirects(urllib.request.HTTPRedirectHandler):
    """urllib follows redirects with every header of the request, the API key included, to whatever host the
    Location names. A chat endpoint has no reason to redirect a POST, so none is followed: the redirect surfaces as
    the HTTPError it is, and the key never reaches another origin."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


_OPENER = urllib.request.build_opener(_RefuseRedirects)


class ChatRequestFailed(RuntimeError):
    """The request failed for good (a 4xx that retrying cannot fix, or retries exhausted)."""


@dataclass(frozen=True)
class ChatEndpoint:
    base_url: str = "https://api.openai.com/v1"
    model: str = "gpt-4"
    api_key_env: str = "OPENAI_API_KEY"
    max_tokens: int = 2048
    temperature: float = 0.0
    timeout_s: float = 120.0
    max_retries: int = 6
    backoff_s: float = 1.0

    def complete(self, messages: list[dict[str, str]]) -> str:
        """The assistant reply to ``messages``; retries 408/409/429/5xx and connection errors with
        exponential backoff (honouring Retry-After), then raises ChatRequestFailed."""
        body = json.dumps(
            {
                "model": self.model,
                "messages": messages,
                "temperature": self.temperature,
                "max_tokens": self.max_tokens,
                "n": 1,
            }
        ).encode()
        headers = {"Content-Type": "application/json"}
        key = os.environ.get(self.api_key_env, "")
        if key:
            headers["Authorization"] = f"Bearer {key}"
        url = self.base_url.rstrip("/") + "/chat/completions"
        last_error = ""
        for attempt in range(self.max_retries + 1):
            request = urllib.request.Request(url, data=body, headers=headers, method="POST")
            wait = self.backoff_s * 2**attempt
            try:
                with _OPENER.open(request, timeout=self.timeout_s) as response:
                    payload = json.loads(response.read())
                return payload["choices"][0]["message"]["content"] or ""
            except urllib.error.HTTPError as exc:
                if exc.code in REDIRECT_STATUS:
                    target = exc.headers.get("Location", "?") if exc.headers else "?"
                    raise ChatRequestFailed(
                        f"HTTP {exc.code}: {url} redirects to {target}; redirects are not followed (the API key would "
                        "go with them): use the final address as the base URL"
                    ) from None
                last_error = f"HTTP {exc.code}: {exc.read()[:200].decode(errors='replace')}"
                if exc.code not in RETRY_STATUS:
                    raise ChatRequestFailed(last_error) from None
                retry_after = exc.headers.get("Retry-After") if exc.headers else None
                if retry_after and retry_after.replace(".", "", 1).isdigit():
                    wait = float(retry_after)
            except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
                last_error = f"{type(exc).__name__}: {getattr(exc, 'reason', exc)}"
            except (KeyError, IndexError, ValueError) as exc:
                raise ChatRequestFailed(f"unexpected response ({type(exc).__name__}: {exc})") from None
            if attempt < self.max_retries:
                time.sleep(min(wait, 60.0))
        raise ChatRequestFailed(f"{last_error} (after {self.max_retries} retries)")
