"""Loading the shared data and clear errors on bad rows (row number and column named, no silent drops)."""

import json
import math

import pytest

from mmpo.config import DataConfig
from mmpo.data import build_pairs, load_records, prepare_pairs, sample_pairs
from mmpo.errors import DataError
from mmpo.margins import log_vote_ratio
from mmpo.records import Pair


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


def good_row(i=0, sc=8.0, sr=6.0):
    return {
        "prompt": f"question {i}",
        "chosen": f"good answer {i}",
        "rejected": f"bad answer {i}",
        "score_chosen": sc,
        "score_rejected": sr,
    }


def build(rows, tmp_path, **cfg):
    return build_pairs(load_records(write_jsonl(tmp_path / "d.jsonl", rows)), DataConfig(**cfg))


def test_ultrafeedback_nested_metadata_scores(shared_data):
    cfg = DataConfig(on_empty="drop")
    pairs = prepare_pairs(cfg, str(shared_data / "ultrafeedback" / "train_clean.jsonl"))
    raw = [json.loads(line) for line in (shared_data / "ultrafeedback" / "train_clean.jsonl").open()]
    assert len(pairs) == 998  # rows 478 and 833 have an empty response, dropped because on_empty=drop
    by_row = {p.source_row: p for p in pairs}
    for i in (0, 1, 500, 999):
        meta = raw[i]["metadata"]
        assert by_row[i].margin == meta["score_chosen"] - meta["score_rejected"]
        assert by_row[i].chosen == raw[i]["chosen"]
    assert sum(p.margin == 0 for p in pairs) == 111


def test_ultrafeedback_empty_response_is_an_error_by_default(shared_data):
    with pytest.raises(DataError, match=r"row 478: column 'rejected' is empty"):
        prepare_pairs(DataConfig(), str(shared_data / "ultrafeedback" / "train_clean.jsonl"))


def test_rating_columns_of_the_1k_sample(shared_data):
    pairs = prepare_pairs(
        DataConfig(on_empty="drop"), str(shared_data / "ultrafeedback" / "ultrafeedback_sample_1k.jsonl")
    )
    assert len(pairs) > 900
    assert all(p.margin >= 0 for p in pairs)


def test_hh_dialogues_are_split_into_prompt_and_responses(shared_data):
    cfg = DataConfig(margin_source="constant")
    pairs = prepare_pairs(cfg, str(shared_data / "hh_rlhf" / "helpful-base_test.jsonl.gz"), max_samples=50)
    assert len(pairs) == 50
    for p in pairs:
        assert p.prompt.startswith("\n\nHuman:") and p.prompt.endswith("\n\nAssistant:")
        assert "\n\nAssistant:" not in p.chosen[:1]


def test_llmbar_labels_choose_the_winner(shared_data):
    path = shared_data / "llmbar" / "Natural" / "dataset.json"
    raw = json.loads(path.read_text())
    cfg = DataConfig(
        prompt_column="input",
        chosen_column="output_1",
        rejected_column="output_2",
        label_column="label",
        margin_source="constant",
    )
    pairs = prepare_pairs(cfg, str(path))
    assert len(pairs) == len(raw)
    for pair, row in zip(pairs, raw):
        winner = row["output_1"] if str(row["label"]) == "1" else row["output_2"]
        assert pair.chosen == winner and pair.margin == 1.0


def test_pandalm_annotator_votes_with_ties(shared_data):
    cfg = DataConfig(
        prompt_column="instruction",
        chosen_column="response1",
        rejected_column="response2",
        margin_source="annotators",
        annotator_columns=["annotator1", "annotator2", "annotator3"],
        on_negative="swap",
        on_tie="soft",
        on_empty="drop",
    )
    records = load_records(str(shared_data / "pandalm" / "testset-v1.json"))
    with pytest.raises(DataError, match=r"row 157: column 'response1' must be text .* got bool"):
        build_pairs(records, cfg)  # the real file has a few JSON booleans as responses
    records = records.filter(lambda r: isinstance(r["response1"], str) and isinstance(r["response2"], str))
    pairs, stats = build_pairs(records, cfg)
    raw = list(records)
    row = raw[pairs[0].source_row]
    votes = [int(row[f"annotator{k}"]) for k in (1, 2, 3)]
    a, b = votes.count(1), votes.count(2)
    assert pairs[0].margin == pytest.approx(abs(log_vote_ratio(max(a, b), min(a, b))))
    assert stats.ties > 0 and stats.swapped > 0
    assert all(p.margin >= 0 for p in pairs)


