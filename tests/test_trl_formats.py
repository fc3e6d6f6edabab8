"""TRL's dataset formats (https://huggingface.co/docs/trl/dataset_formats), one test per format, on files built
with exactly the columns and types of the hub set ``trl-internal-testing/zen``: its rows below are copied from
huggingface/trl scripts/generate_zen_dataset.py (f2cd57710), which builds that set. Preference rows: standard and
conversational, explicit and implicit prompt, a system turn, a multi-turn prompt; unpaired rows with a boolean
label (plain KTO, TRL's weights)."""

from __future__ import annotations

import math
import sys

import datasets
import pytest
import torch
from helpers import write_jsonl

from mmpo.config import DataConfig
from mmpo.data.pairs import build_pairs
from mmpo.data.rendering import split_implicit_prompt
from mmpo.data.unpaired import kto_pseudo_pairs, median_score, scored_samples
from mmpo.losses import LossConfig, kto_loss

# --- zen rows (huggingface/trl scripts/generate_zen_dataset.py), the first four of each config -----------------
STANDARD_PREFERENCE = {
    "prompt": ["Beautiful is better than", "Explicit is", "Simple is better", "Complex"],
    "chosen": [" ugly.", " better than implicit.", " than complex.", " is better than complicated."],
    "rejected": [" the moon.", " worse than nothing.", " than a long vacation.", " is always the answer."],
}
STANDARD_IMPLICIT_PROMPT_PREFERENCE = {
    "chosen": [
        "Beautiful is better than ugly.",
        "Explicit is better than implicit.",
        "Simple is better than complex.",
        "Complex is better than complicated.",
    ],
    "rejected": [
        "Beautiful is better than the moon.",
        "Explicit is worse than nothing.",
        "Simple is better than a long vacation.",
        "Complex is always the answer.",
    ],
}
QUESTIONS = ["What is better than ugly?", "What is better than implicit?", "What is better than complex?"]
QUESTIONS.append("What is better than complicated?")
CHOSEN = ["Beautiful.", "Explicit.", "Simple.", "Complex."]
REJECTED = ["Acceptable.", "Explained.", "Very complex.", "Very complicated."]
CONVERSATIONAL_PREFERENCE = {
    "prompt": [[{"role": "user", "content": q}] for q in QUESTIONS],
    "chosen": [[{"role": "assistant", "content": a}] for a in CHOSEN],
    "rejected": [[{"role": "assistant", "content": a}] for a in REJECTED],
}
CONVERSATIONAL_IMPLICIT_PROMPT_PREFERENCE = {
    "chosen": [
        [{"role": "user", "content": q}, {"role": "assistant", "content": a}] for q, a in zip(QUESTIONS, CHOSEN)
    ],
    "rejected": [
        [{"role": "user", "content": q}, {"role": "assistant", "content": a}] for q, a in zip(QUESTIONS, REJECTED)
    ],
}
STANDARD_UNPAIRED_PREFERENCE = {
    "prompt": ["Beautiful is better than", "Explicit is", "Simple is better", "Complex"],
    "completion": [" ugly.", " better than implicit.", " than a long vacation.", " is better than complicated."],
    "label": [True, True, False, True],
}
CONVERSATIONAL_UNPAIRED_PREFERENCE = {
    "prompt": [[{"role": "user", "content": q}] for q in QUESTIONS],
    "completion": [
        [{"role": "assistant", "content": a}] for a in ("Beautiful.", "Explicit.", "Simple.", "Very complicated.")
    ],
    "label": [True, True, True, False],
}
# UltraFeedback-style GPT-4 scores beside TRL's columns (what the hub's ultrafeedback_binarized has)
SCORES = {"score_chosen": [8.0, 7.5, 9.0, 6.0], "score_rejected": [3.0, 7.0, 2.0, 5.5]}


