"""The margin-aware losses' own reference code, copied here so that mmpo's losses are tested against it on the same
inputs. Each block names its repository, commit and lines; the code is as there, except where a comment says what was
changed to run it without a trainer (a stand-in ``dist`` module for the process group, methods taking ``self``).
Not part of the package.
"""

# ruff: noqa
# fmt: off

from __future__ import annotations

import collections
import random
from types import SimpleNamespace
from typing import Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F


class FakeDist:
    """Stands in for torch.distributed: ``all_gather`` fills the list with every rank's tensors, given up front."""

    def __init__(self, per_rank: list[torch.Tensor], rank: int) -> None:
        self.per_rank, self.rank = per_rank, rank

    def get_rank(self) -> int:
        return self.rank

    def get_world_size(self) -> int:
        return len(self.per_rank)

    def all_gather(self, out: list[torch.Tensor], value: torch.Tensor) -> None:
        for i, t in enumerate(self.per_rank):
            out[i].copy_(t)


dist = FakeDist([torch.zeros(1)], 0)


# --- Shiroha-Offical/AMaPO @ c6c89cc32fe8d001c3a5c336d0d20295018430c2, scripts/amapo_trainer.py L43-51 (`.to(rank)`
# dropped: a CPU test has no device of that index) ----------------------------------------------------------------
def all_gather_if_needed(values: torch.Tensor, rank: int, world_size: int) -> torch.Tensor:
    """Gather and stack/cat values from all processes, if there are multiple processes."""
    if world_size == 1:
        return values

    all_values = [torch.empty_like(values) for _ in range(world_size)]
    dist.all_gather(all_values, values)
    cat_function = torch.cat if values.dim() > 0 else torch.stack
    return cat_function(all_values, dim=0)


# --- Shiroha-Offical/AMaPO @ c6c89cc3, scripts/amapo_trainer.py L575-621 (a method of AMaPOTrainer) ----------------
def amapo_loss(
    self,
    policy_chosen_logps: torch.FloatTensor,
    policy_rejected_logps: torch.FloatTensor,
) -> Tuple[torch.FloatTensor, torch.FloatTensor, torch.FloatTensor, torch.FloatTensor, torch.FloatTensor, torch.FloatTensor]:
    pi_logratios = policy_chosen_logps - policy_rejected_logps
    pi_logratios = pi_logratios.to(self.accelerator.device)

    batch_margin = all_gather_if_needed(pi_logratios.detach(), dist.get_rank(), dist.get_world_size())
    batch_margin_mean = torch.mean(batch_margin)
    batch_margin_std = torch.std(batch_margin)
    # metric = self.gap_mean / batch_margin_mean

    if self.loss_type == "sigmoid":
        instance_margin = pi_logratios
        margin = self.beta * torch.where(instance_margin - batch_margin_mean < 0, torch.exp(
            ((batch_margin_mean - instance_margin) / batch_margin_std) * batch_margin_mean), 0).detach()
        losses = (
            -F.logsigmoid(self.beta * pi_logratios - margin) * (1 - self.label_smoothing)
            - F.logsigmoid(-(self.beta * pi_logratios - margin)) * self.label_smoothing
        )
        margin = margin.cpu().mean()

    else:
        raise ValueError(
            f"Unknown loss type: {self.loss_type}. Should be one of ['sigmoid', 'hinge']"
        )

    chosen_rewards = self.beta * policy_chosen_logps.to(self.accelerator.device).detach()
    rejected_rewards = self.beta * policy_rejected_logps.to(self.accelerator.device).detach()
    margin_accuracies = ((chosen_rewards - rejected_rewards) > self.beta * batch_margin_mean).float()

    return losses, margin, chosen_rewards, rejected_rewards, (self.beta * batch_margin_mean), margin_accuracies


def amapo_self(beta: float, label_smoothing: float = 0.0) -> SimpleNamespace:
    return SimpleNamespace(beta=beta, label_smoothing=label_smoothing, loss_type="sigmoid",
                           accelerator=SimpleNamespace(device="cpu"))


