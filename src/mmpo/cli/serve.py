"""``mmpo serve``: a local chat model behind an OpenAI-compatible endpoint, every request bounded."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from mmpo.cli.arguments import finite_positive_float, non_negative_int, port, positive_int

if TYPE_CHECKING:
    from mmpo.commands.serve import ServeParams


def register(subparsers) -> None:
    srv = subparsers.add_parser("serve", help="a local chat model behind an OpenAI-compatible endpoint")
    srv.add_argument("--model", required=True)
    srv.add_argument("--host", default="127.0.0.1")
    srv.add_argument("--port", type=port, default=8000)
    srv.add_argument(
        "--max-new-tokens",
        type=positive_int,
        default=512,
        help="the most tokens one reply may have; a request's max_tokens above it is capped",
    )
    srv.add_argument(
        "--request-time-limit",
        type=finite_positive_float,
        default=120.0,
        help="seconds one request may take, queueing included; a reply cut by it ends with finish_reason 'length'",
    )
    srv.add_argument(
        "--max-waiting", type=non_negative_int, default=4, help="requests queued behind the one generating; more: 503"
    )
    srv.add_argument("--max-body-bytes", type=positive_int, default=1 << 20, help="larger request bodies: 413")
    srv.add_argument(
        "--api-key-env",
        default="",
        help="an environment variable holding a key every client must send as 'Authorization: Bearer <key>'",
    )
    srv.set_defaults(func=execute)


def to_params(args: argparse.Namespace) -> ServeParams:
    from mmpo.commands.serve import ServeParams
    from mmpo.serving.handler import ServerLimits

    limits = ServerLimits(
        max_tokens=args.max_new_tokens,
        max_body_bytes=args.max_body_bytes,
        request_time_limit_s=args.request_time_limit,
        max_waiting=args.max_waiting,
    )
    return ServeParams(args.model, args.host, args.port, limits, args.api_key_env)


def execute(args: argparse.Namespace) -> int:
    from mmpo.commands.serve import run_serve

    run_serve(to_params(args))
    return 0
