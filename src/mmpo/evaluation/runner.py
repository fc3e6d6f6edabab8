"""``mmpo eval``: score a trained reward model or policy on pair files and report calibration.

Several ``--data`` files can be given; each becomes a section (the folder name for files called
dataset.json, else the file stem) and the report adds a RewardBench-style section-averaged accuracy.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from mmpo.config import data_config_from_overrides, saved_run_config
from mmpo.data.prepare import prepare_pairs
from mmpo.errors import ConfigError
from mmpo.evaluation.metrics import pairwise_calibration, preference_report
from mmpo.evaluation.reliability import plot_reliability
from mmpo.evaluation.scoring import RewardPairScorer, policy_pair_logits
from mmpo.models import load_causal_lm, load_tokenizer
from mmpo.reward_head import is_reward_head_folder
from mmpo.training.tokenize import LengthPolicy, tokenize_policy_pairs

_GENERIC_STEMS = {"dataset", "data", "test", "eval", "train"}


def section_name(path: str) -> str:
    p = Path(path.split(":", 1)[-1])
    return p.parent.name if p.stem.split(".")[0] in _GENERIC_STEMS else p.stem.split(".")[0]


def evaluate_from_args(args: argparse.Namespace) -> dict[str, Any]:
    data_cfg = data_config_from_overrides(args.data_overrides)
    head_mode = is_reward_head_folder(args.model)
    tokenizer = None if head_mode else load_tokenizer(args.model)
    pairs: list[dict[str, Any]] = []
    files = args.data if isinstance(args.data, list) else [args.data]
    for path in files:
        file_pairs = prepare_pairs(data_cfg, path, tokenizer, name=path)
        if len(files) > 1 and not data_cfg.section_column:
            for pair in file_pairs:
                pair["section"] = section_name(path)
        pairs += file_pairs
    if args.kind == "reward":
        scorer = RewardPairScorer(args.model, args.max_length, args.max_prompt_length, args.batch_size)
        logits = scorer.logits(pairs)
    else:
        length = LengthPolicy(args.max_length, args.max_prompt_length, "truncate")  # evaluation scores every pair
        features = tokenize_policy_pairs(pairs, tokenizer, length)
        trained = saved_run_config(args.model)
        beta = args.beta if args.beta is not None else trained.get("loss", {}).get("beta")
        reference_name = args.ref_model or trained.get("model")
        if beta is None or not reference_name:
            raise ConfigError("policy eval needs --beta and --ref-model (no mmpo_config.yaml next to the model)")
        logits = policy_pair_logits(
            load_causal_lm(args.model),
            load_causal_lm(reference_name),
            features,
            tokenizer.pad_token_id,
            beta,
            args.batch_size,
        )
    margins = [p["margin"] for p in pairs]
    sections = [p["section"] for p in pairs]
    report = preference_report(logits, margins, args.gamma, args.bins, sections)
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        report["reliability_png"] = str(
            plot_reliability(
                {Path(args.model).name: pairwise_calibration(logits, margins, args.bins)}, out / "reliability.png"
            )
        )
        (out / "report.json").write_text(json.dumps(report, indent=2))
    return report