# huggingface/trl trl/data_utils.py (f2cd57710), extract_prompt, copied verbatim (docstring cut)
def trl_extract_prompt(example):
    for idx in range(min(len(example["chosen"]), len(example["rejected"]))):
        if example["chosen"][idx] != example["rejected"][idx]:
            if example["chosen"][idx - 1] == " ":  # remove space before the prompt
                idx -= 1
            break
    return {
        "prompt": example["chosen"][:idx],
        "chosen": example["chosen"][idx:],
        "rejected": example["rejected"][idx:],
    }


def parquet(tmp_path, name: str, columns: dict) -> str:
    """A parquet file written by datasets from the columns, as the hub set stores them (message lists become lists
    of {content, role} structs, labels booleans)."""
    path = tmp_path / f"{name}.parquet"
    datasets.Dataset.from_dict(columns).to_parquet(str(path))
    return str(path)


def rows(columns: dict) -> list[dict]:
    return [dict(zip(columns, values)) for values in zip(*columns.values())]


SYSTEM_AND_MULTI_TURN = [
    {
        "chosen": [
            {"role": "system", "content": "You answer in one word."},
            {"role": "user", "content": "Name a colour."},
            {"role": "assistant", "content": "Blue."},
            {"role": "user", "content": "Another one?"},
            {"role": "assistant", "content": "Red."},
        ],
        "rejected": [
            {"role": "system", "content": "You answer in one word."},
            {"role": "user", "content": "Name a colour."},
            {"role": "assistant", "content": "Blue."},
            {"role": "user", "content": "Another one?"},
            {"role": "assistant", "content": "I would rather talk about the weather today."},
        ],
    }
]


@pytest.mark.parametrize(
    "examples",
    [rows(STANDARD_IMPLICIT_PROMPT_PREFERENCE), rows(CONVERSATIONAL_IMPLICIT_PROMPT_PREFERENCE), SYSTEM_AND_MULTI_TURN],
    ids=["standard", "conversational", "system_and_multi_turn"],
)
def test_an_implicit_prompt_is_split_off_as_trls_extract_prompt_does(examples):
    for i, example in enumerate(examples):
        expected = trl_extract_prompt(example)
        assert split_implicit_prompt(example["chosen"], example["rejected"], i) == (
            expected["prompt"],
            expected["chosen"],
            expected["rejected"],
        )


def pair_texts(path: str, tokenizer=None, **settings) -> list[tuple]:
    pairs, _ = build_pairs(datasets.Dataset.from_parquet(path), DataConfig(**settings), tokenizer)
    return [(p.prompt, p.chosen, p.rejected, p.margin) for p in pairs]


def test_standard_preference_explicit_and_implicit_prompt_give_the_same_sequences(tmp_path, caplog):
    """The implicit prompt is the longest common start, which can be longer than the explicit file's prompt
    ("Simple is better than" for " complex." / " a long vacation."); the sequences trained on are the same."""
    explicit = parquet(tmp_path, "standard_preference", STANDARD_PREFERENCE)
    implicit = parquet(tmp_path, "standard_implicit_prompt_preference", STANDARD_IMPLICIT_PROMPT_PREFERENCE)
    settings = {"margin_source": "auto", "chat_template": "never"}
    ours, theirs = pair_texts(implicit, **settings), pair_texts(explicit, **settings)
    assert [(p + c, p + r, m) for p, c, r, m in ours] == [(p + c, p + r, m) for p, c, r, m in theirs]
    assert ours[0] == ("Beautiful is better than", " ugly.", " the moon.", 1.0)  # no scores: the constant margin
    assert ours[2] == ("Simple is better than", " complex.", " a long vacation.", 1.0)
    assert "no score or vote columns; margin_source auto gives every pair the constant margin 1" in caplog.text


