"""Rendering prompts and responses to text: plain strings, chat messages, and Anthropic-HH dialogues.

Conversational rows (lists of {"role", "content"} messages) go through the tokenizer's chat template,
so the policy sees exactly the format it was instruction-tuned on; the response text is whatever the
template adds after the generation prompt. Encoders without a template (e.g. a BERT reward model) get a
simple "role: content" rendering.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from transformers import PreTrainedTokenizerBase

from mmpo.errors import DataError

HH_ASSISTANT = "\n\nAssistant:"

Messages = Sequence[Mapping[str, Any]]


CHAT_ROLES = ("system", "user", "assistant", "tool")


def is_conversation(value: Any) -> bool:
    return isinstance(value, (list, tuple)) and all(isinstance(m, Mapping) and "content" in m for m in value)


def check_messages(messages: Messages, row_index: int, what: str) -> None:
    """Every message needs a known role and text content: a misspelt role ('assistent') would otherwise be
    rendered by the chat template as something the model was never trained on, or silently dropped."""
    for k, message in enumerate(messages):
        role = message.get("role")
        if role not in CHAT_ROLES:
            raise DataError(f"row {row_index}: {what} message {k} has role {role!r}; expected one of {CHAT_ROLES}")
        if not isinstance(message.get("content"), str):
            raise DataError(f"row {row_index}: {what} message {k} has no text content")


RESPONSE_ROLES = ("assistant", "tool")


def check_response_roles(messages: Messages, row_index: int, what: str) -> None:
    """A response is the assistant's turn (tool results may sit inside it). A user or system message there
    would be trained on as if the model had said it; that is a prompt turn in the wrong column."""
    for k, message in enumerate(messages):
        if message.get("role") not in RESPONSE_ROLES:
            raise DataError(
                f"row {row_index}: {what} message {k} has role {message.get('role')!r}; a response holds the "
                "assistant's turn only (put earlier turns in the prompt column)"
            )
    if messages and messages[-1].get("role") != "assistant":
        raise DataError(
            f"row {row_index}: {what} ends with a {messages[-1].get('role')!r} message, not the assistant's"
        )


def _plain_render(messages: Messages) -> str:
    return "\n".join(f"{m.get('role', 'user')}: {m['content']}" for m in messages)


def template_plain_text(mode: str, tokenizer: PreTrainedTokenizerBase | None) -> bool:
    """Whether plain-string rows go through the chat template: data.chat_template 'always', or 'auto'
    whenever a tokenizer is given (render_prompt_and_response still needs the tokenizer to have one)."""
    return mode == "always" or (mode == "auto" and tokenizer is not None)


def prompt_messages(prompt: str | Messages) -> list:
    """A prompt as chat messages: plain text is one user turn."""
    return [{"role": "user", "content": prompt}] if isinstance(prompt, str) else list(prompt)


def response_turns(prompt_msgs: Messages, response: str | Messages) -> list:
    """The response's own messages. UltraFeedback-binarized style rows repeat the prompt's messages at the start
    of each response; those are the prompt's, not the response's."""
    if isinstance(response, str):
        return [{"role": "assistant", "content": response}]
    response_msgs = list(response)
    shared = len(prompt_msgs)
    if len(response_msgs) > shared and [dict(m) for m in response_msgs[:shared]] == [dict(m) for m in prompt_msgs]:
        return response_msgs[shared:]
    return response_msgs


def render_prompt_and_response(
    prompt: str | Messages,
    response: str | Messages,
    tokenizer: PreTrainedTokenizerBase | None,
    row_index: int,
    template_plain_text: bool = False,
) -> tuple[str, str]:
    """Return (prompt_text, response_text) such that prompt_text + response_text is the full sequence.

    Plain-string rows stay as they are unless ``template_plain_text`` is set, in which case they are
    treated as one user turn and one assistant turn (what an instruction-tuned policy expects)."""
    plain = isinstance(prompt, str) and isinstance(response, str)
    has_template = tokenizer is not None and getattr(tokenizer, "chat_template", None) is not None
    if plain and not (template_plain_text and has_template):
        return prompt, response
    prompt_msgs = prompt_messages(prompt)
    response_msgs = response_turns(prompt_msgs, response)
    if not (is_conversation(prompt_msgs) and is_conversation(response_msgs)):
        raise DataError(f"row {row_index}: prompt/response must be strings or lists of {{role, content}} messages")
    check_messages(prompt_msgs, row_index, "prompt")
    check_messages(response_msgs, row_index, "response")
    check_response_roles(response_msgs, row_index, "response")
    if tokenizer is None or getattr(tokenizer, "chat_template", None) is None:
        return _plain_render(prompt_msgs) + "\n", _plain_render(response_msgs)
    prompt_text = tokenizer.apply_chat_template(prompt_msgs, tokenize=False, add_generation_prompt=True)
    full_text = tokenizer.apply_chat_template(prompt_msgs + response_msgs, tokenize=False)
    if not full_text.startswith(prompt_text):
        raise DataError(f"row {row_index}: the chat template does not extend the prompt; cannot split the response")
    return prompt_text, full_text[len(prompt_text) :]


def split_implicit_prompt(chosen: Any, rejected: Any, row_index: int) -> tuple[Any, Any, Any]:
    """TRL's implicit prompt (``trl.data_utils.extract_prompt``): the longest common prefix of chosen and rejected,
    characters for text and whole messages for conversations, is the prompt; for text a space just before the
    split goes with the responses. Where TRL would return something odd, this refuses and says why: responses
    with no common start (no prompt at all) or one response that is the start of the other."""
    if isinstance(chosen, str) != isinstance(rejected, str):
        raise DataError(f"row {row_index}: chosen and rejected must both be text or both message lists")
    limit = min(len(chosen), len(rejected))
    split = next((k for k in range(limit) if chosen[k] != rejected[k]), None)
    if split is None:
        raise DataError(
            f"row {row_index}: one of chosen/rejected is the start of the other, so no prompt can be split off; "
            "give a prompt column"
        )
    if split > 0 and chosen[split - 1] == " ":
        split -= 1
    if split == 0:
        raise DataError(
            f"row {row_index}: chosen and rejected share no beginning, so there is no prompt; give a prompt column"
        )
    return chosen[:split], chosen[split:], rejected[split:]


def split_hh_dialogue(chosen: str, rejected: str, row_index: int) -> tuple[str, str, str]:
    """Anthropic-HH rows hold two full dialogues; the prompt is their shared prefix up to and including the
    last "\n\nAssistant:" inside it (the dialogues may even differ in their number of turns)."""
    shared = 0
    for a, b in zip(chosen, rejected):
        if a != b:
            break
        shared += 1
    cut = chosen.rfind(HH_ASSISTANT, 0, shared)
    if cut < 0 or cut + len(HH_ASSISTANT) > shared:
        raise DataError(f"row {row_index}: HH-format chosen and rejected share no '\\n\\nAssistant:' turn")
    end = cut + len(HH_ASSISTANT)
    return chosen[:end], chosen[end:], rejected[end:]


def render_rewardbench_dialogue(
    prompt: str | Messages, response: str, tokenizer: PreTrainedTokenizerBase | None, row_index: int
) -> tuple[str, str]:
    """(prompt_text, response_text) as reward-bench renders a pair (``prepare_dialogue_from_tokenizer`` in
    ``rewardbench/utils.py``), so that its scores can be reproduced:

    * the prompt is rendered *without* the generation prompt, so the assistant header belongs to the response;
    * a multi-turn prompt is read as alternating user / assistant turns by position, whatever roles it names;
    * prompt_text + response_text is the full rendered conversation (reward-bench's ``text_chosen``).

    reward-bench falls back to a FastChat template when the tokenizer has none; mmpo ships no FastChat
    templates, so that case is refused rather than scored under a different format."""
    if tokenizer is None or getattr(tokenizer, "chat_template", None) is None:
        raise DataError(
            "reward-bench scoring renders pairs with the tokenizer's chat template and this tokenizer has none "
            "(reward-bench would use a FastChat template); use --scoring mmpo"
        )
    if not isinstance(response, str):
        raise DataError(f"row {row_index}: reward-bench scoring needs each response as one string")
    if isinstance(prompt, str):
        messages = [{"role": "user", "content": prompt}]
    else:
        if not is_conversation(prompt) or not prompt:
            raise DataError(f"row {row_index}: the prompt must be a string or a list of {{role, content}} messages")
        messages = [
            {"role": "user" if k % 2 == 0 else "assistant", "content": m["content"]} for k, m in enumerate(prompt)
        ]
        if messages[-1]["role"] != "user":
            raise DataError(
                f"row {row_index}: the prompt has an even number of turns; its last turn must be the user's"
            )
    prompt_text = tokenizer.apply_chat_template(messages, tokenize=False)
    full_text = tokenizer.apply_chat_template([*messages, {"role": "assistant", "content": response}], tokenize=False)
    if not full_text.startswith(prompt_text):
        raise DataError(f"row {row_index}: the chat template does not extend the prompt; cannot split the response")
    return prompt_text, full_text[len(prompt_text) :]
