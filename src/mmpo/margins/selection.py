"""Margin-based data selection: which pairs of a file are worth training on, scored from their margins.

Pure numbers in, indices out, so the scores can be checked against each method's reference code on the same
vectors (tests/selection_upstream.py):

- ``margin``: the data's own quality margin, largest first (the "larger margins are better" baseline).
- ``alignment-potential`` (Huang et al. 2025, arXiv 2503.01864; ``Hesse73/Alignment-Potential-Metric``):
  z(explicit margin) - w * z(|implicit margin|), the implicit margin taken under the policy to be trained, before
  training (mean log-prob per token of y_w minus y_l, no reference), z-scores over the whole file with the
  population standard deviation: pairs the judge separates clearly but the model does not yet.
- ``dual-margin`` (Deng et al. 2025, arXiv 2502.14560): the external margin m_ex and the implicit DPO margin m_im
  (log-ratio margin of a model DPO-trained on a small seed set against its reference, summed log-probs, no beta),
  added (``add``) or combined as two probabilities (``mul``: each clipped to [-2, t] with the reference code's tail
  threshold t, shifted and scaled into [0, 1], then p1 p2 / (p1 p2 + (1 - p1)(1 - p2))).
"""

from __future__ import annotations

import numpy as np

SELECTION_METHODS = ("margin", "alignment-potential", "dual-margin")
DUAL_MARGIN_COMBINATIONS = ("add", "mul")


def zscore(values: np.ndarray) -> np.ndarray:
    """(v - mean) / std with the population standard deviation (numpy's default, as the reference code)."""
    values = np.asarray(values, dtype=np.float64)
    std = values.std()
    return (values - values.mean()) / std if std > 0 else np.zeros_like(values)


def alignment_potential(explicit: np.ndarray, implicit: np.ndarray, logp_weight: float = 1.0) -> np.ndarray:
    """z(explicit) - logp_weight * z(|implicit|) per pair."""
    return zscore(explicit) - logp_weight * zscore(np.abs(np.asarray(implicit, dtype=np.float64)))


def tail_threshold(margins: np.ndarray, start: float) -> int:
    """The reference code's clip point: from int(start) up, while at least (max - t) and at least 30 margins lie in
    (t, max], raise t by one; a long upper tail keeps more of its range."""
    top = margins.max()
    t = int(start)
    while True:
        above = np.sum((margins > t) & (margins <= top))
        if above < (top - t) or above < 30 or t > top:
            return t
        t += 1


def _unit_interval(margins: np.ndarray, clip_at: int) -> np.ndarray:
    shifted = np.clip(margins, -2, clip_at) + 2
    top = shifted.max()
    return shifted / top if top > 0 else np.zeros_like(shifted)


def dual_margin(external: np.ndarray, implicit: np.ndarray, combine: str = "add") -> np.ndarray:
    """m_im + m_ex, or the Bayesian combination of both margins read as probabilities (``mul``). A pair whose two
    probabilities are 0 and 1 has no combined value (0/0); it scores lowest here, where the reference code's argsort
    would put the NaN first in line."""
    external = np.nan_to_num(np.asarray(external, dtype=np.float64), nan=0.0)
    implicit = np.nan_to_num(np.asarray(implicit, dtype=np.float64), nan=0.0)
    if combine == "add":
        return implicit + external
    if combine != "mul":
        raise ValueError(f"--combine {combine!r}; choose one of {DUAL_MARGIN_COMBINATIONS}")
    p1 = _unit_interval(implicit, tail_threshold(implicit, implicit.max() / 2))
    p2 = _unit_interval(external, tail_threshold(external, external.max() / 1.5))
    with np.errstate(invalid="ignore", divide="ignore"):
        combined = p1 * p2 / (p1 * p2 + (1 - p1) * (1 - p2))
    return np.where(np.isnan(combined), -np.inf, combined)


def top_fraction(scores: np.ndarray, keep: float) -> np.ndarray:
    """Indices of the int(keep * N) highest scores (at least one), in file order; equal scores keep file order."""
    scores = np.asarray(scores, dtype=np.float64)
    if not 0 < keep <= 1:
        raise ValueError(f"--keep must be a fraction in (0, 1] (got {keep})")
    count = max(1, int(keep * len(scores)))
    ranked = np.argsort(-np.nan_to_num(scores, nan=-np.inf), kind="stable")[:count]
    return np.sort(ranked)