def test_conversational_preference_explicit_and_implicit_prompt_give_the_same_pairs(tmp_path, smollm2_tokenizer):
    explicit = parquet(tmp_path, "conversational_preference", {**CONVERSATIONAL_PREFERENCE, **SCORES})
    implicit = parquet(
        tmp_path, "conversational_implicit_prompt_preference", {**CONVERSATIONAL_IMPLICIT_PROMPT_PREFERENCE, **SCORES}
    )
    ours = pair_texts(implicit, smollm2_tokenizer, margin_source="auto")
    assert ours == pair_texts(explicit, smollm2_tokenizer, margin_source="auto")
    assert [m for *_, m in ours] == [5.0, 0.5, 7.0, 0.5]  # found in the TRL-style score columns
    prompt = smollm2_tokenizer.apply_chat_template(
        CONVERSATIONAL_PREFERENCE["prompt"][0], tokenize=False, add_generation_prompt=True
    )
    assert ours[0][0] == prompt and ours[0][1].startswith("Beautiful.")


def test_a_system_turn_and_a_multi_turn_prompt_stay_in_the_prompt(tmp_path, smollm2_tokenizer):
    path = parquet(tmp_path, "multi_turn", {k: [r[k] for r in SYSTEM_AND_MULTI_TURN] for k in ("chosen", "rejected")})
    ((prompt, chosen, rejected, _),) = pair_texts(path, smollm2_tokenizer, margin_source="auto")
    assert "You answer in one word." in prompt and "Name a colour." in prompt and "Blue." in prompt
    assert prompt.rstrip().endswith("assistant") and chosen.startswith("Red.")
    assert rejected.startswith("I would rather")


def test_boolean_labels_are_hard_kto_labels(tmp_path):
    path = parquet(tmp_path, "standard_unpaired_preference", STANDARD_UNPAIRED_PREFERENCE)
    samples = scored_samples(DataConfig(chat_template="never"), path)
    assert [s.score for s in samples] == [math.inf, math.inf, -math.inf, math.inf]
    median = median_score(samples)
    assert median == 0.0
    pairs = kto_pseudo_pairs(samples, median, None, "never", batch_size=4)
    margin = torch.tensor([p.margin for p in pairs], dtype=torch.float64)
    # at any gamma, a label weighs 1: the same losses as plain KTO (gamma = inf), which equals TRL's kto_loss
    policy, ref = (
        torch.tensor([-3.0, -4.0, -2.0, -5.0], dtype=torch.float64),
        torch.full((4,), -3.5, dtype=torch.float64),
    )
    soft = kto_loss(LossConfig("kto", beta=0.1, gamma=0.5), policy, ref, margin, 0.2)
    hard = kto_loss(LossConfig("kto", beta=0.1, gamma=math.inf), policy, ref, margin.sign(), 0.2)
    torch.testing.assert_close(soft, hard)


def test_a_label_that_is_not_a_boolean_names_its_row(tmp_path):
    from mmpo.errors import DataError

    path = write_jsonl(
        tmp_path / "labels.jsonl", [{"prompt": "a", "completion": "b", "label": v} for v in (True, "yes")]
    )
    with pytest.raises(DataError, match=r"^row 1: label column 'label' holds 'yes'; expected true or false$"):
        scored_samples(DataConfig(), path)


def test_conversational_unpaired_labels_train_kto(tmp_path, tiny_llama_dir):
    """`mmpo train kto` on TRL's conversational unpaired format, as a user would run it."""
    from mmpo.cli import main

    columns = {k: v * 4 for k, v in CONVERSATIONAL_UNPAIRED_PREFERENCE.items()}
    path = parquet(tmp_path, "conversational_unpaired_preference", columns)
    argv = ["train", "kto", f"model={tiny_llama_dir}", f"data.train_path={path}", "max_length=96"]
    argv += ["max_prompt_length=64", "train.max_steps=2", "train.per_device_train_batch_size=4"]
    argv += ["train.report_to=[none]", f"train.output_dir={tmp_path}/kto", f"cache_dir={tmp_path}/cache"]
    assert main(argv) == 0, sys.stderr
