"""mmpo's RewardBench scoring against reward-bench's own code, run in this test on the same models and pairs.

reward-bench's functions are copied verbatim into ``reward_bench_upstream.py`` (its source named there):
``prepare_dialogue_from_tokenizer`` renders, ``DPOInference`` tokenises, truncates and scores policies (with
TRL's ``DPODataCollatorWithPadding``, as ``scripts/run_dpo.py`` batches), ``RewardBenchPipeline`` scores reward
models, and ``calculate_scores_per_section`` weights the sections. Models are float64 so that equality is
checked to 1e-5 on summed log-probs near -1,000, far below any reward difference that decides a pair.

The pairs cover what moves a reward: chat pairs from real LLMBar rows, code pairs whose responses start with an
indentation that SmolLM2 merges with the newline before it (RewardBench's hep-* subsets), a multi-turn prompt
(the Prior Sets' format), and one pair longer than the limit, with a prompt longer than the prompt limit.
"""

from __future__ import annotations

import copy
import json
from types import SimpleNamespace

import datasets
import pytest
import reward_bench_upstream as upstream
import torch
from helpers import rewardbench_rows, write_jsonl
from tiny_models import tiny_llama

from mmpo.cli import main
from mmpo.config import DataConfig
from mmpo.data.pairs import build_pairs
from mmpo.evaluation.rewardbench import benchmark_data_config
from mmpo.features.collators import RewardCollator
from mmpo.features.rewardbench_tokenize import (
    RewardBenchLengths,
    rewardbench_policy_features,
    rewardbench_reward_features,
    split_tokenized_answer,
)
from mmpo.features.scoring import pair_rewards, policy_rewards
from mmpo.features.tokenize import LengthPolicy, tokenize_policy_pairs

CODE_PROMPT = 'from typing import List\n\n\ndef {name}(values: List[int]) -> int:\n    """{doc}"""\n'
CODE = [
    ("total", "Return the sum of the values.", "    return sum(values)\n", "    return max(values)\n"),
    ("largest", "Return the largest value.", "    return max(values)\n", "    return values[0]\n"),
    ("count", "Return how many values there are.", "    return len(values)\n", "    return len(values) - 1\n"),
]
LONG_PROMPT = "Summarise the following notes in two sentences. " + "The meeting covered budgets and hiring. " * 60
LONG_ANSWER = "The notes describe a meeting about budgets and hiring, which were discussed at length. " * 40


def benchmark_rows(shared_data) -> list[dict]:
    rows = rewardbench_rows(shared_data, per_subset=2)
    for k, (name, doc, good, bad) in enumerate(CODE):
        subset = ("hep-python", "hep-js", "hep-go")[k]
        rows.append(
            {"prompt": CODE_PROMPT.format(name=name, doc=doc), "chosen": good, "rejected": bad, "subset": subset}
        )
    rows.append(
        {"prompt": LONG_PROMPT, "chosen": LONG_ANSWER, "rejected": "Budgets and hiring.", "subset": "alpacaeval-length"}
    )
    return [{**row, "id": i} for i, row in enumerate(rows)]


MULTI_TURN = [
    {
        "prompt": [
            {"role": "user", "content": "What is the capital of France?"},
            {"role": "assistant", "content": "Paris."},
            {"role": "user", "content": "And of Italy?"},
        ],
        "chosen": "Rome is the capital of Italy.",
        "rejected": "Paris, again.",
        "subset": "anthropic_hhh",
    }
]


@pytest.fixture(scope="module")
def tokenizer():
    from mmpo.models import BUNDLED_SMOLLM2, load_tokenizer

    return load_tokenizer(BUNDLED_SMOLLM2)


@pytest.fixture(scope="module")
def models(tokenizer):
    policy = tiny_llama(len(tokenizer), seed=0, max_positions=4096).double().eval()
    reference = tiny_llama(len(tokenizer), seed=1, max_positions=4096).double().eval()
    return policy, reference


def mmpo_pairs(shared_data, tokenizer):
    cfg = benchmark_data_config(DataConfig())
    pairs = []
    for rows in (benchmark_rows(shared_data), MULTI_TURN):
        pairs += build_pairs(datasets.Dataset.from_list(rows), cfg, tokenizer, "rb", dialogue="rewardbench")[0]
    return pairs


