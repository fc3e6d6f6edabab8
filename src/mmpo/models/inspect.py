"""What kind of model a name points at, read from its config files without loading any weights.

Used to refuse a mismatch up front: ``mmpo eval --kind policy`` on a reward model, a causal LM given as a
reward model (which would silently get a random classification head), or a folder that holds no model.
"""

from __future__ import annotations

import json

from mmpo.errors import ConfigError
from mmpo.models.loading import BUNDLED_ENCODER, BUNDLED_SMOLLM2, model_file
from mmpo.models.reward_head import HEAD_CONFIG

REWARD_KINDS = ("reward_head", "sequence_classification")
_TASK_TYPES = {"SEQ_CLS": "sequence_classification", "CAUSAL_LM": "causal_lm"}
_DESCRIPTIONS = {"causal_lm": "a causal LM (a policy)", "encoder": "a plain encoder without a reward head"}


def model_kind(name_or_path: str, trust_remote_code: bool = False) -> str:
    """'reward_head', 'sequence_classification', 'causal_lm' or 'encoder'; a model that needs code of its own is
    refused unless ``trust_remote_code``."""
    if name_or_path == BUNDLED_ENCODER:
        return "encoder"
    if name_or_path == BUNDLED_SMOLLM2 or name_or_path.endswith(".gguf"):
        return "causal_lm"
    if model_file(name_or_path, HEAD_CONFIG) is not None:
        return "reward_head"
    adapter = model_file(name_or_path, "adapter_config.json")
    if adapter is not None:
        task = json.loads(adapter.read_text()).get("task_type")
        return _TASK_TYPES.get(str(task), "causal_lm")
    config = model_file(name_or_path, "config.json")
    if config is None:
        raise ConfigError(
            f"{name_or_path} is not a model folder (no config.json, adapter_config.json or {HEAD_CONFIG})"
        )
    settings = json.loads(config.read_text())
    if not trust_remote_code:
        refuse_remote_code(name_or_path, settings)
    architectures = settings.get("architectures") or []
    if any(a.endswith("ForSequenceClassification") for a in architectures):
        return "sequence_classification"
    if any(a.endswith(("ForCausalLM", "LMHeadModel", "ForConditionalGeneration")) for a in architectures):
        return "causal_lm"
    return "encoder"


def refuse_remote_code(name_or_path: str, settings: dict) -> None:
    """A model type transformers does not know, with an ``auto_map`` naming the model's own Python files: loading
    it would run that code. Known types ignore ``auto_map`` when remote code is off, so they load as usual."""
    from transformers import CONFIG_MAPPING

    auto_map = settings.get("auto_map")
    if auto_map and settings.get("model_type") not in CONFIG_MAPPING:
        modules = sorted({str(v[0] if isinstance(v, list) else v) for v in auto_map.values()})
        raise ConfigError(
            f"{name_or_path} needs code of its own to load (config.json auto_map: {', '.join(modules)[:200]}); mmpo "
            "runs no model code unless trust_remote_code: true is set, which only a model you trust should get"
        )


def require_model_kind(name_or_path: str, wanted: str, flag: str, trust_remote_code: bool = False) -> str:
    """The model's kind, or a ConfigError when it cannot serve as ``wanted`` ('reward' or 'policy')."""
    kind = model_kind(name_or_path, trust_remote_code)
    ok = kind in REWARD_KINDS if wanted == "reward" else kind == "causal_lm"
    if not ok:
        flag = f"{flag} " if flag.startswith("-") else f"{flag} = "
        described = _DESCRIPTIONS.get(kind, "a reward model")
        hint = {"causal_lm": "--kind policy", "encoder": "a trained model"}.get(kind, "--kind reward")
        raise ConfigError(f"{flag}{name_or_path} is {described}, not a {wanted} model; use {hint}")
    return kind


def max_positions(name_or_path: str) -> int | None:
    """The positions the model was built for (config.json's max_position_embeddings), when its config says."""
    if name_or_path.startswith("bundled:") or name_or_path.endswith(".gguf"):
        return None
    config = model_file(name_or_path, "config.json")
    if config is None:
        return None
    settings = json.loads(config.read_text())
    settings = settings.get("text_config", settings) if isinstance(settings.get("text_config"), dict) else settings
    value = settings.get("max_position_embeddings")
    return int(value) if isinstance(value, int) and value > 0 else None