# --- junkangwu/beta-DPO @ 1629047374915ba319477caa4f6c6b2d1f172e5d, trainers.py L45-102 -----------------------------
def preference_loss(policy_chosen_logps: torch.FloatTensor,
                    policy_rejected_logps: torch.FloatTensor,
                    reference_chosen_logps: torch.FloatTensor,
                    reference_rejected_logps: torch.FloatTensor,
                    beta: float, loss_config, rank, world_size,
                    reference_free: bool = False,
                    gap_mean=None, gap_std=None, loss_mean=None, loss_std=None) -> Tuple[torch.FloatTensor, torch.FloatTensor, torch.FloatTensor]:
    pi_logratios = policy_chosen_logps - policy_rejected_logps
    ref_logratios = reference_chosen_logps - reference_rejected_logps

    if reference_free:
        ref_logratios = 0

    if loss_config.mode_loss == "beta_DPO":
        logits = pi_logratios - ref_logratios
        # 1. select data
        A_gap = (policy_chosen_logps - reference_chosen_logps - policy_rejected_logps + reference_rejected_logps)
        A = all_gather_if_needed(A_gap.detach(), rank, world_size)
        mean = gap_mean
        std = gap_std
        weight_sample = torch.exp(-0.5 * ((A - mean) / std).pow(2))
        sample_num = int(weight_sample.numel() * (1 - loss_config.mode_weight) )
        sample_index = torch.multinomial(weight_sample, sample_num, replacement=False)
        one_hot_like = torch.zeros_like(weight_sample)
        one_hot_like[sample_index] = 1
        global_mask = one_hot_like.detach()
        # 2. compute the beta
        A_used = torch.mean(A[sample_index])
        beta_used = beta * (1 + loss_config.a * (A_used - gap_mean))
        beta_used = beta_used.clamp(min=1e-3)
        losses = -F.logsigmoid(beta_used.detach() * logits)
        # return
        chosen_rewards = beta * (policy_chosen_logps - reference_chosen_logps).detach()
        rejected_rewards = beta * (policy_rejected_logps - reference_rejected_logps).detach()
        return (losses, global_mask), chosen_rewards, rejected_rewards, beta_used
    else:
        logits = pi_logratios - ref_logratios
        losses = -F.logsigmoid(beta * logits)
        chosen_rewards = beta * (policy_chosen_logps - reference_chosen_logps).detach()
        rejected_rewards = beta * (policy_rejected_logps - reference_rejected_logps).detach()
        return (losses, None), chosen_rewards, rejected_rewards, beta


# junkangwu/beta-DPO @ 1629047, trainers.py get_batch_metrics (the reduction of each rank's loss)
def beta_dpo_rank_loss(losses, global_mask, rank, world_size):
    B = int(global_mask.size(0) / world_size)
    local_mask = (global_mask[rank * B: (rank + 1) * B]).float()
    masked_losses = losses * local_mask
    effective_loss_count = local_mask.sum()
    effective_loss_count = effective_loss_count if effective_loss_count > 0 else 1
    return masked_losses.sum() / effective_loss_count


# --- sirano1004/Margin-Apative-Direct-Preference-Optimization @ 306779b33acbe6fb2a3df6087673e5ec1ca699d9,
# utils/loss_functions.py L85-131 ---------------------------------------------------------------------------------
class MADPOLoss(nn.Module):
    def __init__(self, beta: float = 0.1, c_max = 2, c_min = 0.5, lmbda = 1, tau = 2):
        super().__init__()
        self.beta = beta
        self.c_max = c_max
        self.c_min = c_min
        self.lmbda = lmbda
        self.tau = tau

    def coef(self,reward_margin):

        coef = (
            self.c_min +
            (self.c_max - self.c_min) /
            (1 + (self.c_max - 1)/(1 - self.c_min) * torch.exp(self.lmbda*(reward_margin - self.tau)))
        )

        return coef


    def forward(self,
                log_probs_y1_policy: torch.Tensor,
                log_probs_y2_policy: torch.Tensor,
                log_probs_y1_ref: torch.Tensor,
                log_probs_y2_ref: torch.Tensor,
                reward1: torch.Tensor,
                reward2: torch.Tensor,
                choices: torch.Tensor):
        reward_margin = reward1 - reward2
        coef = self.coef(torch.abs(reward_margin))

        w1 = torch.sigmoid(coef * reward_margin) / torch.sigmoid(reward_margin) * (reward_margin > -self.tau) + 1 * (reward_margin <= -self.tau)
        w2 = torch.sigmoid(-coef * reward_margin) / torch.sigmoid(-reward_margin) * (-reward_margin > -self.tau) + 1 * (-reward_margin <= -self.tau)
        weights = torch.stack([w1, w2], dim=1)

        r1 = self.beta * (log_probs_y1_policy - log_probs_y1_ref)
        r2 = self.beta * (log_probs_y2_policy - log_probs_y2_ref)
        logits = torch.stack([r1, r2], dim=1)

        sample_weights = weights[torch.arange(len(choices)), choices]

        loss = F.cross_entropy(logits, choices, reduction='none')
        loss = (loss * sample_weights).mean()

        return loss