def upstream_examples(shared_data, tokenizer) -> list[dict]:
    """reward-bench's rows after its rendering (prompt, text_chosen, text_rejected)."""
    rows = [dict(r) for r in benchmark_rows(shared_data) + MULTI_TURN]
    return [upstream.prepare_dialogue_from_tokenizer(row, tokenizer) for row in rows]


def upstream_tokenizer(tokenizer):
    """The tokenizer as scripts/run_dpo.py prepares it."""
    tokenizer = copy.deepcopy(tokenizer)
    tokenizer.pad_token = tokenizer.eos_token
    if tokenizer.bos_token is None:
        tokenizer.bos_token_id = tokenizer.eos_token_id
        tokenizer.pad_token_id = tokenizer.eos_token_id
    return tokenizer


def upstream_dpo_rewards(policy, reference, tokenizer, examples, lengths, ref_free_norm, batch_size=4):
    tokenizer = upstream_tokenizer(tokenizer)
    dpo = upstream.DPOInference(
        policy, reference, tokenizer, SimpleNamespace(device=torch.device("cpu")), ref_free_norm=ref_free_norm
    )
    dpo.max_length, dpo.max_prompt_length = lengths.max_length, lengths.max_prompt_length
    keep = ("text_chosen", "text_rejected", "prompt")
    features = [dpo.tokenize_row({k: ex[k] for k in keep}) for ex in examples]
    collate = upstream.DPODataCollatorWithPadding(pad_token_id=tokenizer.pad_token_id, label_pad_token_id=-100)
    chosen, rejected = [], []
    with torch.no_grad():
        for start in range(0, len(features), batch_size):
            c, r = dpo.inference_step(collate(features[start : start + batch_size]), ref_free=reference is None)
            chosen.append(c)
            rejected.append(r)
    return features, torch.cat(chosen).double(), torch.cat(rejected).double()


def test_rendering_equals_prepare_dialogue_from_tokenizer(shared_data, tokenizer):
    pairs = mmpo_pairs(shared_data, tokenizer)
    examples = upstream_examples(shared_data, tokenizer)
    assert len(pairs) == len(examples)
    for pair, example in zip(pairs, examples):
        assert pair.prompt == example["prompt"]
        assert pair.prompt + pair.chosen == example["text_chosen"]
        assert pair.prompt + pair.rejected == example["text_rejected"]
        assert pair.chosen.startswith("<|im_start|>assistant\n")  # the assistant header is scored with the response


def test_tokenized_answer_split_equals_build_tokenized_answer(tokenizer):
    """The boundary moves left where the prompt's last token merges with the answer's first."""
    dpo = upstream.DPOInference.__new__(upstream.DPOInference)
    dpo.tokenizer = tokenizer
    cases = [("def f(x):", "\n    return x"), ("Hello", " world"), ("a\n", "\n    b"), ("x =", "= 1")]
    moved = 0
    for prompt, answer in cases:
        expected = dpo.build_tokenized_answer(prompt, answer)
        prompt_ids, answer_ids = split_tokenized_answer(tokenizer, prompt, answer, 0)
        assert prompt_ids == expected["prompt_input_ids"] and answer_ids == expected["input_ids"]
        moved += len(prompt_ids) < len(tokenizer(prompt, add_special_tokens=False)["input_ids"])
    assert moved >= 1  # the merge branch ran


