"""What every command's parser shares: argument types that refuse bad values in one line, the data and
judge options, and printing a result as strict JSON on the results stream."""

from __future__ import annotations

import argparse
import math
import re
from pathlib import Path
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


# DataConfig's fields (tests/test_cli.py keeps the two equal; importing the schema here would slow --help)
DATA_KEYS = (
    "train_path train_mixture eval_path prompt_column chosen_column rejected_column label_column section_column format "
    "chat_template margin_source chosen_score rejected_score completion_column kto_score kto_label chosen_votes "
    "rejected_votes annotator_columns constant_margin margin_scale similarity_model on_tie on_negative on_empty "
    "max_train_samples max_eval_samples max_pairs_per_prompt margin_quartiles min_margin stratify_margin_quartiles "
    "shuffle_seed num_proc"
).split()
_OVERRIDE = re.compile(r"^[A-Za-z_][\w.]*=")
DATA_SETTINGS_HELP = (
    "data settings as KEY=VALUE after the options, as `mmpo train` takes them (or after --set), e.g. "
    "margin_source=votes data.chosen_column=output_1 (the data. prefix is optional). Keys: " + ", ".join(DATA_KEYS)
)


def add_data_options(parser: argparse.ArgumentParser, data_required: bool = True) -> None:
    parser.add_argument(
        "--data", required=data_required, nargs="+", help="JSONL/JSON/parquet/CSV file(s) or saved dataset folder"
    )
    add_data_settings(parser)


def add_data_settings(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--set", dest="data_overrides", nargs="*", default=[], metavar="KEY=VALUE", help=argparse.SUPPRESS
    )
    parser.epilog = DATA_SETTINGS_HELP


def is_override(text: str) -> bool:
    """``key=value`` (and not a file that happens to contain '=')."""
    return bool(_OVERRIDE.match(text)) and not Path(text).exists()


def take_overrides_from_data(args: argparse.Namespace) -> None:
    """``--data a.jsonl margin_source=votes``: argparse hands trailing KEY=VALUE to the greedy --data list; they
    are settings, moved to where ``--set`` puts them."""
    data = getattr(args, "data", None)
    if isinstance(data, list) and hasattr(args, "data_overrides"):
        args.data_overrides = [*args.data_overrides, *[d for d in data if is_override(d)]]
        args.data = [d for d in data if not is_override(d)]


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
