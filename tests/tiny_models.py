"""Tiny models for tests and benchmarks: real architectures at toy sizes, built offline from a config."""

from __future__ import annotations

import torch
from transformers import LlamaConfig, LlamaForCausalLM


def tiny_llama(
    vocab_size: int, seed: int = 0, hidden_size: int = 32, layers: int = 2, max_positions: int = 1024
) -> LlamaForCausalLM:
    """A small Llama (SmolLM2's architecture) for a given vocabulary, deterministic for a seed."""
    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=hidden_size,
        intermediate_size=2 * hidden_size,
        num_hidden_layers=layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=max_positions,
        tie_word_embeddings=True,
    )
    return LlamaForCausalLM(config)
