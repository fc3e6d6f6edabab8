"""The loss hyper-parameters, defined and validated once.

The same object is filled by the YAML config (``loss:``), validated before any data is read, and handed
unchanged to every trainer (reward, policy, KTO) and to the pure-torch loss functions.
"""

from __future__ import annotations

from dataclasses import dataclass

POLICY_LOSS_TYPES = ("mmpo", "dpo", "cdpo", "ipo", "robust", "hinge", "simpo", "odpo")
REWARD_LOSS_TYPES = ("mmpo", "bt", "cbt", "llama2_margin")
KTO_LOSS_TYPES = ("kto",)
LOSS_TYPES = {"policy": POLICY_LOSS_TYPES, "reward": REWARD_LOSS_TYPES, "kto": KTO_LOSS_TYPES}
LOSSES_NEEDING_MARGIN = ("mmpo", "odpo", "llama2_margin", "kto")
LOSSES_WITHOUT_REFERENCE = ("simpo",)


@dataclass
class LossConfig:
    """loss_type: one of POLICY_LOSS_TYPES, REWARD_LOSS_TYPES or 'kto'.
    beta: policy losses, h = beta * delta (unused by reward losses).
    gamma: MMPO scale, p = sigmoid(gamma * margin); inf gives DPO / Bradley-Terry.
    label_smoothing: cDPO / cBT / robust-DPO flip probability epsilon (cDPO's constant p = 1 - epsilon).
    simpo_gamma: SimPO target reward margin (subtracted from h).
    odpo_alpha: ODPO offset scale, h = beta * delta - alpha * log(margin).
    kto_desirable_weight / kto_undesirable_weight: KTO's lambda_D and lambda_U (TRL's desirable_weight and
    undesirable_weight), for data with more samples of one kind than the other.
    """

    loss_type: str = "mmpo"
    beta: float = 0.1
    gamma: float = 1.0
    label_smoothing: float = 0.0
    simpo_gamma: float = 0.5
    odpo_alpha: float = 1.0
    kto_desirable_weight: float = 1.0
    kto_undesirable_weight: float = 1.0

    def __post_init__(self) -> None:
        self.validate()

    def validate(self, kind: str | None = None) -> None:
        """Raise ValueError naming the field; with ``kind`` also check the loss fits that model kind."""
        allowed = LOSS_TYPES[kind] if kind else tuple(dict.fromkeys(t for ts in LOSS_TYPES.values() for t in ts))
        if self.loss_type not in allowed:
            target = f" for a {kind} model" if kind else ""
            raise ValueError(f"loss.loss_type = {self.loss_type!r}{target}; choose one of {allowed}")
        if not self.beta > 0 or self.beta == float("inf"):
            raise ValueError(f"loss.beta must be a finite number > 0 (got {self.beta})")
        if not self.gamma > 0:
            raise ValueError(f"loss.gamma must be > 0 or inf (got {self.gamma}); use gamma=inf for hard labels")
        if not 0.0 <= self.label_smoothing < 0.5:
            raise ValueError(f"loss.label_smoothing must be in [0, 0.5) (got {self.label_smoothing})")
        for name in ("kto_desirable_weight", "kto_undesirable_weight"):
            value = getattr(self, name)
            if not 0 < value < float("inf"):
                raise ValueError(f"loss.{name} must be a finite number > 0 (got {value})")
        for name in ("simpo_gamma", "odpo_alpha"):
            value = getattr(self, name)
            if value != value or value in (float("inf"), float("-inf")):
                raise ValueError(f"loss.{name} must be a finite number (got {value})")

    @property
    def needs_reference(self) -> bool:
        return self.loss_type not in LOSSES_WITHOUT_REFERENCE

    @property
    def needs_margin(self) -> bool:
        return self.loss_type in LOSSES_NEEDING_MARGIN
