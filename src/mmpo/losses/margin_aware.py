"""The margin-aware family: losses whose margin adapts per pair or per batch (gamma-PO, AMaPO, beta-DPO), comes
from a reward model (MADPO), or is shaped on each side (BPO) or clipped (RePO).

Each is one function from ``PolicyLossInputs`` to a loss per pair (B,), checked in the tests against its reference
code (copied there with its source named) on the same inputs. What each needs (a reference model, a margin, length-
averaged log-probs, the batch statistics) is declared in its row of ``losses/table.py``; the hyper-parameters are
its own record in ``LossConfig`` (``loss.bpo.alpha``), named as its paper names them.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from mmpo.losses.hyperparameters import LossConfig
from mmpo.losses.inputs import BatchStatistics, PolicyLossInputs

GAMMAPO_STEPS = 20  # the reference code's fixed number of mirror-descent steps
GAMMAPO_EPS = 1e-10


def _batch(x: PolicyLossInputs) -> BatchStatistics:
    """The trainer's gathered statistics, or (a loss called on its own) the given pairs as the whole batch."""
    return x.batch if x.batch is not None else BatchStatistics.of_batch(x.delta)


def gammapo_margins(reward_gaps: torch.Tensor, gamma0: float, tau: float) -> torch.Tensor:
    """gamma-PO's target margins for a set of reward gaps r_j = beta * delta_j (detached).

    The reference code (``get_gamma_b`` / ``get_gamma_dq``) minimises tau * KL(p || uniform) + mean_j -log
    sigmoid(r_j - gamma0 * N * p_j) over a distribution p by 20 exponentiated-gradient steps of size min(0.5/tau, 1),
    and returns gamma_j = gamma0 * N * p_j from the last step (computed before the last update of p): the margins
    average gamma0, and a pair with a larger gap gets a larger margin.
    """
    reward_gaps = reward_gaps.detach()
    n = reward_gaps.numel()
    step = min(0.5 / tau, 1.0)
    p = torch.full_like(reward_gaps, 1.0 / n)
    gamma = gamma0 * n * p
    for _ in range(GAMMAPO_STEPS):
        gamma = gamma0 * n * p
        grad = tau * (1 + torch.log(n * (p + GAMMAPO_EPS))) + gamma0 * n / (1 + torch.exp(reward_gaps - gamma)) / n
        factor = torch.exp(-step * grad)
        p = p * factor / torch.sum(p * factor)
    return gamma


def gammapo_loss(config: LossConfig, x: PolicyLossInputs) -> torch.Tensor:
    """gamma-SimPO: -log sigmoid(beta * (delta - gamma_i / beta)), delta of length-averaged log-probs, no reference.

    The margins are solved over the whole gathered micro-batch (the reference code's ``get_gamma_b``); its released
    runs solve over a queue of earlier batches' gaps as well, sampled at random, which a resumable run cannot repeat.
    """
    beta, batch, delta = config.beta, _batch(x), x.delta
    gamma0 = config.gammapo.gamma_beta_ratio * beta
    margins = gammapo_margins(beta * batch.deltas, gamma0, config.gammapo.tau)[batch.local(len(delta))]
    return -F.logsigmoid(beta * (delta - margins.to(delta.dtype) / beta))


def amapo_loss(config: LossConfig, x: PolicyLossInputs) -> torch.Tensor:
    """AMaPO: -log sigmoid(beta * delta_i - m_i), delta of length-averaged log-probs, no reference, with the adaptive
    margin m_i = beta * exp(z_i * mu) for a pair below the batch mean mu (z_i = (mu - delta_i) / s, s the unbiased
    standard deviation over the gathered batch) and 0 otherwise; m is detached. ``label_smoothing`` mixes in the
    flipped term as the reference code does."""
    beta, eps, batch, delta = config.beta, config.label_smoothing, _batch(x), x.delta
    mu, s = batch.deltas.mean(), batch.deltas.std()
    below = delta.detach() - mu < 0
    margin = beta * torch.where(below, torch.exp(((mu - delta.detach()) / s) * mu), torch.zeros_like(delta))
    z = beta * delta - margin.detach()
    return -F.logsigmoid(z) * (1 - eps) - F.logsigmoid(-z) * eps


