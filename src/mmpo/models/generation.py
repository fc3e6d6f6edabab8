"""Batched chat generation with a local causal LM (transformers): MT-bench answers, the ``hf:`` judge and
``mmpo serve`` all go through it.

Prompts are rendered with the tokenizer's chat template and left-padded, so a batch of conversations of
different lengths generates in one call. Greedy unless a temperature > 0 is asked for.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase, StoppingCriteria, StoppingCriteriaList

from mmpo.errors import ConfigError
from mmpo.models.loading import LoadOptions, load_causal_lm, load_tokenizer

Conversation = Sequence[dict[str, str]]


@dataclass(frozen=True)
class GenerationSettings:
    max_new_tokens: int = 512
    temperature: float = 0.0
    batch_size: int = 8


@dataclass(frozen=True)
class Completion:
    """One reply with what an OpenAI-style client is told about it.

    ``finish_reason`` is ``stop`` (the model ended its turn), ``length`` (``max_new_tokens`` or the time limit cut
    it) or ``cancelled`` (``should_stop`` said the caller is gone)."""

    text: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str


class _StopWhen(StoppingCriteria):
    """Ends generation between two tokens when the deadline passes or ``should_stop`` says so; remembers why."""

    def __init__(self, deadline: float, should_stop: Callable[[], bool]) -> None:
        self.deadline = deadline
        self.should_stop = should_stop
        self.reason = ""

    def __call__(self, input_ids: torch.LongTensor, scores, **kwargs) -> torch.BoolTensor:
        if self.should_stop():
            self.reason = "cancelled"
        elif time.monotonic() > self.deadline:
            self.reason = "length"
        return torch.full((input_ids.shape[0],), bool(self.reason), dtype=torch.bool, device=input_ids.device)


def sampling_options(temperature: float) -> dict:
    """``generate`` keywords for greedy decoding (temperature 0) or plain sampling at ``temperature``: the model's
    own generation_config must not add top-p / top-k truncation that nobody asked for."""
    sampling = temperature > 0
    return {"do_sample": sampling, "temperature": temperature if sampling else None, "top_p": None, "top_k": None}


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
            output = self.model.generate(
                **encoded,
                max_new_tokens=settings.max_new_tokens,
                **sampling_options(settings.temperature),
                pad_token_id=self.tokenizer.pad_token_id,
            )
            new_tokens = output[:, encoded["input_ids"].shape[1] :]
            replies += [t.strip() for t in self.tokenizer.batch_decode(new_tokens, skip_special_tokens=True)]
        return replies

    @torch.no_grad()
    def complete(
        self,
        conversation: Conversation,
        max_new_tokens: int,
        temperature: float = 0.0,
        time_limit_s: float = float("inf"),
        should_stop: Callable[[], bool] = lambda: False,
    ) -> Completion:
        """One reply, checked between tokens against a time limit and ``should_stop`` (a server's client that
        hung up), so one request cannot hold the model for longer than it is allowed to."""
        device = next(self.model.parameters()).device
        text = self.tokenizer.apply_chat_template(list(conversation), tokenize=False, add_generation_prompt=True)
        encoded = self.tokenizer([text], return_tensors="pt", add_special_tokens=False).to(device)
        stop = _StopWhen(time.monotonic() + time_limit_s, should_stop)
        output = self.model.generate(
            **encoded,
            max_new_tokens=max_new_tokens,
            **sampling_options(temperature),
            pad_token_id=self.tokenizer.pad_token_id,
            stopping_criteria=StoppingCriteriaList([stop]),
        )
        prompt_tokens = encoded["input_ids"].shape[1]
        new_tokens = output[0, prompt_tokens:].tolist()
        end_ids = _end_of_turn_ids(self.model, self.tokenizer)
        ended = bool(new_tokens) and new_tokens[-1] in end_ids
        if stop.reason:
            reason = stop.reason
        else:
            reason = "stop" if ended or len(new_tokens) < max_new_tokens else "length"
        while new_tokens and new_tokens[-1] in end_ids | {self.tokenizer.pad_token_id}:
            new_tokens.pop()
        reply = self.tokenizer.decode(new_tokens, skip_special_tokens=True).strip()
        return Completion(reply, prompt_tokens, len(new_tokens), reason)


def _end_of_turn_ids(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase) -> set[int]:
    """The token ids that end a reply: the generation config's ``eos_token_id`` (one or a list) and the
    tokenizer's."""
    found = model.generation_config.eos_token_id
    ids = set(found if isinstance(found, list) else [found] if found is not None else [])
    if tokenizer.eos_token_id is not None:
        ids.add(tokenizer.eos_token_id)
    return ids


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
