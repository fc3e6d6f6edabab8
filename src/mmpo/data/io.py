"""Reading preference data from local files or saved HF datasets.

Everything goes through ``datasets`` so that users get Arrow-backed memory mapping and caching as in
TRL. Local files are read with ``Dataset.from_json`` / ``from_parquet`` / ``from_csv``, which, unlike
``load_dataset``, send no usage-counter request anywhere: reading a local file stays local.

A file that cannot be read gives one line naming the file and the 1-based line (JSON) where it breaks;
rows are numbered from 0 everywhere else, as in the file.
"""

from __future__ import annotations

import gzip
import json
import logging
import re
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import datasets

from mmpo.config.paths import data_source_exists, parse_hub_dataset_id, resolve_data_path
from mmpo.data.hub import load_hub_dataset
from mmpo.errors import DataError

_JSON_SUFFIXES = (".jsonl", ".json", ".jsonl.gz", ".json.gz")
_SAVED_DATASET_MARKERS = ("dataset_info.json", "state.json", "dataset_dict.json")


def load_records(source: str | Path | datasets.Dataset, split: str = "train") -> datasets.Dataset:
    """Load a local JSON/JSONL(.gz)/parquet/CSV file, a folder saved with ``save_to_disk``, a hub dataset id
    (``org/name[@revision][:config][:split]``, ``split`` when none is named), or pass a ``Dataset`` through."""
    if isinstance(source, datasets.Dataset):
        return source
    if isinstance(source, datasets.DatasetDict):
        return source[split]
    hub_id = parse_hub_dataset_id(str(source))
    if hub_id is not None:
        loaded = load_hub_dataset(hub_id, split)
        if len(loaded) == 0:
            raise DataError(f"dataset {hub_id.repo_id!r}: the split has no rows")
        return loaded
    path = Path(resolve_data_path(str(source)))
    if not path.exists():
        raise DataError(f"data file {str(path)!r} does not exist")
    if path.is_dir():
        return _load_saved_folder(path, split)
    name = path.name.lower()
    if name.endswith(_JSON_SUFFIXES):
        reader, kind = datasets.Dataset.from_json, "JSON"
    elif name.endswith(".parquet"):
        reader, kind = datasets.Dataset.from_parquet, "parquet"
    elif name.endswith(".csv"):
        reader, kind = datasets.Dataset.from_csv, "CSV"
    else:
        raise DataError(f"cannot tell the format of {str(path)!r}: use .jsonl, .json, .parquet or .csv")
    if path.stat().st_size == 0:
        raise DataError(f"{path}: the file is empty")
    if kind == "JSON":
        check_json_file(path)  # exact line numbers for broken JSON, before Arrow gives a vaguer message
    try:
        with _quiet_builder_logs():
            loaded = reader(str(path))
    except Exception as exc:  # datasets/pyarrow raise many types; the user needs the file and the reason
        raise DataError(f"{path}: cannot be read as {kind} ({_root_reason(exc)})") from exc
    if len(loaded) == 0:
        raise DataError(f"{path}: the file has no rows")
    return loaded


_RAGGED_CSV = re.compile(r"Expected (\d+) fields in line (\d+), saw (\d+)")


def _root_reason(exc: BaseException) -> str:
    """The first line of the innermost cause: datasets wraps the parser's own message ("line 3, saw 6 fields")
    in a generic "An error occurred while generating the dataset"."""
    while exc.__cause__ is not None or (exc.__context__ is not None and not exc.__suppress_context__):
        exc = exc.__cause__ or exc.__context__
    text = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    ragged = _RAGGED_CSV.search(text)
    if ragged:
        expected, line, saw = ragged.groups()
        return f"line {line} has {saw} fields where the header has {expected}; quote values that contain commas"
    return text


@contextmanager
def _quiet_builder_logs() -> Iterator[None]:
    """datasets logs a reader failure at ERROR before raising it; the one-line DataError says it instead."""
    builder_logger = logging.getLogger("datasets")
    level = builder_logger.level
    builder_logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        builder_logger.setLevel(level)


def check_data_files(sources: list[str]) -> None:
    """Fail before any model is loaded when a named data file does not exist."""
    for source in sources:
        if not data_source_exists(source):
            raise DataError(f"data file {source!r} does not exist")