def test_missing_column_lists_present_columns(tmp_path):
    rows = [{"prompt": "q", "chosen": "a", "score_chosen": 1, "score_rejected": 0}]
    with pytest.raises(DataError, match=r"missing column\(s\) \['rejected'\].*columns present"):
        build(rows, tmp_path)


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), "seven"])
def test_bad_scores_name_row_and_column(tmp_path, bad):
    rows = [good_row(0), good_row(1, sc=bad)]
    path = tmp_path / "d.jsonl"
    path.write_text("\n".join(json.dumps(r, allow_nan=True) for r in rows) + "\n")
    with pytest.raises(DataError, match=r"row 1: score column 'score_chosen'"):
        build_pairs(load_records(str(path)), DataConfig())


def test_chosen_below_rejected_is_an_error_unless_configured(tmp_path):
    rows = [good_row(0), good_row(1, sc=3.0, sr=7.0)]
    with pytest.raises(DataError, match=r"row 1: chosen is scored below rejected \(margin -4\)"):
        build(rows, tmp_path)
    pairs, stats = build(rows, tmp_path, on_negative="swap")
    assert pairs[1].chosen == "bad answer 1" and pairs[1].margin == 4.0 and stats.swapped == 1
    pairs, stats = build(rows, tmp_path, on_negative="drop")
    assert [p.source_row for p in pairs] == [0] and stats.dropped_negative == [1]


def test_ties_are_soft_by_default_and_can_be_refused(tmp_path):
    rows = [good_row(0), good_row(1, sc=5.0, sr=5.0)]
    pairs, stats = build(rows, tmp_path)
    assert pairs[1].margin == 0.0 and stats.ties == 1
    with pytest.raises(DataError, match="row 1: chosen and rejected are tied"):
        build(rows, tmp_path, on_tie="error")
    pairs, stats = build(rows, tmp_path, on_tie="drop")
    assert len(pairs) == 1 and stats.dropped_ties == [1]


def test_empty_response_names_row(tmp_path):
    rows = [good_row(0), {**good_row(1), "chosen": "   "}]
    with pytest.raises(DataError, match=r"row 1: column 'chosen' is empty"):
        build(rows, tmp_path)


def test_votes_use_log_ratio(tmp_path):
    rows = [{"prompt": "q", "chosen": "a", "rejected": "b", "score_A": 30, "score_B": 2}]
    pairs, _ = build(rows, tmp_path, margin_source="votes")
    assert pairs[0].margin == pytest.approx(math.log(31 / 3))


def test_conversational_rows_use_the_chat_template(tmp_path, smollm2_tokenizer):
    rows = [
        {
            "prompt": [{"role": "user", "content": "Hi there"}],
            "chosen": [{"role": "assistant", "content": "Hello!"}],
            "rejected": [{"role": "assistant", "content": "Go away."}],
            "score_chosen": 9,
            "score_rejected": 2,
        }
    ]
    pairs, _ = build_pairs(load_records(write_jsonl(tmp_path / "c.jsonl", rows)), DataConfig(), smollm2_tokenizer)
    assert pairs[0].prompt.endswith("<|im_start|>assistant\n")
    assert pairs[0].chosen.startswith("Hello!") and pairs[0].rejected.startswith("Go away.")


def test_unknown_file_type_and_missing_file(tmp_path):
    (tmp_path / "x.txt").write_text("hi")
    with pytest.raises(DataError, match="cannot tell the format"):
        load_records(str(tmp_path / "x.txt"))
    with pytest.raises(DataError, match="does not exist"):
        load_records(str(tmp_path / "nope.jsonl"))


def test_parquet_loads(tmp_path):
    import datasets

    datasets.Dataset.from_list([good_row(0), good_row(1)]).to_parquet(str(tmp_path / "d.parquet"))
    assert len(load_records(str(tmp_path / "d.parquet"))) == 2