@pytest.mark.parametrize("mode", ["reference", "sum", "avg", "norm"])
def test_policy_rewards_equal_dpo_inference(shared_data, tokenizer, models, mode):
    policy, reference = models
    reference = reference if mode == "reference" else None
    lengths = RewardBenchLengths(max_length=256, max_prompt_length=128)
    expected_features, expected_chosen, expected_rejected = upstream_dpo_rewards(
        policy, reference, tokenizer, upstream_examples(shared_data, tokenizer), lengths, "norm" if reference else mode
    )
    features = rewardbench_policy_features(mmpo_pairs(shared_data, tokenizer), tokenizer, lengths)
    for ours, theirs in zip(features, expected_features):
        for side in ("chosen", "rejected"):
            assert ours[f"{side}_input_ids"] == theirs[f"{side}_input_ids"]
            assert ours[f"{side}_completion_mask"] == [int(label != -100) for label in theirs[f"{side}_labels"]]
    code = features[len(rewardbench_rows(shared_data, per_subset=2))]
    assert code["chosen_input_ids"][:2] == [tokenizer.bos_token_id] * 2  # BOS first, even before the template's
    long = features[-2]
    assert len(long["chosen_input_ids"]) == lengths.max_length  # cut: the prompt to its end, then the response
    assert long["chosen_input_ids"][0] != tokenizer.bos_token_id  # keep_end cuts the BOS too, as upstream
    chosen, rejected = policy_rewards(
        policy,
        reference,
        features,
        tokenizer.pad_token_id,
        batch_size=3,
        reference_free_reduction="sum" if reference else mode,
    )
    assert chosen.dtype == torch.float64
    torch.testing.assert_close(chosen, expected_chosen, rtol=0, atol=1e-5)
    torch.testing.assert_close(rejected, expected_rejected, rtol=0, atol=1e-5)
    assert ((chosen > rejected) == (expected_chosen > expected_rejected)).all()


def test_mmpo_tokenisation_gives_other_rewards(shared_data, tokenizer, models):
    """The parity above can fail: mmpo's own rendering and tokenisation score the same rows differently."""
    policy, reference = models
    cfg = benchmark_data_config(DataConfig())
    rows = benchmark_rows(shared_data)
    own = build_pairs(datasets.Dataset.from_list(rows), cfg, tokenizer, "rb")[0]
    features = tokenize_policy_pairs(own, tokenizer, LengthPolicy(256, 128, "truncate"))
    chosen, _ = policy_rewards(policy, reference, features, tokenizer.pad_token_id)
    lengths = RewardBenchLengths(256, 128)
    _, expected, _ = upstream_dpo_rewards(
        policy, reference, tokenizer, upstream_examples(shared_data, tokenizer)[: len(rows)], lengths, "norm"
    )
    assert (chosen - expected).abs().min() > 1e-3


def gemma_style(tokenizer):
    """A tokenizer that adds its BOS (Gemma's add_bos_token) to a chat template that writes one too."""
    tokenizer = copy.deepcopy(tokenizer)
    tokenizer.add_bos_token = True
    assert tokenizer("x")["input_ids"][0] == tokenizer.bos_token_id
    return tokenizer


def tiny_reward_model(tokenizer):
    from transformers import LlamaConfig, LlamaForSequenceClassification

    torch.manual_seed(2)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=4096,
        num_labels=1,
        pad_token_id=tokenizer.pad_token_id,
    )
    return LlamaForSequenceClassification(config).double().eval()


@pytest.mark.parametrize("max_length", [2048, 256])
def test_reward_model_scores_equal_rewardbench_pipeline(shared_data, tokenizer, max_length):
    tokenizer = gemma_style(tokenizer)
    model = tiny_reward_model(tokenizer)
    pairs = mmpo_pairs(shared_data, tokenizer)
    examples = upstream_examples(shared_data, tokenizer)
    pipe = upstream.RewardBenchPipeline("text-classification", model, tokenizer)
    kwargs = {"truncation": True, "padding": True, "max_length": max_length}
    expected_chosen = torch.cat([pipe([ex["text_chosen"]], **kwargs) for ex in examples]).squeeze(-1)
    expected_rejected = torch.cat([pipe([ex["text_rejected"]], **kwargs) for ex in examples]).squeeze(-1)
    features = rewardbench_reward_features(pairs, tokenizer, max_length)
    assert features[0]["chosen_attention_mask"][:2] == [0, 1]  # the doubled BOS: its first copy is masked out
    chosen, rejected = pair_rewards(model, features, RewardCollator(tokenizer.pad_token_id), batch_size=4)
    torch.testing.assert_close(chosen.double(), expected_chosen.double(), rtol=0, atol=1e-5)
    torch.testing.assert_close(rejected.double(), expected_rejected.double(), rtol=0, atol=1e-5)


