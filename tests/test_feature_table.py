"""Training features in a cached Arrow table: the same rows as tokenising to lists, int32 on disk, built once."""

from __future__ import annotations

import json

import datasets
import pytest

from mmpo.errors import DataError
from mmpo.features.feature_table import build_feature_table, dropped_rows, features_key
from mmpo.features.reference import features_fingerprint
from mmpo.features.tokenize import LengthPolicy, tokenize_policy_pairs, tokenize_reward_pairs
from mmpo.records import Pair


def ultrafeedback_pairs(shared_data, count: int) -> list[Pair]:
    rows = [json.loads(line) for line in (shared_data / "ultrafeedback" / "train_clean.jsonl").open()][:count]
    return [
        Pair(
            r["prompt"], r["chosen"], r["rejected"], r["metadata"]["score_chosen"] - r["metadata"]["score_rejected"], i
        )
        for i, r in enumerate(rows)
    ]


def policy_table(pairs, tokenizer, length, cache_dir, num_proc=1, calls=None):
    def featurize(batch):
        if calls is not None:
            calls.append(len(batch))
        return tokenize_policy_pairs(batch, tokenizer, length, report=False)

    key = features_key(pairs, tokenizer, "policy", length)
    return build_feature_table(pairs, featurize, key, cache_dir, num_proc)


def test_the_table_holds_what_tokenising_to_lists_gives(tmp_path, shared_data, smollm2_tokenizer):
    pairs = ultrafeedback_pairs(shared_data, 120)
    length = LengthPolicy(256, 128, "drop")
    table = policy_table(pairs, smollm2_tokenizer, length, tmp_path)
    rows = tokenize_policy_pairs(pairs, smollm2_tokenizer, length)
    assert 0 < len(rows) < len(pairs)  # some UltraFeedback pairs are over 256 tokens: dropped in both
    assert table.to_list() == rows
    assert dropped_rows(pairs, table) == sorted(set(p.source_row for p in pairs) - {r["source_row"] for r in rows})
    assert table.features["chosen_input_ids"].feature.dtype == "int32"
    assert table.features["chosen_completion_mask"].feature.dtype == "int8"
    # the reference cache key does not depend on how the features are held
    assert features_fingerprint(table) == features_fingerprint(rows)


def test_the_table_is_built_once_and_then_opened(tmp_path, shared_data, smollm2_tokenizer):
    pairs = ultrafeedback_pairs(shared_data, 40)
    length = LengthPolicy(1024, 512, "truncate")
    calls: list[int] = []
    first = policy_table(pairs, smollm2_tokenizer, length, tmp_path, calls=calls)
    assert sum(calls) >= len(pairs)
    calls.clear()
    again = policy_table(pairs, smollm2_tokenizer, length, tmp_path, calls=calls)
    assert calls == []  # a cache hit: nothing tokenised
    assert again.to_list() == first.to_list()
    assert again.cache_files and all("features-" in f["filename"] for f in again.cache_files)  # memory-mapped file
    changed = policy_table(pairs, smollm2_tokenizer, LengthPolicy(512, 256, "truncate"), tmp_path, calls=calls)
    assert calls  # another length: another key, tokenised again
    assert len(changed) == len(first)


def test_several_processes_build_the_same_table(tmp_path, shared_data, minilm_tokenizer, monkeypatch):
    import mmpo.features.feature_table as feature_table

    monkeypatch.setattr(feature_table, "BATCH_PAIRS", 16)  # 60 pairs: four batches over two processes
    pairs = ultrafeedback_pairs(shared_data, 60)
    length = LengthPolicy(128, 64, "truncate")
    key = features_key(pairs, minilm_tokenizer, "reward", length)

    def featurize(batch):
        return tokenize_reward_pairs(batch, minilm_tokenizer, length, report=False)

    two = build_feature_table(pairs, featurize, key, tmp_path / "two", num_proc=2)
    one = build_feature_table(pairs, featurize, key, tmp_path / "one", num_proc=1)
    assert two.to_list() == one.to_list() == tokenize_reward_pairs(pairs, minilm_tokenizer, length)
    assert isinstance(two, datasets.Dataset) and "chosen_token_type_ids" in two.column_names


def test_an_overlong_pair_is_still_an_error_naming_its_row(tmp_path, shared_data, smollm2_tokenizer):
    pairs = ultrafeedback_pairs(shared_data, 30)
    with pytest.raises(DataError, match=r"row \d+: prompt\+\w+ is \d+ tokens, over max_length 64"):
        policy_table(pairs, smollm2_tokenizer, LengthPolicy(64, 32, "error"), tmp_path)
    assert not list(tmp_path.glob("features-*/state.json"))  # nothing half-built is left to be reused