def test_shp_style_sampling():
    pairs = [Pair(f"p{i % 3}", "a", "b", float(i), i) for i in range(30)]
    capped = sample_pairs(pairs, max_pairs_per_prompt=5, seed=1)
    assert len(capped) == 15
    assert all(sum(p.prompt == k for p in capped) == 5 for k in ("p0", "p1", "p2"))
    assert capped == sample_pairs(pairs, max_pairs_per_prompt=5, seed=1)
    top = sample_pairs(pairs, quartiles=[4])
    assert min(p.margin for p in top) > 21 and len(top) == 7
    with pytest.raises(DataError, match="1..4"):
        sample_pairs(pairs, quartiles=[5])
    above = sample_pairs(pairs, min_margin=25.0)  # the paper's DPO_{>k}: strictly above k
    assert [p.margin for p in above] == [26.0, 27.0, 28.0, 29.0]


def test_label_column_with_score_margins_is_a_config_error():
    from mmpo.errors import ConfigError

    with pytest.raises(ConfigError, match="label_column only applies"):
        DataConfig(label_column="label", margin_source="scores").validate()


def test_negative_votes_are_refused(tmp_path):
    rows = [{"prompt": "q", "chosen": "a", "rejected": "b", "score_A": -3, "score_B": 2}]
    with pytest.raises(DataError, match="row 0: chosen vote count -3.0 must be a finite number >= 0"):
        build(rows, tmp_path, margin_source="votes")


def test_binarized_rows_whose_responses_repeat_the_prompt(tmp_path, smollm2_tokenizer):
    """allenai/ultrafeedback_binarized_cleaned: prompt is text, chosen/rejected are [user, assistant] lists."""
    row = {
        "prompt": "Hi there",
        "chosen": [{"role": "user", "content": "Hi there"}, {"role": "assistant", "content": "Hello!"}],
        "rejected": [{"role": "user", "content": "Hi there"}, {"role": "assistant", "content": "Go away."}],
        "score_chosen": 9,
        "score_rejected": 2,
    }
    (pair,), _ = build_pairs(load_records(write_jsonl(tmp_path / "b.jsonl", [row])), DataConfig(), smollm2_tokenizer)
    assert pair.prompt.count("Hi there") == 1 and pair.prompt.endswith("<|im_start|>assistant\n")
    assert pair.chosen.startswith("Hello!") and pair.rejected.startswith("Go away.")


def test_json_lines_name_the_line_that_does_not_parse(tmp_path):
    from mmpo.commands.annotate import already_done
    from mmpo.data.io import json_lines
    from mmpo.errors import DataError

    path = tmp_path / "rows.jsonl"
    path.write_text('{"source_row": 0}\n\n{"source_row": 4}\n{"source_row": 5', encoding="utf-8")
    rows = json_lines(path)
    assert next(rows) == (1, {"source_row": 0}) and next(rows) == (3, {"source_row": 4})
    with pytest.raises(DataError, match=r"rows.jsonl: line 4 is not valid JSON \(Expecting"):
        next(rows)
    with pytest.raises(DataError, match=r"line 4 is not an annotated row; remove it to resume"):
        already_done(path)  # a run killed mid-write
    path.write_text('{"source_row": 0}\n{"score": 3}\n', encoding="utf-8")
    with pytest.raises(DataError, match=r"line 2 is not an annotated row; remove it to resume"):
        already_done(path)
    path.write_text('{"source_row": 0}\n{"source_row": 2}\n', encoding="utf-8")
    assert already_done(path) == {0, 2}


def test_evaluation_caps_each_file_at_max_eval_samples(shared_data):
    from mmpo.config import DataConfig
    from mmpo.evaluation.pair_eval import load_eval_pairs

    path = str(shared_data / "ultrafeedback" / "eval_clean.jsonl")
    everything = load_eval_pairs([path], DataConfig(on_empty="drop"), None)
    capped = load_eval_pairs([path], DataConfig(on_empty="drop", max_eval_samples=16), None)
    assert len(everything) > 16 and len(capped) == 16
    assert {p.source_row for p in capped} < {p.source_row for p in everything}