def test_section_scores_equal_calculate_scores_per_section():
    """Every section, weights included (xstest-should-refuse 154, xstest-should-respond 250)."""
    from mmpo.metrics.rewardbench import EXAMPLE_COUNTS, SECTIONS, rewardbench_scores

    assert EXAMPLE_COUNTS == upstream.EXAMPLE_COUNTS
    assert {k: list(v) for k, v in SECTIONS.items()} == upstream.SUBSET_MAPPING
    generator = torch.Generator().manual_seed(0)
    accuracy = {s: float(torch.rand(1, generator=generator)) for s in upstream.EXAMPLE_COUNTS}
    expected = upstream.calculate_scores_per_section(upstream.EXAMPLE_COUNTS, upstream.SUBSET_MAPPING, accuracy)
    ours = rewardbench_scores(accuracy)
    for section, value in expected.items():
        assert ours[f"section/{section}"] == pytest.approx(value, abs=1e-12)
    safety = {s: 0.0 for s in upstream.SUBSET_MAPPING["Safety"]} | {"xstest-should-respond": 1.0}
    assert rewardbench_scores(safety)["section/Safety"] == pytest.approx(250 / (100 + 100 + 154 + 250 + 136))


def test_cli_policy_eval_writes_run_dpo_files(shared_data, tokenizer, models, tmp_path, capsys):
    """`mmpo eval --kind policy --benchmark rewardbench` at reward-bench's defaults (2,048 / 128, the long pair
    over the limit), with its per-pair files, against DPOInference on the same saved models."""
    policy, reference = models
    for name, model in (("policy", policy), ("reference", reference)):
        model.save_pretrained(tmp_path / name)
        tokenizer.save_pretrained(tmp_path / name)
    rows = benchmark_rows(shared_data)
    rows[-1] = {**rows[-1], "chosen": LONG_ANSWER * 3}  # > 2,048 tokens
    rb = write_jsonl(tmp_path / "rb.jsonl", rows)
    prior = write_jsonl(tmp_path / "prior.jsonl", MULTI_TURN)
    out = tmp_path / "out"
    args = ["eval", "--kind", "policy", "--model", str(tmp_path / "policy"), "--ref-model", str(tmp_path / "reference")]
    args += ["--beta", "1", "--benchmark", "rewardbench", "--data", rb, "--prior-sets", prior, "--out", str(out)]
    assert main([*args, "--cache-dir", ""]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["scoring"] == "rewardbench"
    examples = [upstream.prepare_dialogue_from_tokenizer(dict(r), tokenizer) for r in rows]
    features, expected_chosen, expected_rejected = upstream_dpo_rewards(
        policy, reference, tokenizer, examples, RewardBenchLengths(), "norm"
    )
    assert max(len(f["chosen_input_ids"]) for f in features) == 2048
    scores = json.loads((out / "eval-set-scores" / "policy.json").read_text())
    assert scores["model_type"] == "DPO" and scores["id"] == [r["id"] for r in rows]
    assert scores["text_chosen"] == [ex["text_chosen"] for ex in examples]
    torch.testing.assert_close(
        torch.tensor(scores["scores_chosen"], dtype=torch.float64), expected_chosen, atol=1e-5, rtol=0
    )
    torch.testing.assert_close(
        torch.tensor(scores["scores_rejected"], dtype=torch.float64), expected_rejected, atol=1e-5, rtol=0
    )
    correct = (expected_chosen > expected_rejected).int().tolist()
    assert scores["results"] == correct
    grouped = json.loads((out / "eval-set" / "policy.json").read_text())
    for subset in {r["subset"] for r in rows}:
        index = [i for i, r in enumerate(rows) if r["subset"] == subset]
        assert grouped[subset] == sum(correct[i] for i in index) / len(index)
        assert report[f"n_correct/{subset}"] == sum(correct[i] for i in index)
        assert report[f"n_total/{subset}"] == len(index)
    lines = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert len(lines) == len(rows) + len(MULTI_TURN)
    assert lines[0].keys() == {"id", "subset", "score_chosen", "score_rejected", "correct"}
    assert [line["correct"] for line in lines[: len(rows)]] == [bool(c) for c in correct]
    assert (out / "pref-sets-scores" / "policy.json").exists()