# --- sunlin-ai/BPO @ d882c0f06c8622ceda4c1e7a777a0d01e81a0a72, train_dpo.py CustomDPOTrainer.dpo_loss: the two
# gap-adaptor branches (the paper's headline run is balance_hinge_alpha); balance_factor is hard-coded there ---------
def bpo_dpo_loss(self, chosen_logps, rejected_logps, ref_chosen_logps, ref_rejected_logps):
    balance_factor = 0.3
    if self.loss_type == "balance_logistic_alpha":
        logits = torch.min(chosen_logps - ref_chosen_logps, balance_factor * (ref_rejected_logps - rejected_logps))
        logits = self.beta * logits
        losses = -F.logsigmoid(logits)

    elif self.loss_type == "balance_hinge_alpha":
        logits = torch.min(chosen_logps - ref_chosen_logps, balance_factor * (ref_rejected_logps - rejected_logps))
        logits = self.beta * logits
        losses = torch.relu(1 - logits)
    return losses


# --- junkangwu/RePO @ 79cdf5b49192038a2497751f9cddd9dd18badd4c, scripts/simpo_trainer.py L685-737, the "repo" branch
# of get_batch_loss_metrics (gamma is the config's gamma_beta_ratio; the losses are then averaged) -----------------
def repo_losses(self, policy_chosen_logps, policy_rejected_logps):
    pi_logratios = policy_chosen_logps - policy_rejected_logps
    pi_logratios = pi_logratios.to(self.accelerator.device)
    logits = pi_logratios - self.gamma_beta_ratio
    losses = F.relu( - logits)
    return losses


# --- sunjie279/gammaPO @ 4f2e09c10e2e281e98bc43535554f6336fde679f, scripts/simpo_trainer.py: the queue and
# constants set in __init__ (L261-276), get_gamma_dq (L336-357), and the gm-simpo branch of simpo_loss (L622-702).
# The print is dropped. Given an empty queue the margins are solved over the batch alone, as mmpo solves them over
# the gathered batch. -------------------------------------------------------------------------------------------
class GammaPOSimPO:
    def __init__(self, beta, gamma_beta_ratio, tau, queue=()):
        self.beta = beta
        self.gamma_beta_ratio = gamma_beta_ratio
        self.gamma0 = self.gamma_beta_ratio * self.beta
        self.tau = tau
        self.reward_gap_queue_size = 2048
        self.opt_size = 256
        self.eps = 1e-10
        self.reward_gap_queue = collections.deque(queue, maxlen=self.reward_gap_queue_size)
        self.accelerator = SimpleNamespace(device="cpu")

    def get_gamma_dq(self,
                     reward_gap: torch.FloatTensor,
        ) -> torch.FloatTensor:
        # optimize the \gamma in a queue, randomly select reward gaps from previous, only sample from recent `reward_gap_queue_size'
        p_lr = min(0.5 / self.tau, 1)
        sample_num = min(len(self.reward_gap_queue), self.opt_size-reward_gap.numel())
        batch_size = sample_num + reward_gap.numel()
        sampled_gaps = random.sample(self.reward_gap_queue, sample_num)
        reward_gaps = torch.tensor(sampled_gaps + reward_gap.tolist(), dtype=reward_gap.dtype).to(reward_gap.device)
        p = torch.full_like(reward_gaps, fill_value=1/batch_size).to(reward_gap.device)
        for _ in range(20):
            gamma = self.gamma0 * batch_size * p
            gamma_grad = self.gamma0 * batch_size
            KL_grad = self.tau * (1 + torch.log(batch_size * (p + self.eps)))
            p_grad = KL_grad + gamma_grad / (1 + torch.exp(reward_gaps - gamma)) / batch_size
            with torch.no_grad():
                exp_grad = torch.exp(-p_lr * p_grad)
                p = p * exp_grad / torch.sum(p * exp_grad)
        gamma = gamma.detach()[-reward_gap.numel():]
        reward_gap = reward_gap.detach()
        self.reward_gap_queue.extend(reward_gap.tolist())
        return gamma

    def gm_simpo_losses(self, policy_chosen_logps, policy_rejected_logps):
        pi_logratios = policy_chosen_logps - policy_rejected_logps
        pi_logratios = pi_logratios.to(self.accelerator.device)
        reward_gap = self.beta * pi_logratios
        logits = pi_logratios - self.get_gamma_dq(reward_gap) / self.beta
        losses = (
            -F.logsigmoid(self.beta * logits)
        )
        return losses
