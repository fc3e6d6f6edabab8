"""``mmpo serve``: a local causal LM behind an OpenAI-compatible ``/v1/chat/completions`` endpoint.

It lets any OpenAI client (``mmpo margins annotate --judge openai:...``, ``mmpo judge``, FastChat) use a
local model as a judge without vLLM, e.g. the bundled SmolLM2 on a CPU. It binds to 127.0.0.1 unless told
otherwise; what one client may ask of it is bounded (``serving/handler.py``).
"""

from __future__ import annotations

import logging
import os
import sys
from dataclasses import dataclass, field
from http.server import ThreadingHTTPServer

from mmpo.errors import ConfigError
from mmpo.serving.handler import ServerLimits, make_handler


@dataclass(frozen=True)
class ServeParams:
    model: str
    host: str = "127.0.0.1"
    port: int = 8000
    limits: ServerLimits = field(default_factory=ServerLimits)
    api_key_env: str = ""  # empty: no key asked

    def api_key(self) -> str | None:
        """The key clients must send, read once; a named variable that is unset or empty is a setting error."""
        if not self.api_key_env:
            return None
        key = os.environ.get(self.api_key_env, "")
        if not key:
            raise ConfigError(f"--api-key-env {self.api_key_env}: that environment variable is not set or empty")
        return key


def make_server(generator, params: ServeParams) -> ThreadingHTTPServer:
    """The server, bound and not yet serving (port 0 picks a free one)."""
    server = ThreadingHTTPServer(
        (params.host, params.port), make_handler(generator, params.model, params.limits, params.api_key())
    )
    server.daemon_threads = True
    return server


def run_serve(params: ServeParams) -> None:
    from mmpo.models.generation import ChatGenerator

    params.api_key()  # before the model loads
    logging.getLogger("mmpo.serve").setLevel(logging.INFO)
    generator = ChatGenerator(params.model)
    server = make_server(generator, params)
    host, port = server.server_address[:2]
    print(f"mmpo serve: {params.model} at http://{host}:{port}/v1", file=sys.stderr, flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
