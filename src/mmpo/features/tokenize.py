"""Tokenising pairs for reward models and policies, with an explicit policy for over-long pairs.

Over-long pairs are an error by default (``overlong: error``) because silently truncating the part of a
response that made it better trains on the wrong signal; ``truncate`` keeps the end of the prompt and
the start of the response (as TRL does: for a policy the prompt is cut once, for the longer response, to
``max_prompt_length``, so both sides keep the same prompt, then each response to the tokens left),
``drop`` removes the pair and reports it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from transformers import PreTrainedTokenizerBase

from mmpo.errors import DataError
from mmpo.records import Pair, PolicyFeatures, RewardFeatures

logger = logging.getLogger("mmpo")


@dataclass(frozen=True)
class LengthPolicy:
    max_length: int
    max_prompt_length: int
    overlong: str = "error"


def _fit(
    prompt_ids: list[int], response_ids: list[int], budget: int, policy: LengthPolicy, row: int, what: str
) -> tuple[list[int], list[int]] | None:
    """Shorten prompt (from the left) then response (from the right) to fit ``budget`` tokens."""
    if len(prompt_ids) + len(response_ids) <= budget:
        return prompt_ids, response_ids
    if policy.overlong == "error":
        raise DataError(
            f"row {row}: {what} is {len(prompt_ids) + len(response_ids)} tokens, over max_length "
            f"{policy.max_length}; raise max_length or set overlong to 'truncate' or 'drop'"
        )
    if policy.overlong == "drop":
        return None
    if len(prompt_ids) > policy.max_prompt_length:
        prompt_ids = prompt_ids[len(prompt_ids) - policy.max_prompt_length :]
    return prompt_ids, response_ids[: max(1, budget - len(prompt_ids))]


def _ids(tokenizer: PreTrainedTokenizerBase, text: str) -> list[int]:
    return tokenizer(text, add_special_tokens=False)["input_ids"]


def _batch_ids(tokenizer: PreTrainedTokenizerBase, texts: list[str]) -> list[list[int]]:
    """The ids of each text, in one call: a fast tokenizer encodes a batch on all cores (the same ids as one by
    one), which is most of featurising a large pair file."""
    return tokenizer(texts, add_special_tokens=False)["input_ids"] if texts else []


def _encode_reward_input(
    tokenizer: PreTrainedTokenizerBase,
    prompt: str,
    response: str,
    policy: LengthPolicy,
    row: int,
    side: str,
    encoded: dict[str, list[int]],
) -> dict[str, list[int]] | None:
    """The tokenizer's own (prompt, response) pair encoding, e.g. [CLS] prompt [SEP] response [SEP] with
    token_type_ids for BERT (``encoded``, from a batch call). Truncation keeps the end of the prompt, then cuts the
    response's tail."""
    if len(encoded["input_ids"]) <= policy.max_length:
        return encoded
    prompt_ids, response_ids = _ids(tokenizer, prompt), _ids(tokenizer, response)
    budget = policy.max_length - tokenizer.num_special_tokens_to_add(pair=True)
    fitted = _fit(prompt_ids, response_ids, budget, policy, row, f"prompt+{side}")
    if fitted is None:
        return None
    prompt_text = tokenizer.decode(fitted[0]) if len(fitted[0]) < len(prompt_ids) else prompt
    encoded = tokenizer(prompt_text, response, truncation="only_second", max_length=policy.max_length)
    return dict(encoded)


def tokenize_reward_pairs(
    pairs: list[Pair], tokenizer: PreTrainedTokenizerBase, policy: LengthPolicy, report: bool = True
) -> list[RewardFeatures]:
    """Each pair becomes chosen_* / rejected_* encodings (input_ids, and token_type_ids if the model uses them)."""
    out: list[RewardFeatures] = []
    dropped: list[int] = []
    sides = ("chosen", "rejected")
    batch = (
        tokenizer([p.prompt for p in pairs for _ in sides], [getattr(p, side) for p in pairs for side in sides])
        if pairs
        else {}
    )
    for i, pair in enumerate(pairs):
        feature = RewardFeatures(margin=pair.margin, source_row=pair.source_row, section=pair.section)
        for j, side in enumerate(sides):
            response = getattr(pair, side)
            encoded = {key: values[2 * i + j] for key, values in batch.items()}
            encoded = _encode_reward_input(tokenizer, pair.prompt, response, policy, pair.source_row, side, encoded)
            if encoded is None:
                break
            feature[f"{side}_input_ids"] = encoded["input_ids"]
            if "token_type_ids" in encoded:
                feature[f"{side}_token_type_ids"] = encoded["token_type_ids"]
        else:
            out.append(feature)
            continue
        dropped.append(pair.source_row)
    if report:  # a caller featurising in batches reports once, for the whole file
        report_dropped(dropped, policy)
    return out


def tokenize_policy_pairs(
    pairs: list[Pair], tokenizer: PreTrainedTokenizerBase, policy: LengthPolicy, report: bool = True
) -> list[PolicyFeatures]:
    """prompt + response + EOS, with a mask marking the response tokens whose log-probs are scored."""
    eos = tokenizer.eos_token_id
    bos = (
        [tokenizer.bos_token_id]
        if getattr(tokenizer, "add_bos_token", False) and tokenizer.bos_token_id is not None
        else []
    )
    budget = policy.max_length - len(bos)
    out: list[PolicyFeatures] = []
    dropped: list[int] = []
    ids = _batch_ids(tokenizer, [text for p in pairs for text in (p.prompt, p.chosen, p.rejected)])
    for i, pair in enumerate(pairs):
        prompt_ids = ids[3 * i]
        responses = {}
        for j, side in enumerate(("chosen", "rejected")):
            response_ids = ids[3 * i + 1 + j]
            if eos is not None and (not response_ids or response_ids[-1] != eos):
                response_ids = response_ids + [eos]
            responses[side] = response_ids
        # one prompt for both sides, as TRL: cut for the longer response, then each response to what is left
        longer = max(responses, key=lambda side: len(responses[side]))
        fitted = _fit(prompt_ids, responses[longer], budget, policy, pair.source_row, f"prompt+{longer}")
        if fitted is None:
            dropped.append(pair.source_row)
            continue
        p_ids = fitted[0]
        encoded: dict[str, Any] = {}
        for side, r_ids in responses.items():
            r_ids = r_ids[: max(1, budget - len(p_ids))]
            encoded[f"{side}_input_ids"] = bos + p_ids + r_ids
            encoded[f"{side}_completion_mask"] = [0] * (len(bos) + len(p_ids)) + [1] * len(r_ids)
        out.append(PolicyFeatures(margin=pair.margin, source_row=pair.source_row, section=pair.section, **encoded))
    if report:  # a caller featurising in batches reports once, for the whole file
        report_dropped(dropped, policy)
    return out


def report_dropped(dropped: list[int], policy: LengthPolicy) -> None:
    if dropped:
        logger.warning(
            "dropped %d over-long pairs (> %d tokens) as configured (first rows: %s)",
            len(dropped),
            policy.max_length,
            dropped[:10],
        )
