"""Typed records that travel between the layers: pairs, model features, and row-field access.

Everything above the data layer works on these types instead of string-keyed dicts, so a typo in a
field name is an AttributeError at the line that made it (or a type-checker error), not a KeyError
three modules later. Feature records are TypedDicts because they are stored in a ``datasets.Dataset``
and handed to collators as plain mappings; ``Pair`` is a dataclass.

Vocabulary used everywhere:
  * ``margin`` is only the *quality margin* m of a pair (score gap, log vote ratio, ...);
  * ``preference_logit`` is the model's h: predicted log-odds that the chosen response is better
    (r(y_w) - r(y_l) for a reward model, beta * delta for a policy);
  * ``logits`` means language-model logits only.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypedDict


@dataclass(frozen=True)
class Pair:
    """One validated preference pair, already rendered to text: prompt + chosen is the full chosen sequence.

    ``source_row`` is the 0-based row of the input file it came from, kept so that any later error or drop
    can name the row the user has to look at."""

    prompt: str
    chosen: str
    rejected: str
    margin: float
    source_row: int
    section: str = ""


class _PairInfo(TypedDict):
    margin: float
    source_row: int
    section: str


class PolicyFeatures(_PairInfo, total=False):
    """Token ids of prompt+response for both sides, with a mask of the scored (response) tokens;
    reference log-probs are attached before training."""

    chosen_input_ids: list[int]
    chosen_completion_mask: list[int]
    rejected_input_ids: list[int]
    rejected_completion_mask: list[int]
    ref_chosen_logps: float
    ref_rejected_logps: float


class RewardFeatures(_PairInfo, total=False):
    """The reward model's own (prompt, response) pair encoding for both sides; an attention mask only where a
    token is masked out (reward-bench's doubled BOS), else every token is attended."""

    chosen_input_ids: list[int]
    rejected_input_ids: list[int]
    chosen_token_type_ids: list[int]
    rejected_token_type_ids: list[int]
    chosen_attention_mask: list[int]
    rejected_attention_mask: list[int]


class EmbeddingFeatures(_PairInfo):
    """Sentence embeddings of the prompt and both responses (frozen-encoder reward head)."""

    prompt_embedding: list[float]
    chosen_embedding: list[float]
    rejected_embedding: list[float]


Features = PolicyFeatures | RewardFeatures | EmbeddingFeatures


class MissingField(KeyError):
    """A dotted path does not exist in a row."""


def get_field(row: Mapping[str, Any], dotted: str) -> Any:
    """Follow ``a.b.c`` through nested mappings (UltraFeedback keeps scores under ``metadata``);
    raise MissingField naming the path when a part is absent or null."""
    value: Any = row
    for part in dotted.split("."):
        if not isinstance(value, Mapping) or part not in value or value[part] is None:
            raise MissingField(dotted)
        value = value[part]
    return value


def has_field(row: Mapping[str, Any], dotted: str) -> bool:
    try:
        get_field(row, dotted)
    except MissingField:
        return False
    return True
