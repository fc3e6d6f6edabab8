"""Tokenised training features as an Arrow table on disk: built once, memory-mapped by every process.

Why: at the paper's data size, token ids kept as Python lists cost about 115 bytes per token (a list slot plus an
int object); 60k UltraFeedback pairs at 1,024 tokens took 6.9 GB resident in each process, and each of 8 ranks
built its own copy. In Arrow the ids are int32 and the masks int8 in one memory-mapped file, read by the page
cache and shared by every process on the machine; the table is written by ``datasets.map`` in batches (so
building it needs one batch of lists at a time), optionally on ``num_proc`` processes, and is keyed by a
fingerprint of everything the features depend on: the pairs' text and margins, the tokenizer's files and special
tokens, the length settings and the featuriser. A second run, another rank, or a gamma sweep over the same data
opens the file instead of tokenising again. The caller builds it on the main process first (``main_process_first``),
so the other ranks find the file.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import datasets
from transformers import PreTrainedTokenizerBase

from mmpo.records import Pair

logger = logging.getLogger("mmpo")

# Bump when a featuriser's output changes for the same inputs: old tables then stop matching.
FEATURES_FORMAT = 1
BATCH_PAIRS = 1000


def tokenizer_fingerprint(tokenizer: PreTrainedTokenizerBase) -> str:
    """The tokenizer's vocabulary and merges (its tokenizer.json) and the special tokens the featurisers add."""
    digest = hashlib.sha256(type(tokenizer).__name__.encode())
    backend = getattr(tokenizer, "backend_tokenizer", None)
    vocabulary = backend.to_str() if backend is not None else json.dumps(sorted(tokenizer.get_vocab().items()))
    digest.update(vocabulary.encode())
    specials = [tokenizer.bos_token_id, tokenizer.eos_token_id, tokenizer.pad_token_id]
    digest.update(json.dumps([specials, bool(getattr(tokenizer, "add_bos_token", False))]).encode())
    return digest.hexdigest()


def features_key(pairs: Sequence[Pair], tokenizer: PreTrainedTokenizerBase, featurizer: str, settings: Any) -> str:
    digest = hashlib.sha256(json.dumps([FEATURES_FORMAT, featurizer, repr(settings)]).encode())
    digest.update(tokenizer_fingerprint(tokenizer).encode())
    for p in pairs:
        digest.update(json.dumps([p.prompt, p.chosen, p.rejected, p.margin, p.source_row, p.section]).encode())
    return digest.hexdigest()[:24]


def _arrow_features(columns: Sequence[str]) -> datasets.Features:
    """int32 token ids, int8 masks and token types, float64 margins: a quarter of int64 lists' size."""
    types: dict[str, Any] = {}
    for name in columns:
        if name.endswith("input_ids"):
            types[name] = datasets.Sequence(datasets.Value("int32"))
        elif name.endswith(("_mask", "token_type_ids")):
            types[name] = datasets.Sequence(datasets.Value("int8"))
        elif name == "section":
            types[name] = datasets.Value("string")
        elif name == "source_row":
            types[name] = datasets.Value("int64")
        else:
            types[name] = datasets.Value("float64")
    return datasets.Features(types)


def build_feature_table(
    pairs: list[Pair],
    featurize: Callable[[list[Pair]], list[dict]],
    key: str,
    cache_dir: str | Path,
    num_proc: int = 1,
) -> datasets.Dataset:
    """The features of ``pairs`` (``featurize`` may drop pairs, never add any) as a memory-mapped table."""
    folder = Path(cache_dir) / f"features-{key}"
    if (folder / "state.json").exists():
        try:
            table = datasets.load_from_disk(str(folder))
            if len(table):
                table[len(table) - 1]  # the end of the file is there: a table cut short fails here, not mid-run
            logger.info("features: reusing %s", folder)
            return table
        except (OSError, ValueError) as exc:  # pyarrow's read errors are both kinds
            logger.warning("cache table %s is unreadable (%s): building it again", folder, type(exc).__name__)
            shutil.rmtree(folder, ignore_errors=True)
    columns = _columns(pairs, featurize)

    def batch(rows: dict[str, list[int]]) -> dict[str, list]:
        features = featurize([pairs[i] for i in rows["index"]])
        return {name: [f[name] for f in features] for name in columns}

    index = datasets.Dataset.from_dict({"index": list(range(len(pairs)))})
    work = folder.with_name(folder.name + ".building")
    shutil.rmtree(work, ignore_errors=True)
    table = index.map(
        batch,
        batched=True,
        batch_size=BATCH_PAIRS,
        num_proc=num_proc if num_proc > 1 and len(pairs) > BATCH_PAIRS else None,
        remove_columns=["index"],
        features=_arrow_features(columns),
        cache_file_name=str(work / "map" / "features.arrow"),
        new_fingerprint=key,
        desc="tokenising",
    )
    table.save_to_disk(str(work / "table"))
    shutil.rmtree(folder, ignore_errors=True)
    (work / "table").replace(folder)  # the finished table appears at once; a killed build leaves only `.building`
    shutil.rmtree(work, ignore_errors=True)
    logger.info("features: %d pairs tokenised into %s", len(table), folder)
    return datasets.load_from_disk(str(folder))


def _columns(pairs: list[Pair], featurize: Callable[[list[Pair]], list[dict]]) -> list[str]:
    """The featuriser's output columns, from the first pairs it keeps (the table's schema is fixed up front)."""
    for start in range(0, len(pairs), 64):
        probe = featurize(pairs[start : start + 64])
        if probe:
            return list(probe[0])
    return ["margin", "source_row", "section"]  # every pair dropped: an empty table


def dropped_rows(pairs: Sequence[Pair], table: datasets.Dataset) -> list[int]:
    """Source rows of the pairs the featuriser dropped (over-long pairs under overlong: drop)."""
    kept = set(table["source_row"])
    return [p.source_row for p in pairs if p.source_row not in kept]
