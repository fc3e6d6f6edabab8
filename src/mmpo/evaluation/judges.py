"""LLM-as-a-judge and reward-model judges that turn responses into 1-10 scores.

``JUDGE`` is one of
  * ``openai:<model>``: any OpenAI-compatible chat endpoint (``--base-url``; GPT-4 as in the paper, or a
    local vLLM / llama.cpp / ``mmpo serve`` server), key from an environment variable, concurrent requests;
  * ``hf:<path or hub id>``: a local chat model through transformers (the bundled SmolLM2 on CPU);
  * ``rm:<path or hub id>``: a reward model (any mmpo reward model or sequence classifier), whose scalar
    reward r(prompt, response) is the score.
LLM judges grade with MT-bench's single-answer prompt (FastChat ``single-v1``, Apache-2.0) unless a user
template is given, and their rating is read as FastChat does: ``[[n]]``, else ``[n]``.
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from mmpo.errors import ConfigError
from mmpo.evaluation.chat_client import ChatEndpoint, ChatRequestFailed
from mmpo.records import Pair

# FastChat llm_judge `single-v1` (lm-sys/FastChat, Apache-2.0): MT-bench single-answer grading, 1-10.
SINGLE_V1_SYSTEM = "You are a helpful assistant."
SINGLE_V1_TEMPLATE = (
    "[Instruction]\nPlease act as an impartial judge and evaluate the quality of the response provided by an AI "
    "assistant to the user question displayed below. Your evaluation should consider factors such as the "
    "helpfulness, relevance, accuracy, depth, creativity, and level of detail of the response. Begin your "
    "evaluation by providing a short explanation. Be as objective as possible. After providing your explanation, "
    'you must rate the response on a scale of 1 to 10 by strictly following this format: "[[rating]]", for '
    'example: "Rating: [[5]]".\n\n[Question]\n{question}\n\n[The Start of Assistant\'s Answer]\n{answer}\n'
    "[The End of Assistant's Answer]"
)
ONE_SCORE = re.compile(r"\[\[(\d+\.?\d*)\]\]")
ONE_SCORE_BACKUP = re.compile(r"\[(\d+\.?\d*)\]")


@dataclass(frozen=True)
class JudgePrompt:
    """``rating_regex`` (one group) reads the rating from the reply; empty means FastChat's [[n]] / [n]."""

    name: str
    system_prompt: str
    prompt_template: str
    rating_regex: str = ""

    def rating(self, text: str) -> float | None:
        if not self.rating_regex:
            return parse_rating(text)
        match = re.search(self.rating_regex, text)
        return rating_number(next((g for g in match.groups() if g is not None), "")) if match else None


DEFAULT_PROMPT = JudgePrompt("single-v1", SINGLE_V1_SYSTEM, SINGLE_V1_TEMPLATE)


def read_prompt_file(path: str) -> JudgePrompt:
    """A user template: one JSON object (FastChat judge_prompts.jsonl line format) with system_prompt and
    prompt_template, the template using {question} and {answer}; optionally rating_regex, for judges that
    do not write [[n]] (e.g. "(\\d+) out of 10")."""
    try:
        raw = json.loads(Path(path).read_text(encoding="utf-8").strip().splitlines()[0])
        prompt = JudgePrompt(
            raw.get("name", Path(path).stem), raw["system_prompt"], raw["prompt_template"], raw.get("rating_regex", "")
        )
        if prompt.rating_regex and re.compile(prompt.rating_regex).groups < 1:
            raise ValueError("rating_regex needs a group around the number")
    except (OSError, ValueError, KeyError, IndexError, re.error) as exc:
        raise ConfigError(
            f"--prompt-template {path}: needs a JSON line with system_prompt and prompt_template ({exc})"
        ) from None
    for field in ("{question}", "{answer}"):
        if field not in prompt.prompt_template:
            raise ConfigError(f"--prompt-template {path}: prompt_template lacks {field}")
    return prompt


RATING_RANGE = (1, 10)
# what ast.literal_eval (FastChat's reader) accepts as a number, bounded: no leading zero ("07" is a SyntaxError
# there), at most 4 digits before the point, so a 400-digit number is not a rating rather than an overflow
_RATING_NUMBER = re.compile(r"(0|[1-9]\d{0,3})(\.\d{0,6})?")


def rating_number(text: str) -> int | float | None:
    """The rating a judge wrote, as FastChat's ``ast.literal_eval`` reads it (int, or float with a point), or
    None when it is no such number or lies outside 1..10 (e.g. "07", "1e400", a 400-digit number, "0")."""
    text = text.strip()
    if not _RATING_NUMBER.fullmatch(text):
        return None
    value = ast.literal_eval(text + ("0" if text.endswith(".") else ""))
    return value if RATING_RANGE[0] <= value <= RATING_RANGE[1] else None


