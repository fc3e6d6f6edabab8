"""Tokenising pairs exactly as reward-bench does, so that its RewardBench scores can be reproduced token for token.

Policies (DPO rewards) follow ``DPOInference.tokenize_row`` and ``build_tokenized_answer`` in
``rewardbench/dpo.py`` (allenai/reward-bench), quirks included:

* the response is the full rendered text with every occurrence of the rendered prompt removed;
* prompt and response are tokenised *together*, and the boundary moves one token left when the prompt's last
  token merges with the response's first (SmolLM2 merges a newline with code indentation);
* the tokenizer's BOS always comes first (its EOS where it has none, as ``scripts/run_dpo.py`` sets it), even
  where the chat template already wrote one; the EOS is always appended to the response;
* when the prompt plus the *longer* response exceeds ``max_length``, both prompts keep their last
  ``max_prompt_length`` tokens (which can cut the BOS); if that is still too long, responses keep their first
  ``max_length - max_prompt_length`` tokens.

Reward models follow ``RewardBenchPipeline`` (``rewardbench/models/pipeline.py``): the whole rendered
conversation tokenised once with the tokenizer's special tokens, cut to ``max_length`` from the tokenizer's
truncation side, and a doubled BOS at the start (template and tokenizer both adding one) masked out of
attention for its first copy. Padding is always on the right here; reward-bench pads on the tokenizer's side,
which for a left-padding tokenizer shifts the positions of the shorter sequences of a batch (a batch-dependent
effect mmpo does not reproduce).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from transformers import PreTrainedTokenizerBase

from mmpo.errors import DataError
from mmpo.records import Pair, PolicyFeatures, RewardFeatures

# DPOInference.__init__ and run_rm.py's --max_length
REWARDBENCH_MAX_LENGTH = 2048
REWARDBENCH_MAX_PROMPT_LENGTH = 128


@dataclass(frozen=True)
class RewardBenchLengths:
    max_length: int = REWARDBENCH_MAX_LENGTH
    max_prompt_length: int = REWARDBENCH_MAX_PROMPT_LENGTH


def _ids(tokenizer: PreTrainedTokenizerBase, text: str) -> list[int]:
    return tokenizer(text, add_special_tokens=False)["input_ids"]


def split_tokenized_answer(
    tokenizer: PreTrainedTokenizerBase, prompt: str, answer: str, row: int
) -> tuple[list[int], list[int]]:
    """(prompt ids, answer ids) of ``prompt + answer`` tokenised once, split as ``build_tokenized_answer``."""
    full = _ids(tokenizer, prompt + answer)
    prompt_ids = _ids(tokenizer, prompt)
    if len(full) < len(prompt_ids):
        raise DataError(f"row {row}: the prompt alone has more tokens than prompt + response; cannot split them")
    start = len(prompt_ids)
    if prompt_ids != full[:start]:
        start -= 1
    return full[:start], full[start:]


def _begin_token(tokenizer: PreTrainedTokenizerBase) -> int:
    token = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.eos_token_id
    if token is None:
        raise DataError("the tokenizer has neither a BOS nor an EOS token, which reward-bench scoring puts first")
    return token


def rewardbench_policy_features(
    pairs: Sequence[Pair], tokenizer: PreTrainedTokenizerBase, lengths: RewardBenchLengths = RewardBenchLengths()
) -> list[PolicyFeatures]:
    """PolicyFeatures whose completion mask is reward-bench's label mask (every pair kept; none dropped)."""
    bos, eos = _begin_token(tokenizer), tokenizer.eos_token_id
    out: list[PolicyFeatures] = []
    for pair in pairs:
        sides = {}
        for side in ("chosen", "rejected"):
            answer = (pair.prompt + getattr(pair, side)).replace(pair.prompt, "")
            prompt_ids, answer_ids = split_tokenized_answer(tokenizer, pair.prompt, answer, pair.source_row)
            sides[side] = ([bos, *prompt_ids], [*answer_ids, eos])
        longer = max(len(answer) for _, answer in sides.values())
        encoded = {}
        for side, (prompt_ids, answer_ids) in sides.items():
            if len(prompt_ids) + longer > lengths.max_length:
                prompt_ids = prompt_ids[-lengths.max_prompt_length :]
            if len(prompt_ids) + longer > lengths.max_length:
                answer_ids = answer_ids[: lengths.max_length - lengths.max_prompt_length]
            encoded[f"{side}_input_ids"] = prompt_ids + answer_ids
            encoded[f"{side}_completion_mask"] = [0] * len(prompt_ids) + [1] * len(answer_ids)
        out.append(PolicyFeatures(margin=pair.margin, source_row=pair.source_row, section=pair.section, **encoded))
    return out


def rewardbench_reward_features(
    pairs: Sequence[Pair], tokenizer: PreTrainedTokenizerBase, max_length: int = REWARDBENCH_MAX_LENGTH
) -> list[RewardFeatures]:
    """RewardFeatures of the full rendered conversations, with the pipeline's attention mask."""
    bos = tokenizer.bos_token_id if tokenizer.bos_token else None
    out: list[RewardFeatures] = []
    for pair in pairs:
        feature = RewardFeatures(margin=pair.margin, source_row=pair.source_row, section=pair.section)
        for side in ("chosen", "rejected"):
            encoded = tokenizer(pair.prompt + getattr(pair, side), truncation=True, max_length=max_length)
            ids = list(encoded["input_ids"])
            mask = [1] * len(ids)
            if bos is not None and len(ids) > 1 and ids[0] == bos and ids[1] == bos:
                mask[0] = 0
            feature[f"{side}_input_ids"] = ids
            feature[f"{side}_attention_mask"] = mask
            if "token_type_ids" in encoded:
                feature[f"{side}_token_type_ids"] = list(encoded["token_type_ids"])
        out.append(feature)
    return out
