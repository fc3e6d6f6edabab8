"""The ``README.md`` card of a trained folder: Hub front-matter, what was trained and on what, and the numbers.

A folder pushed to the Hub is read by people before it is loaded by code, and the Hub reads the card's YAML
front-matter to file the model (``library_name``, ``base_model``, ``datasets``, ``tags``). The card says the loss
and its hyper-parameters, the data and where its margins came from, the final metrics, how to load it, and the
MMPO citation, so a model trained with mmpo can be cited and reproduced from its page alone.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from mmpo.config.paths import parse_hub_dataset_id
from mmpo.config.schema import RunConfig
from mmpo.losses.table import loss_spec
from mmpo.models.loading import hub_model_id

CARD_FILE = "README.md"
MMPO_CITATION = """@article{kim2024margin,
  title={Margin Matching Preference Optimization: Enhanced Model Alignment with Granular Feedback},
  author={Kim, Kyuyoung and Seo, Ah Jeong and Liu, Hao and Shin, Jinwoo and Lee, Kimin},
  journal={arXiv preprint arXiv:2410.03145},
  year={2024}
}"""


def _yaml_list(key: str, values: list[str]) -> list[str]:
    return [f"{key}:", *[f"- {json.dumps(v)}" for v in values]] if values else []


def _front_matter(cfg: RunConfig) -> str:
    base = hub_model_id(cfg.model)
    sources = [cfg.data.train_path, cfg.data.eval_path, *[s["path"] for s in cfg.data.train_mixture]]
    hub_datasets = [d.repo_id for d in (parse_hub_dataset_id(s) for s in sources if s) if d is not None]
    frozen_head = cfg.kind == "reward" and cfg.reward_head == "frozen_encoder"
    kind_tags = {"reward": ["reward-model"], "policy": ["dpo", "preference-optimization"], "kto": ["kto"]}[cfg.kind]
    lines = ["---", f"library_name: {'mmpo' if frozen_head else 'transformers'}"]
    lines += [f"base_model: {json.dumps(base[0])}"] if base else []
    lines += _yaml_list("datasets", list(dict.fromkeys(hub_datasets)))
    lines += _yaml_list("tags", list(dict.fromkeys(["mmpo", *kind_tags, cfg.loss.loss_type])))
    if not frozen_head:
        lines.append(f"pipeline_tag: {'text-classification' if cfg.kind == 'reward' else 'text-generation'}")
    return "\n".join([*lines, "---"])


def _number(value: float) -> str:
    return "inf" if math.isinf(value) else f"{value:.4g}"


def _loss_rows(cfg: RunConfig) -> list[str]:
    rows = ["| setting | value |", "|---|---|"]
    rows.append(f"| `loss.loss_type` | {cfg.loss.loss_type} |")
    for name in loss_spec(cfg.loss.loss_type).hyperparameters:  # the settings this loss reads, from its table row
        value = cfg.loss
        for part in name.split("."):
            value = getattr(value, part)
        rows.append(f"| `loss.{name}` | {_number(value) if isinstance(value, float) else value} |")
    train = cfg.train
    batch = train.per_device_train_batch_size * train.gradient_accumulation_steps
    by_epochs = train.max_steps == -1
    length = ("train.num_train_epochs", train.num_train_epochs) if by_epochs else ("train.max_steps", train.max_steps)
    for key, value in (
        ("train.learning_rate", _number(train.learning_rate)),
        length,
        ("pairs per step and device", batch),
        ("max_length / max_prompt_length", f"{cfg.max_length} / {cfg.max_prompt_length}"),
        ("lora", f"r={cfg.lora.r}, alpha={cfg.lora.alpha}" if cfg.lora.enabled else "no (full fine-tuning)"),
    ):
        rows.append(f"| {key} | {value} |")
    return rows


def _how_to_load(cfg: RunConfig, repo_id: str) -> str:
    if cfg.kind == "reward" and cfg.reward_head == "frozen_encoder":
        return f"```bash\nmmpo eval --model {repo_id} --data pairs.jsonl\n```"
    auto = "AutoModelForSequenceClassification" if cfg.kind == "reward" else "AutoModelForCausalLM"
    return f"```python\nfrom transformers import {auto}\n\nmodel = {auto}.from_pretrained({repo_id!r})\n```"


def _train_sources(data) -> str:
    if not data.train_mixture:
        return f"`{data.train_path}`"
    parts = []
    for source in data.train_mixture:
        amount = f"{source['count']} pairs" if "count" in source else f"{source.get('fraction', 1.0):g} of its pairs"
        own = {k: v for k, v in source.items() if k not in ("path", "count", "fraction")}
        parts.append(f"`{source['path']}` ({amount}" + (f"; {own}" if own else "") + ")")
    return "a mixture of " + ", ".join(parts)


def model_card(cfg: RunConfig, metrics: dict[str, float], repo_id: str = "") -> str:
    name = repo_id or Path(cfg.train.output_dir).name
    what = {"reward": "reward model", "policy": "policy", "kto": "policy (KTO)"}[cfg.kind]
    data = cfg.data
    lines = [
        _front_matter(cfg),
        "",
        f"# {name}",
        "",
        f"A {what} trained with [mmpo](https://arxiv.org/abs/2410.03145) (Margin Matching Preference Optimization)"
        f" from `{cfg.model}`. The target preference of each pair is p = sigmoid(gamma * m), m its quality margin.",
        "",
        "## Data",
        "",
        f"- train: {_train_sources(data)}" + (f"; eval: `{data.eval_path}`" if data.eval_path else ""),
        f"- margins: `{data.margin_source}`, scaled by {_number(data.margin_scale)}",
        "",
        "## Loss and training",
        "",
        *_loss_rows(cfg),
        "",
        "## Final evaluation",
        "",
    ]
    timing = ("runtime", "samples_per_second", "steps_per_second")
    shown = {
        k.removeprefix("eval_"): v
        for k, v in metrics.items()
        if isinstance(v, (int, float)) and k.removeprefix("eval_") not in timing
    }
    if shown:
        lines += ["| metric | value |", "|---|---|", *[f"| {k} | {_number(float(v))} |" for k, v in shown.items()]]
    else:
        lines.append("No evaluation data was given.")
    lines += ["", "## Use", "", _how_to_load(cfg, name), "", "## Citation", "", "```bibtex", MMPO_CITATION, "```", ""]
    return "\n".join(lines)


def write_model_card(cfg: RunConfig, out: Path, metrics: dict[str, float]) -> Path:
    path = out / CARD_FILE
    path.write_text(model_card(cfg, metrics, cfg.train.hub_model_id))
    return path
