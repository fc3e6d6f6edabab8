"""Loading the models mmpo trains and scores with: tokenizers, causal LMs, reward models, the sentence
encoder behind similarity margins and the frozen-encoder reward head."""

from mmpo.models.loading import (
    BUNDLED_ENCODER,
    BUNDLED_SMOLLM2,
    LoadOptions,
    load_causal_lm,
    load_encoder,
    load_reward_model,
    load_tokenizer,
    resolve_model,
)

__all__ = [
    "BUNDLED_ENCODER",
    "BUNDLED_SMOLLM2",
    "LoadOptions",
    "load_causal_lm",
    "load_encoder",
    "load_reward_model",
    "load_tokenizer",
    "resolve_model",
]