def beta_dpo_kept(config: LossConfig, batch: BatchStatistics) -> torch.Tensor:
    """Indices of the gathered pairs beta-DPO keeps: int(N * rho) drawn without replacement with weights
    exp(-((delta - M0) / sigma0)^2 / 2) (a zero weight is floored so that the draw never fails where the reference
    code would raise; with sigma0 = 0 every pair weighs the same)."""
    deltas, mean, std = batch.deltas, batch.running_mean, batch.running_std
    if mean is None or std is None:
        raise ValueError("beta_dpo needs the moving averages M0 and sigma0 in the batch statistics")
    weights = torch.exp(-0.5 * ((deltas - mean) / std).pow(2)) if std > 0 else torch.ones_like(deltas)
    weights = weights.clamp(min=torch.finfo(weights.dtype).tiny)
    count = max(1, int(deltas.numel() * config.beta_dpo.rho))
    # drawn on the CPU, where the trainer's generator lives: the same pairs on every device type
    return torch.multinomial(weights.cpu(), count, replacement=False, generator=batch.generator).to(deltas.device)


def beta_dpo_loss(config: LossConfig, x: PolicyLossInputs) -> torch.Tensor:
    """beta-DPO: -log sigmoid(beta_b * delta) over the kept pairs, beta_b = max(beta * (1 + alpha * (mean kept
    delta - M0)), 1e-3) detached; a dropped pair's loss is 0 and a kept one's is scaled by B / (kept here), so the
    trainer's mean over B equals the reference code's mean over this process's kept pairs."""
    batch, delta = _batch(x), x.delta
    kept = beta_dpo_kept(config, batch)
    beta_b = config.beta * (1 + config.beta_dpo.alpha * (batch.deltas[kept].mean() - batch.running_mean))
    beta_b = beta_b.clamp(min=1e-3).detach().to(delta.dtype)
    mask = torch.zeros_like(batch.deltas)
    mask[kept] = 1
    local = mask[batch.local(len(delta))].to(delta.dtype)
    return -F.logsigmoid(beta_b * delta) * local * (len(delta) / local.sum().clamp(min=1))


def madpo_weights(config: LossConfig, reward_margin: torch.Tensor) -> torch.Tensor:
    """MADPO's weight w(m) = sigmoid(c(|m|) m) / sigmoid(m) for m > -tau, else 1, with
    c(u) = c_min + (c_max - c_min) / (1 + (c_max - 1) / (1 - c_min) * exp(lmbda * (u - tau))): pairs with a small
    reward margin weigh more (up to c_max's), confident ones less, and a strongly contrary margin is capped at 1."""
    cfg, m = config.madpo, reward_margin.detach()
    c = cfg.c_min + (cfg.c_max - cfg.c_min) / (
        1 + (cfg.c_max - 1) / (1 - cfg.c_min) * torch.exp(cfg.lmbda * (m.abs() - cfg.tau))
    )
    ratio = torch.exp(F.logsigmoid(c * m) - F.logsigmoid(m))
    return torch.where(m > -cfg.tau, ratio, torch.ones_like(m))


def madpo_loss(config: LossConfig, x: PolicyLossInputs) -> torch.Tensor:
    """MADPO: w(m) * -log sigmoid(beta * delta), m the pair's reward-model margin (the data's margin: make it with
    ``mmpo margins annotate --judge rm:RUN``, in the reward model's units, which tau is set for)."""
    delta = x.delta
    return madpo_weights(config, x.margin.to(delta.device)).to(delta.dtype) * -F.logsigmoid(config.beta * delta)


def bpo_loss(config: LossConfig, x: PolicyLossInputs) -> torch.Tensor:
    """BPO: f(beta * min(log-ratio of y_w, alpha * -(log-ratio of y_l))), f hinge (1 - z)_+ or logistic -log sigmoid z.

    ``torch.minimum`` as the reference code's ``torch.min``: at a tie (every pair at step 0) it splits the gradient
    between both sides."""
    chosen = x.chosen_logps - x.ref_chosen_logps
    rejected = x.ref_rejected_logps - x.rejected_logps
    z = config.beta * torch.minimum(chosen, config.bpo.alpha * rejected)
    if config.bpo.preference_function == "hinge":
        return torch.relu(1 - z)
    return -F.logsigmoid(z)


def repo_loss(config: LossConfig, x: PolicyLossInputs) -> torch.Tensor:
    """RePO: ReLU(gamma - delta), delta of length-averaged log-probs without a reference; a pair whose margin already
    exceeds gamma contributes nothing."""
    return torch.relu(-(x.delta - config.repo.gamma))
