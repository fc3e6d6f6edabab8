"""Shared fixtures: the real bundled tokenizers, tiny models built from config, and the shared data."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

SHARED_DATA = Path(os.environ.get("MMPO_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not (SHARED_DATA / "ultrafeedback" / "train_clean.jsonl").exists():
        pytest.fail(f"shared data not found at {SHARED_DATA}; set MMPO_SHARED_DATA")
    return SHARED_DATA


@pytest.fixture(scope="session")
def smollm2_tokenizer():
    from mmpo.models import BUNDLED_SMOLLM2, load_tokenizer

    return load_tokenizer(BUNDLED_SMOLLM2)


@pytest.fixture(scope="session")
def minilm_tokenizer():
    from mmpo.models import BUNDLED_ENCODER, load_tokenizer

    return load_tokenizer(BUNDLED_ENCODER)


def tiny_llama(vocab_size: int, seed: int = 0):
    """A 2-layer Llama with SmolLM2's vocabulary: real architecture and tokenizer, CPU-fast."""
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
        tie_word_embeddings=True,
    )
    return LlamaForCausalLM(config)


@pytest.fixture()
def tiny_llama_dir(tmp_path, smollm2_tokenizer) -> Path:
    """A saved tiny Llama + SmolLM2 tokenizer folder, loadable like any local model."""
    path = tmp_path / "tiny-llama"
    tiny_llama(len(smollm2_tokenizer)).save_pretrained(path)
    smollm2_tokenizer.save_pretrained(path)
    return path
