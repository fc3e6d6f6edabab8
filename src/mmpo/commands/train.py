"""``mmpo train {reward,policy,kto}``: a config (YAML or bundled name) plus overrides, trained."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mmpo.config.loading import load_config
from mmpo.config.paths import resolve_config_path
from mmpo.training.run import TrainResult, train_from_config


@dataclass(frozen=True)
class TrainParams:
    kind: str
    config: str | None = None
    overrides: list[str] = field(default_factory=list)


def run_train(params: TrainParams) -> tuple[dict[str, Any], TrainResult]:
    """Train, and return the JSON summary printed on stdout with the full result."""
    config_path = resolve_config_path(params.config) if params.config else None
    cfg = load_config(config_path, params.overrides, kind=params.kind)
    result = train_from_config(cfg)
    summary: dict[str, Any] = {"output_dir": str(result.output_dir), **result.metrics}
    summary["reliability_png"] = str(result.reliability_png) if result.reliability_png else None
    summary["preference_logit_history_png"] = str(result.history_png) if result.history_png else None
    summary["world_size"] = result.world_size
    summary["train_pairs_per_rank"] = list(result.train_pairs_per_rank)
    return summary, result
