"""What every command's parser shares: argument types that refuse bad values in one line, the data and
judge options, and printing a result as strict JSON on the results stream."""

from __future__ import annotations

import argparse
import math
from typing import Any

from mmpo import strict_json
from mmpo.results_output import results_stream


def print_json(value: Any) -> None:
    print(strict_json.dumps(value), file=results_stream(), flush=True)


def positive_float(text: str) -> float:
    """gamma-like flags: a number > 0, or inf."""
    try:
        value = math.inf if text.strip().lower() in ("inf", "+inf", "infinity") else float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0 or inf (got {text})")
    return value


def _whole_number(text: str, low: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < low:
        raise argparse.ArgumentTypeError(f"must be {'> 0' if low == 1 else f'>= {low}'} (got {text})")
    return value


def non_negative_int(text: str) -> int:
    return _whole_number(text, 0)


def positive_int(text: str) -> int:
    return _whole_number(text, 1)


def finite_non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0 <= value < math.inf:
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0 (got {text})")
    return value


def finite_positive_float(text: str) -> float:
    value = finite_non_negative_float(text)
    if value == 0:
        raise argparse.ArgumentTypeError(f"must be > 0 (got {text})")
    return value


def port(text: str) -> int:
    value = non_negative_int(text)
    if not 1 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"a port is 1..65535 (got {text})")
    return value


def add_data_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data", required=True, nargs="+", help="JSONL/JSON/parquet/CSV file(s) or saved dataset folder"
    )
    parser.add_argument(
        "--set",
        dest="data_overrides",
        nargs="*",
        default=[],
        metavar="KEY=VALUE",
        help="data settings, e.g. margin_source=votes data.chosen_column=output_1 (the data. prefix is optional)",
    )


def add_judge_options(parser: argparse.ArgumentParser, max_new_tokens: int) -> None:
    parser.add_argument("--judge", required=True, help="openai:<model>, hf:<path or hub id> or rm:<path or hub id>")
    parser.add_argument("--base-url", default="https://api.openai.com/v1", help="openai judges: the endpoint")
    parser.add_argument("--api-key-env", default="OPENAI_API_KEY", help="openai judges: env variable with the key")
    parser.add_argument("--concurrency", type=positive_int, default=4, help="openai judges: parallel requests")
    parser.add_argument("--max-new-tokens", type=positive_int, default=max_new_tokens)
    parser.add_argument("--batch-size", type=positive_int, default=4, help="hf judges: conversations per batch")
    parser.add_argument(
        "--retries", type=non_negative_int, default=6, help="openai judges: retries on 429/5xx, with backoff"
    )


def judge_settings(args: argparse.Namespace):
    from mmpo.evaluation.judges import JudgeSettings

    return JudgeSettings(
        args.judge,
        args.base_url,
        args.api_key_env,
        args.concurrency,
        args.max_new_tokens,
        args.batch_size,
        args.retries,
    )
