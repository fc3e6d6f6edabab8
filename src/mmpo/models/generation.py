"""Batched chat generation with a local causal LM (transformers): MT-bench answers, the ``hf:`` judge and
``mmpo serve`` all go through it.

Prompts are rendered with the tokenizer's chat template and left-padded, so a batch of conversations of
different lengths generates in one call. Greedy unless a temperature > 0 is asked for.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from mmpo.errors import ConfigError
from mmpo.models.loading import LoadOptions, load_causal_lm, load_tokenizer

Conversation = Sequence[dict[str, str]]


@dataclass(frozen=True)
class GenerationSettings:
    max_new_tokens: int = 512
    temperature: float = 0.0
    batch_size: int = 8


class ChatGenerator:
    def __init__(self, model: str, trust_remote_code: bool = False) -> None:
        self.name = model
        self.tokenizer: PreTrainedTokenizerBase = load_tokenizer(model, trust_remote_code)
        if getattr(self.tokenizer, "chat_template", None) is None:
            raise ConfigError(f"model {model!r} has no chat template; chat generation needs an instruction-tuned model")
        self.tokenizer.padding_side = "left"
        self.model: PreTrainedModel = load_causal_lm(model, LoadOptions(trust_remote_code))
        self.model.eval()
        if torch.cuda.is_available():
            self.model.to("cuda")

    @torch.no_grad()
    def generate(self, conversations: Sequence[Conversation], settings: GenerationSettings) -> list[str]:
        """One reply per conversation (the text after the generation prompt, special tokens removed)."""
        replies: list[str] = []
        device = next(self.model.parameters()).device
        for start in range(0, len(conversations), settings.batch_size):
            batch = conversations[start : start + settings.batch_size]
            texts = [
                self.tokenizer.apply_chat_template(list(c), tokenize=False, add_generation_prompt=True) for c in batch
            ]
            encoded = self.tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False).to(device)
            sampling = settings.temperature > 0
            output = self.model.generate(
                **encoded,
                max_new_tokens=settings.max_new_tokens,
                do_sample=sampling,
                temperature=settings.temperature if sampling else None,
                top_p=None,
                top_k=None,
                pad_token_id=self.tokenizer.pad_token_id,
            )
            new_tokens = output[:, encoded["input_ids"].shape[1] :]
            replies += [t.strip() for t in self.tokenizer.batch_decode(new_tokens, skip_special_tokens=True)]
        return replies


class VLLMChatGenerator:
    """The same interface on vLLM, used for MT-bench answers when vLLM is installed and a GPU is present."""

    def __init__(self, model: str, trust_remote_code: bool = False) -> None:
        from vllm import LLM

        from mmpo.models.loading import resolve_model

        path, extra = resolve_model(model)
        self.name = model
        self.llm = LLM(model=path, revision=extra.get("revision"), trust_remote_code=trust_remote_code)

    def generate(self, conversations: Sequence[Conversation], settings: GenerationSettings) -> list[str]:
        from vllm import SamplingParams

        params = SamplingParams(temperature=settings.temperature, max_tokens=settings.max_new_tokens)
        outputs = self.llm.chat([list(c) for c in conversations], params, use_tqdm=False)
        return [o.outputs[0].text.strip() for o in outputs]


def make_generator(model: str, backend: str = "auto", trust_remote_code: bool = False):
    """vLLM when asked for, or on 'auto' when it is installed and a GPU is present; else transformers."""
    import importlib.util

    use_vllm = backend == "vllm" or (
        backend == "auto" and importlib.util.find_spec("vllm") is not None and torch.cuda.is_available()
    )
    if use_vllm:
        if importlib.util.find_spec("vllm") is None:
            raise ConfigError("--backend vllm: vLLM is not installed (pip install vllm)")
        return VLLMChatGenerator(model, trust_remote_code)
    return ChatGenerator(model, trust_remote_code)