def _load_saved_folder(path: Path, split: str) -> datasets.Dataset:
    if not any((path / marker).exists() for marker in _SAVED_DATASET_MARKERS):
        raise DataError(
            f"{path} is a folder but not a dataset saved with save_to_disk; give a .jsonl/.json/.parquet/.csv file"
        )
    loaded = datasets.load_from_disk(str(path))
    if isinstance(loaded, datasets.DatasetDict):
        if split not in loaded:
            raise DataError(f"{path}: no split {split!r}; splits present: {sorted(loaded)}")
        return loaded[split]
    return loaded


def _open_text(path: Path):
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    return opener(path, "rt", encoding="utf-8", errors="strict")


def json_lines(path: Path, broken: str = "is not valid JSON") -> Iterator[tuple[int, Any]]:
    """(1-based line number, value) of every non-blank line of a JSON Lines file; a line that does not parse
    is a DataError naming it, worded by ``broken`` (e.g. how to recover a file a killed run left half-written)."""
    with _open_text(path) as handle:
        text = handle.read()
    for number, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            try:
                yield number, json.loads(line)
            except ValueError as exc:
                raise DataError(f"{path}: line {number} {broken} ({exc})") from None


def check_json_file(path: Path) -> None:
    """Raise a DataError naming the 1-based line of the first broken byte or JSON value.

    A file whose first non-blank character is '[' or '{' spanning lines is one JSON document; otherwise
    every non-blank line must be one JSON object (JSON Lines)."""
    try:
        with _open_text(path) as handle:
            text = handle.read()
    except UnicodeDecodeError as exc:
        raw = gzip.open(path).read() if path.name.lower().endswith(".gz") else path.read_bytes()
        line = raw[: exc.start].count(b"\n") + 1
        byte = raw[exc.start]
        raise DataError(f"{path}: line {line} is not UTF-8 text (byte {byte:#04x}); re-save it as UTF-8") from None
    except (OSError, EOFError) as exc:
        raise DataError(f"{path}: cannot be read ({exc})") from None
    stripped = text.lstrip()
    if not stripped:
        raise DataError(f"{path}: the file is empty")
    if stripped[0] == "[":
        try:
            document = json.loads(text)
        except json.JSONDecodeError as exc:
            raise DataError(f"{path}: line {exc.lineno} column {exc.colno}: not valid JSON ({exc.msg})") from None
        _check_spelled_numbers(path, (row for row in document if isinstance(row, dict)))
        return
    _check_spelled_numbers(path, _json_lines_rows(path, text, stripped))


def _json_lines_rows(path: Path, text: str, stripped: str) -> Iterator[dict]:
    """Every row of a JSON Lines text, one at a time (none when it is one pretty-printed object), or a DataError
    naming the first line that is not one JSON object."""
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as exc:
            if number == 1 and stripped[0] == "{":
                try:  # one pretty-printed object spanning lines
                    json.loads(text)
                    return
                except json.JSONDecodeError:
                    pass
            raise DataError(f"{path}: line {number} is not valid JSON ({exc.msg} at column {exc.colno})") from None
        if not isinstance(value, dict):
            raise DataError(f"{path}: line {number} is a JSON {type(value).__name__}, not an object (one row per line)")
        yield value


_SPELLED_NON_FINITE = ("NaN", "Infinity", "-Infinity")


def _check_spelled_numbers(path: Path, rows: Iterable[dict]) -> None:
    """A column of numbers where some row holds the string "NaN" (or "Infinity"): datasets stores a column of
    mixed types as JSON text, where that string loses its quotes and comes back as null, so the row would be
    reported as "missing" when it holds a word. Say what it holds instead."""
    first_number: dict[str, int] = {}
    spelled: dict[str, tuple[int, str]] = {}
    for row_index, row in enumerate(rows):
        for key, value in row.items():
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                first_number.setdefault(key, row_index)
            elif isinstance(value, str) and value in _SPELLED_NON_FINITE:
                spelled.setdefault(key, (row_index, value))
    for key, (row_index, value) in spelled.items():
        if key in first_number:
            raise DataError(
                f"{path}: row {row_index}: column {key!r} holds the string {value!r} where row {first_number[key]} "
                "holds a number; NaN/inf scores are not allowed (fix or drop the row)"
            )
