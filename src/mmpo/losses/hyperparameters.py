"""The loss hyper-parameters, defined once: config files fill them, the policy loss validates them."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class LossHyperparameters:
    """gamma: MMPO scale, p = sigmoid(gamma * margin); inf gives DPO / Bradley-Terry.
    label_smoothing: cDPO / robust-DPO flip probability epsilon (cDPO's constant p = 1 - epsilon).
    simpo_gamma: SimPO target reward margin (subtracted from h).
    odpo_alpha: ODPO offset scale, h = beta * delta - alpha * log(margin).
    """

    loss_type: str = "mmpo"
    beta: float = 0.1
    gamma: float = 1.0
    label_smoothing: float = 0.0
    simpo_gamma: float = 0.5
    odpo_alpha: float = 1.0