def parse_rating(text: str) -> int | float | None:
    """FastChat's reading of a judgment: [[n]], else [n]; None when neither is there or n is not a 1..10 rating."""
    match = ONE_SCORE.search(text) or ONE_SCORE_BACKUP.search(text)
    return rating_number(match.group(1)) if match else None


@dataclass(frozen=True)
class JudgeRequest:
    """What a judge sees: chat messages for LLM judges, the plain question and answer for reward models;
    ``rating_regex`` as in JudgePrompt."""

    system: str
    user: str
    question: str
    answer: str
    rating_regex: str = ""


@dataclass(frozen=True)
class JudgeReply:
    """``request_failed``: the judge could not be asked (an API error after its retries): nothing was judged, so
    the row is retried by the next run rather than recorded as unparsable."""

    score: float | None
    text: str
    error: str = ""
    request_failed: bool = False


def _messages(request: JudgeRequest) -> list[dict[str, str]]:
    return [{"role": "system", "content": request.system}, {"role": "user", "content": request.user}]


def _reply(text: str, request: JudgeRequest) -> JudgeReply:
    score = JudgePrompt("", "", "", request.rating_regex).rating(text)
    if score is not None:
        return JudgeReply(score, text)
    shown = " ".join(text.split())[:80]
    return JudgeReply(None, text, f"no rating in the judge's reply ({shown!r})")


class OpenAIJudge:
    def __init__(self, endpoint: ChatEndpoint, concurrency: int = 4) -> None:
        self.name = endpoint.model
        self.endpoint = endpoint
        self.concurrency = concurrency

    def _one(self, request: JudgeRequest) -> JudgeReply:
        try:
            return _reply(self.endpoint.complete(_messages(request)), request)
        except ChatRequestFailed as exc:
            return JudgeReply(None, "", f"API error: {exc}", request_failed=True)

    def judge(self, requests: Sequence[JudgeRequest]) -> list[JudgeReply]:
        with ThreadPoolExecutor(max_workers=self.concurrency) as pool:
            return list(pool.map(self._one, requests))


class LocalChatJudge:
    def __init__(self, model: str, max_new_tokens: int = 512, batch_size: int = 4) -> None:
        from mmpo.models.generation import ChatGenerator, GenerationSettings

        self.name = model
        self.generator = ChatGenerator(model)
        self.settings = GenerationSettings(max_new_tokens=max_new_tokens, batch_size=batch_size)

    def judge(self, requests: Sequence[JudgeRequest]) -> list[JudgeReply]:
        texts = self.generator.generate([_messages(r) for r in requests], self.settings)
        return [_reply(t, r) for t, r in zip(texts, requests, strict=True)]


class RewardModelJudge:
    def __init__(self, model: str, max_length: int = 512, batch_size: int = 16) -> None:
        from mmpo.features.scoring import RewardPairScorer

        self.name = model
        self.scorer = RewardPairScorer(model, max_length, max(1, max_length // 2), batch_size)

    def judge(self, requests: Sequence[JudgeRequest]) -> list[JudgeReply]:
        pairs = [Pair(r.question, r.answer, r.answer, 0.0, i) for i, r in enumerate(requests)]
        rewards = self.scorer.rewards(pairs).tolist()
        return [JudgeReply(reward, f"reward {reward:.6g}") for reward in rewards]


Judge = OpenAIJudge | LocalChatJudge | RewardModelJudge


@dataclass(frozen=True)
class JudgeSettings:
    """Which judge (``openai:<model>``, ``hf:<model>``, ``rm:<model>``) and how to reach or run it."""

    spec: str
    base_url: str = "https://api.openai.com/v1"
    api_key_env: str = "OPENAI_API_KEY"
    concurrency: int = 4
    max_new_tokens: int = 512
    batch_size: int = 4
    max_retries: int = 6

    def __post_init__(self) -> None:
        kind, _, name = self.spec.partition(":")
        if not name or kind not in ("openai", "hf", "rm"):
            raise ConfigError(f"--judge {self.spec!r}: use openai:<model>, hf:<path or hub id> or rm:<path or hub id>")

    @property
    def name(self) -> str:
        return self.spec.partition(":")[2]


def make_judge(settings: JudgeSettings) -> Judge:
    kind = settings.spec.partition(":")[0]
    if kind == "openai":
        endpoint = ChatEndpoint(
            base_url=settings.base_url,
            model=settings.name,
            api_key_env=settings.api_key_env,
            max_tokens=settings.max_new_tokens,
            max_retries=settings.max_retries,
        )
        return OpenAIJudge(endpoint, settings.concurrency)
    if kind == "hf":
        return LocalChatJudge(settings.name, settings.max_new_tokens, settings.batch_size)
    return RewardModelJudge(settings.name)