def test_shp_recipe_reads_raw_vote_differences(tmp_path):
    """The bundled SHP recipe, as the official run_dpo_shp.py: margin = |score_A - score_B| with the pair oriented
    by the votes, at most 5 pairs per post, sampled across the margin quartiles."""
    from mmpo.config import load_config, resolve_config_path
    from mmpo.data.prepare import prepare_pairs

    rows = []
    for post in range(6):
        for k in range(7):  # 7 pairs per post: 5 kept
            a, b = 3 * k + post, 10 + post
            rows.append(
                {
                    "history": f"post {post}?",
                    "human_ref_A": f"reply A{k}",
                    "human_ref_B": f"reply B{k}",
                    "score_A": a,
                    "score_B": b,
                }
            )
    rows = [r for r in rows if r["score_A"] != r["score_B"]]
    path = write_jsonl(tmp_path / "shp.jsonl", rows)
    cfg = load_config(str(resolve_config_path("paper_gemma2b_shp_policy")), [f"data.train_path={path}"])
    assert cfg.data.margin_source == "scores" and cfg.data.stratify_margin_quartiles
    assert (cfg.max_length, cfg.max_prompt_length) == (1024, 512)
    pairs = prepare_pairs(cfg.data, path)
    by_text = {(r["human_ref_A"], r["human_ref_B"], r["history"]): r for r in rows}
    for pair in pairs:
        row = (
            by_text.get((pair.chosen, pair.rejected, pair.prompt)) or by_text[(pair.rejected, pair.chosen, pair.prompt)]
        )
        assert pair.margin == abs(row["score_A"] - row["score_B"])
        winner = "human_ref_A" if row["score_A"] > row["score_B"] else "human_ref_B"
        assert pair.chosen == row[winner]
    per_post = {}
    for pair in pairs:
        per_post[pair.prompt] = per_post.get(pair.prompt, 0) + 1
    assert max(per_post.values()) <= 5


def test_a_train_mixture_takes_each_source_under_its_own_settings(shared_data, tmp_path, caplog):
    """Two sources as TRL's dataset_mixture: UltraFeedback with its GPT-4 score margins (a fraction of it), and
    LLMBar with a column map and label-directed constant margins (a count of it); written as YAML with train_path
    listing the sources."""
    import yaml

    from mmpo.config import load_config
    from mmpo.data.mixture import train_pairs

    uf = str(shared_data / "ultrafeedback" / "eval_clean.jsonl")
    llmbar = str(shared_data / "llmbar" / "Natural" / "dataset.json")
    config = {
        "kind": "reward",
        "data": {
            "train_path": [
                {"path": uf, "fraction": 0.25},
                {
                    "path": llmbar,
                    "count": 10,
                    "prompt_column": "input",
                    "chosen_column": "output_1",
                    "rejected_column": "output_2",
                    "label_column": "label",
                    "margin_source": "constant",
                    "constant_margin": 3.0,
                },
            ]
        },
    }
    (tmp_path / "mix.yaml").write_text(yaml.safe_dump(config))
    cfg = load_config(tmp_path / "mix.yaml")
    assert [s["path"] for s in cfg.data.train_mixture] == [uf, llmbar] and cfg.data.train_path == ""
    caplog.set_level("INFO", logger="mmpo")
    pairs = train_pairs(cfg.data, None, 0)
    assert len(pairs) == 50 + 10
    uf_rows = [json.loads(line) for line in open(uf)]
    scores = [r["metadata"] for r in uf_rows]
    assert [p.margin for p in pairs[:50]] == [
        scores[p.source_row]["score_chosen"] - scores[p.source_row]["score_rejected"] for p in pairs[:50]
    ]
    assert {p.margin for p in pairs[50:]} == {3.0}
    assert f"train mixture: {uf}: 50 of 200 pairs; {llmbar}: 10 of 100 pairs" in caplog.text
    assert [p.source_row for p in train_pairs(cfg.data, None, 0)] == [p.source_row for p in pairs]  # seeded


@pytest.mark.parametrize(
    "source,message",
    [
        (
            {"path": "a.jsonl", "count": 3, "fraction": 0.5},
            r"data.train_mixture\[0\]: give count or fraction, not both",
        ),
        ({"path": "a.jsonl", "fraction": 1.5}, r"data.train_mixture\[0\].fraction must be in \(0, 1\] \(got 1.5\)"),
        ({"path": "a.jsonl", "colour": "red"}, r"data.train_mixture\[0\]: unknown data setting\(s\) \['colour'\]"),
        ({"count": 3}, r"data.train_mixture\[0\] needs a path"),
        ({"path": "a.jsonl", "on_tie": "maybe"}, r"data.on_tie = 'maybe'"),
    ],
)
def test_a_bad_mixture_source_is_named(source, message):
    from mmpo.errors import ConfigError

    with pytest.raises(ConfigError, match=message):
        DataConfig(train_mixture=[source]).validate()
