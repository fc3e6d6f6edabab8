"""Over-long pairs, reward-model encodings, and similarity-based margins."""

from dataclasses import replace

import pytest
import torch

from mmpo.config import DataConfig
from mmpo.data import build_pairs, load_records
from mmpo.errors import DataError
from mmpo.features.tokenize import LengthPolicy, tokenize_policy_pairs, tokenize_reward_pairs
from mmpo.margins.similarity import SimilarityMarginEstimator
from mmpo.records import Pair

LONG = Pair(prompt="word " * 80, chosen="yes " * 60, rejected="no", margin=1.0, source_row=7)


def test_overlong_pair_is_an_error_naming_the_row(smollm2_tokenizer):
    with pytest.raises(DataError, match=r"row 7: prompt\+chosen is \d+ tokens, over max_length 64"):
        tokenize_policy_pairs([LONG], smollm2_tokenizer, LengthPolicy(64, 32, "error"))


def test_overlong_truncate_keeps_prompt_end_and_response_start(smollm2_tokenizer):
    (feature,) = tokenize_policy_pairs([LONG], smollm2_tokenizer, LengthPolicy(64, 32, "truncate"))
    ids, mask = feature["chosen_input_ids"], feature["chosen_completion_mask"]
    assert len(ids) == 64 and mask.count(0) == 32 and mask[-1] == 1
    assert smollm2_tokenizer.decode(ids[32:]).startswith("yes")


def test_overlong_drop_reports_and_skips(smollm2_tokenizer, caplog):
    short = replace(LONG, prompt="hi", chosen="yes", source_row=8)
    out = tokenize_policy_pairs([LONG, short], smollm2_tokenizer, LengthPolicy(64, 32, "drop"))
    assert [f["source_row"] for f in out] == [8]
    assert "dropped 1 over-long pairs" in caplog.text


def test_reward_encoding_uses_pair_template_and_fits(minilm_tokenizer):
    (feature,) = tokenize_reward_pairs([LONG], minilm_tokenizer, LengthPolicy(48, 16, "truncate"))
    ids = feature["chosen_input_ids"]
    assert len(ids) == 48
    assert ids[0] == minilm_tokenizer.cls_token_id and ids.count(minilm_tokenizer.sep_token_id) == 2
    assert set(feature["chosen_token_type_ids"]) == {0, 1}


def test_similarity_margins():
    estimator = SimilarityMarginEstimator()
    same = "The capital of France is Paris."
    margins = estimator.margins(
        [same, same, "Paris is the capital of France."],
        [same, "I like turtles and long walks.", "The capital of France is Paris."],
        scale=2.0,
    )
    assert margins[0] == pytest.approx(0.0, abs=1e-5)
    assert margins[1] > 1.0  # unrelated: cosine near 0 -> margin near scale
    assert 0 < margins[2] < 0.4  # paraphrase: small margin, a soft preference


def test_similarity_source_in_pair_builder_keeps_label_direction_and_ties(tmp_path):
    import json

    rows = [
        {"q": "Capital of France?", "a": "Paris.", "b": "I like turtles.", "label": "1"},
        {"q": "Capital of France?", "a": "I like turtles.", "b": "Paris.", "label": "2"},
        {"q": "Capital of France?", "a": "Paris.", "b": "It is Paris.", "label": "0"},
    ]
    path = tmp_path / "s.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    cfg = DataConfig(
        prompt_column="q", chosen_column="a", rejected_column="b", label_column="label", margin_source="similarity"
    )
    pairs, stats = build_pairs(load_records(str(path)), cfg)
    assert pairs[0].chosen == "Paris." and pairs[1].chosen == "Paris."
    assert pairs[0].margin == pytest.approx(pairs[1].margin) and pairs[0].margin > 0.5
    assert pairs[2].margin == 0.0 and stats.ties == 1


def test_length_sorted_embedding_keeps_input_order():
    from mmpo.models.embeddings import SentenceEmbedder

    embedder = SentenceEmbedder(batch_size=2)
    texts = ["a much longer sentence about the weather in spring", "short", "medium length text", "x"]
    together = embedder.embed(texts)
    one_by_one = [embedder.embed([t])[0] for t in texts]
    for row, single in zip(together, one_by_one):
        assert float((row - single).abs().max()) < 1e-5


def test_embedding_cache_is_per_text(tmp_path, caplog):
    """A second call with more texts embeds only the new ones (one new shard) and returns what a fresh
    embedding would, in the order asked."""
    from mmpo.models.embeddings import SentenceEmbedder

    caplog.set_level("INFO", logger="mmpo")
    embedder = SentenceEmbedder(batch_size=2)
    first = ["a short prompt", "a reply", "another reply"]
    second = ["a new text", "another reply", "a short prompt", "one more"]
    embedder.cached_embed(first, tmp_path)
    assert "from the cache" not in caplog.text
    caplog.clear()
    embedded: list[str] = []
    original = embedder.embed
    embedder.embed = lambda texts, show_progress=False: embedded.extend(texts) or original(texts)
    got = embedder.cached_embed(second, tmp_path)
    assert embedded == ["a new text", "one more"]
    assert "2 of 4 texts from the cache" in caplog.text
    assert len(list(tmp_path.glob("embeddings-*/*.safetensors"))) == 2
    torch.testing.assert_close(got, original(second), rtol=0, atol=1e-6)
    embedded.clear()
    embedder.cached_embed(second[::-1], tmp_path)
    assert embedded == []


def test_truncation_keeps_one_prompt_for_both_sides(smollm2_tokenizer):
    """As TRL: the prompt is cut once, for the longer response, so chosen and rejected condition on the same
    prompt; then each response keeps what is left."""
    pair = Pair("word " * 80, "long answer " * 60, "short.", 1.0, 0)
    (features,) = tokenize_policy_pairs([pair], smollm2_tokenizer, LengthPolicy(96, 32, "truncate"))
    prompts = []
    for side in ("chosen", "rejected"):
        ids, mask = features[f"{side}_input_ids"], features[f"{side}_completion_mask"]
        assert len(ids) <= 96
        prompts.append(ids[: mask.index(1)])
    assert prompts[0] == prompts[1] and len(prompts[0]) == 32
    assert smollm2_tokenizer.decode(features["rejected_input_ids"][32:]).startswith("short.")


def test_stratified_sampling_takes_each_margin_quartile_equally():
    from mmpo.data.sampling import margin_quartile, margin_quartile_edges, stratified_by_quartile

    margins = [1.0] * 40 + [2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0] * 5 + [50.0 + i for i in range(20)]
    pairs = [Pair(f"p{i}", "a", "b", m, i) for i, m in enumerate(margins)]
    edges = margin_quartile_edges(margins)
    sample = stratified_by_quartile(pairs, 40, seed=3)
    counts = [sum(margin_quartile(p.margin, edges) == q for p in sample) for q in (1, 2, 3, 4)]
    assert len(sample) == 40 and counts == [10, 10, 10, 10]
    assert [p.source_row for p in sample] == sorted(p.source_row for p in sample)  # file order kept
    assert stratified_by_quartile(pairs, 40, seed=3) == sample  # seeded
    sizes = [sum(margin_quartile(m, edges) == q for m in margins) for q in (1, 2, 3, 4)]
    assert len(stratified_by_quartile(pairs, 0)) == 4 * min(sizes)  # no count: the smallest quartile sets it
    # a plain random cap would mirror the skew (40 of 100 pairs have margin 1)
    from mmpo.data.prepare import cap_samples

    capped = cap_samples(pairs, 40, seed=3)
    assert sum(margin_quartile(p.margin, edges) == 1 for p in capped) > 10
