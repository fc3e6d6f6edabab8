"""The loss hyper-parameters, defined and validated once.

The same object is filled by the YAML config (``loss:``), validated before any data is read, and handed
unchanged to every trainer (reward, policy, KTO) and to the pure-torch loss functions.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

POLICY_LOSS_TYPES = (
    "mmpo",
    "dpo",
    "cdpo",
    "ipo",
    "robust",
    "hinge",
    "simpo",
    "odpo",
    "gammapo",
    "amapo",
    "madpo",
    "beta_dpo",
    "bpo",
    "repo",
)
REWARD_LOSS_TYPES = ("mmpo", "bt", "cbt", "llama2_margin")
KTO_LOSS_TYPES = ("kto",)
LOSS_TYPES = {"policy": POLICY_LOSS_TYPES, "reward": REWARD_LOSS_TYPES, "kto": KTO_LOSS_TYPES}


def _finite(name: str, value: float) -> None:
    if value != value or value in (float("inf"), float("-inf")):
        raise ValueError(f"loss.{name} must be a finite number (got {value})")


def _positive(name: str, value: float) -> None:
    if not 0 < value < float("inf"):
        raise ValueError(f"loss.{name} must be a finite number > 0 (got {value})")


@dataclass
class GammaPOConfig:
    """gamma-PO (Sun et al. 2025, ``sunjie279/gammaPO``): per-pair target margins gamma_i found by 20 steps of
    mirror descent over the batch's reward gaps, with mean gamma0 = gamma_beta_ratio * beta; tau is the KL weight
    (smaller tau spreads the margins more). Names as in the reference code's ``SimPOConfig``."""

    gamma_beta_ratio: float = 0.25
    tau: float = 1.0

    def validate(self) -> None:
        _finite("gammapo.gamma_beta_ratio", self.gamma_beta_ratio)
        _positive("gammapo.tau", self.tau)


@dataclass
class BetaDPOConfig:
    """beta-DPO (Wu et al. 2024, ``junkangwu/beta-DPO``): beta_batch = beta * (1 + alpha * (mean margin of the kept
    pairs - M0)), with M0 a moving average (``momentum``) of the batch mean; rho is the fraction of the batch kept by
    the Gaussian margin filter around M0 (the reference code's ``mode_weight`` is 1 - rho)."""

    alpha: float = 0.6
    rho: float = 0.8
    momentum: float = 0.9

    def validate(self) -> None:
        _finite("beta_dpo.alpha", self.alpha)
        if not 0 < self.rho <= 1:
            raise ValueError(f"loss.beta_dpo.rho must be in (0, 1] (got {self.rho})")
        if not 0 <= self.momentum < 1:
            raise ValueError(f"loss.beta_dpo.momentum must be in [0, 1) (got {self.momentum})")


@dataclass
class MADPOConfig:
    """MADPO (Rho 2025, arXiv 2510.05342): each pair's DPO term is weighted by w(m) = sigmoid(c(|m|) m) / sigmoid(m)
    for m > -tau (1 below), with c falling from c_max to c_min around |m| = tau at slope lmbda; m is a reward
    model's margin. Defaults as the reference notebook: c_min = 1/c_max, tau = ln(999)."""

    c_max: float = 2.0
    c_min: float = 0.5
    lmbda: float = 1.0
    tau: float = math.log(999.0)

    def validate(self) -> None:
        if not (0 < self.c_min < 1 < self.c_max < float("inf")):
            raise ValueError(f"loss.madpo needs 0 < c_min < 1 < c_max (got c_min={self.c_min}, c_max={self.c_max})")
        _positive("madpo.lmbda", self.lmbda)
        _positive("madpo.tau", self.tau)


BPO_PREFERENCE_FUNCTIONS = ("hinge", "logistic")


@dataclass
class BPOConfig:
    """BPO (Sun et al. 2025, ``sunlin-ai/BPO``): the balanced reward margin min(r_w, -alpha * r_l) with gap adaptor
    alpha in (0, 1], fed to a preference function (hinge, the paper's headline run, or logistic)."""

    alpha: float = 0.3
    preference_function: str = "hinge"

    def validate(self) -> None:
        if not 0 < self.alpha <= 1:
            raise ValueError(f"loss.bpo.alpha (the gap adaptor) must be in (0, 1] (got {self.alpha})")
        if self.preference_function not in BPO_PREFERENCE_FUNCTIONS:
            raise ValueError(
                f"loss.bpo.preference_function = {self.preference_function!r}; choose one of {BPO_PREFERENCE_FUNCTIONS}"
            )


@dataclass
class RePOConfig:
    """RePO (Wu et al. 2025, ``junkangwu/RePO``): ReLU(gamma - (mean log pi(y_w) - mean log pi(y_l))), reference-free;
    beta plays no part in the loss (the reference code's ``gamma_beta_ratio`` is this gamma)."""

    gamma: float = 0.5

    def validate(self) -> None:
        _finite("repo.gamma", self.gamma)


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
    gammapo / beta_dpo / madpo / bpo / repo: each margin-aware loss's own hyper-parameters (``loss.bpo.alpha=0.3``),
    named as its paper and reference code name them; what each loss needs is declared in ``losses/table.py``.
    """

    loss_type: str = "mmpo"
    beta: float = 0.1
    gamma: float = 1.0
    label_smoothing: float = 0.0
    simpo_gamma: float = 0.5
    odpo_alpha: float = 1.0
    kto_desirable_weight: float = 1.0
    kto_undesirable_weight: float = 1.0
    gammapo: GammaPOConfig = field(default_factory=GammaPOConfig)
    beta_dpo: BetaDPOConfig = field(default_factory=BetaDPOConfig)
    madpo: MADPOConfig = field(default_factory=MADPOConfig)
    bpo: BPOConfig = field(default_factory=BPOConfig)
    repo: RePOConfig = field(default_factory=RePOConfig)

    def __post_init__(self) -> None:
        # a loss's record may be given as a mapping in Python, as it is in YAML: LossConfig("bpo", bpo={"alpha": 0.5})
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, dict) and f.default_factory is not dataclasses.MISSING:
                record_type = type(f.default_factory())
                unknown = set(value) - {g.name for g in dataclasses.fields(record_type)}
                if unknown:
                    raise ValueError(f"loss.{f.name} has no setting {sorted(unknown)[0]!r}")
                setattr(self, f.name, record_type(**value))
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
            _positive(name, getattr(self, name))
        for name in ("simpo_gamma", "odpo_alpha"):
            _finite(name, getattr(self, name))
        for record in (self.gammapo, self.beta_dpo, self.madpo, self.bpo, self.repo):
            record.validate()

    @property
    def needs_reference(self) -> bool:
        from mmpo.losses.table import loss_spec

        return loss_spec(self.loss_type).needs_reference

    @property
    def needs_margin(self) -> bool:
        from mmpo.losses.table import loss_spec

        return loss_spec(self.loss_type).needs_margin
