"""Loss values against hand computation, limits (gamma -> inf, constant p), stability, shapes, gradients."""

import math

import pytest
import torch
import torch.nn.functional as F

from mmpo.losses import (
    LossConfig,
    PolicyLossConfig,
    RewardLossConfig,
    kto_desirability_weights,
    kto_loss,
    policy_loss,
    reward_loss,
    soft_bce_with_logits,
    target_probability,
)


def sig(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def hand_soft_bce(h: float, p: float) -> float:
    return -(p * math.log(sig(h)) + (1 - p) * math.log(sig(-h)))


@pytest.mark.parametrize("h,p", [(0.7, 0.3), (-1.2, 0.9), (0.0, 0.5), (3.0, 1.0), (-2.5, 0.0)])
def test_soft_bce_matches_hand_computation(h, p):
    got = soft_bce_with_logits(torch.tensor([h], dtype=torch.float64), torch.tensor([p], dtype=torch.float64))
    assert got.item() == pytest.approx(hand_soft_bce(h, p), rel=1e-12)


def test_soft_bce_is_stable_for_huge_logits():
    h = torch.tensor([1000.0, -1000.0, 80.0])
    p = torch.tensor([0.2, 0.2, 1.0])
    got = soft_bce_with_logits(h, p)
    assert torch.isfinite(got).all()
    # -log s(1000) ~ 0, (1-p)h = 800;  -log s(-1000) = 1000, (1-p)(-1000) = -800 -> 200
    assert got.tolist() == pytest.approx([800.0, 200.0, 0.0], abs=1e-3)


def test_shape_mismatch_b1_vs_b_is_refused():
    h = torch.zeros(4, 1)
    p = torch.full((4,), 0.7)
    with pytest.raises(ValueError, match=r"\(4, 1\).*\(4,\)"):
        soft_bce_with_logits(h, p)
    with pytest.raises(ValueError, match="must match"):
        reward_loss(RewardLossConfig("mmpo"), torch.zeros(4, 1), torch.zeros(4), torch.ones(4))


def test_target_probability_limits_and_errors():
    m = torch.tensor([2.0, 0.0, -1.0])
    assert target_probability(m, math.inf).tolist() == [1.0, 0.5, 0.0]
    assert target_probability(m, 0.5).tolist() == pytest.approx([sig(1.0), 0.5, sig(-0.5)])
    with pytest.raises(ValueError, match="gamma"):
        target_probability(m, 0.0)
    with pytest.raises(ValueError, match="NaN"):
        target_probability(torch.tensor([float("nan")]), 1.0)


def _logps(seed=0, n=6):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(n, generator=g, dtype=torch.float64) * 5 - 30 for _ in range(4)]


def test_mmpo_at_gamma_inf_equals_dpo_and_hand_dpo():
    pc, pr, rc, rr = _logps()
    margin = torch.rand(6, dtype=torch.float64) * 5 + 0.1
    mmpo = policy_loss(PolicyLossConfig("mmpo", beta=0.1, gamma=math.inf), pc, pr, rc, rr, margin)
    dpo = policy_loss(PolicyLossConfig("dpo", beta=0.1), pc, pr, rc, rr)
    torch.testing.assert_close(mmpo, dpo)
    hand = [-math.log(sig(0.1 * ((a - c) - (b - d)))) for a, b, c, d in zip(*(t.tolist() for t in (pc, pr, rc, rr)))]
    assert dpo.tolist() == pytest.approx(hand, rel=1e-10)
    # and a very large finite gamma converges to the same numbers
    big = policy_loss(PolicyLossConfig("mmpo", beta=0.1, gamma=1e4), pc, pr, rc, rr, margin)
    torch.testing.assert_close(big, dpo, atol=1e-6, rtol=1e-6)


def test_mmpo_with_constant_target_equals_cdpo():
    pc, pr, rc, rr = _logps(1)
    eps, gamma = 0.2, 2.0
    margin = torch.full((6,), math.log((1 - eps) / eps) / gamma, dtype=torch.float64)  # p = 1 - eps for every pair
    mmpo = policy_loss(PolicyLossConfig("mmpo", beta=0.5, gamma=gamma), pc, pr, rc, rr, margin)
    cdpo = policy_loss(PolicyLossConfig("cdpo", beta=0.5, label_smoothing=eps), pc, pr, rc, rr)
    torch.testing.assert_close(mmpo, cdpo)
    h = 0.5 * ((pc - rc) - (pr - rr))
    trl_form = -F.logsigmoid(h) * (1 - eps) - F.logsigmoid(-h) * eps  # TRL's sigmoid loss with label_smoothing
    torch.testing.assert_close(cdpo, trl_form)


def test_mmpo_gradient_is_beta_times_sigmoid_minus_target():
    pc, pr, rc, rr = _logps(2)
    pc.requires_grad_(True)
    beta, gamma = 0.3, 0.7
    margin = torch.tensor([0.0, 0.5, 1.0, 2.0, 4.0, 8.0], dtype=torch.float64)
    loss = policy_loss(PolicyLossConfig("mmpo", beta=beta, gamma=gamma), pc, pr, rc, rr, margin).sum()
    (grad,) = torch.autograd.grad(loss, pc)
    h = beta * ((pc - rc) - (pr - rr))
    expected = beta * (torch.sigmoid(h) - torch.sigmoid(gamma * margin))
    torch.testing.assert_close(grad, expected.detach())


def test_soft_bce_passes_gradcheck():
    h = torch.randn(5, dtype=torch.float64, requires_grad=True)
    p = torch.rand(5, dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda x: soft_bce_with_logits(x, p), (h,))


def test_baseline_policy_losses_match_their_formulas():
    pc, pr, rc, rr = _logps(3)
    beta, eps = 0.2, 0.1
    delta = (pc - rc) - (pr - rr)
    h = beta * delta
    cases = {
        "ipo": (delta - 1 / (2 * beta)) ** 2,
        "hinge": torch.relu(1 - h),
        "robust": (-(1 - eps) * F.logsigmoid(h) + eps * F.logsigmoid(-h)) / (1 - 2 * eps),
    }
    for name, expected in cases.items():
        got = policy_loss(PolicyLossConfig(name, beta=beta, label_smoothing=eps), pc, pr, rc, rr)
        torch.testing.assert_close(got, expected, msg=name)
    simpo = policy_loss(PolicyLossConfig("simpo", beta=2.0, simpo_gamma=0.5), pc / 10, pr / 10)
    torch.testing.assert_close(simpo, -F.logsigmoid(2.0 * (pc - pr) / 10 - 0.5))
    margin = torch.tensor([0.5, 1.0, 2.0, 3.0, 4.0, 5.0], dtype=torch.float64)
    odpo = policy_loss(PolicyLossConfig("odpo", beta=beta, odpo_alpha=0.5), pc, pr, rc, rr, margin)
    torch.testing.assert_close(odpo, -F.logsigmoid(h - 0.5 * torch.log(margin)))


def test_policy_loss_argument_errors():
    pc, pr, rc, rr = _logps()
    with pytest.raises(ValueError, match="needs a margin"):
        policy_loss(PolicyLossConfig("mmpo"), pc, pr, rc, rr)
    with pytest.raises(ValueError, match="reference"):
        policy_loss(PolicyLossConfig("dpo"), pc, pr)
    with pytest.raises(ValueError, match="margin > 0"):
        policy_loss(PolicyLossConfig("odpo"), pc, pr, rc, rr, torch.zeros(6, dtype=torch.float64))
    with pytest.raises(ValueError, match="loss.loss_type = 'dpoo'"):
        PolicyLossConfig("dpoo")
    with pytest.raises(ValueError, match="not a policy loss"):
        policy_loss(PolicyLossConfig("bt"), pc, pr, rc, rr)


def test_reward_losses_match_hand_computation():
    chosen = torch.tensor([1.0, 0.2, -0.5], dtype=torch.float64)
    rejected = torch.tensor([0.0, 0.7, -0.5], dtype=torch.float64)
    margin = torch.tensor([2.0, 1.0, 0.0], dtype=torch.float64)
    h = (chosen - rejected).tolist()
    got = reward_loss(RewardLossConfig("mmpo", gamma=0.5), chosen, rejected, margin).tolist()
    assert got == pytest.approx([hand_soft_bce(x, sig(0.5 * m)) for x, m in zip(h, margin.tolist())], rel=1e-12)
    bt = reward_loss(RewardLossConfig("bt"), chosen, rejected).tolist()
    assert bt == pytest.approx([-math.log(sig(x)) for x in h], rel=1e-12)
    llama = reward_loss(RewardLossConfig("llama2_margin"), chosen, rejected, margin).tolist()
    assert llama == pytest.approx([-math.log(sig(x - m)) for x, m in zip(h, margin.tolist())], rel=1e-12)
    inf = reward_loss(RewardLossConfig("mmpo", gamma=math.inf), chosen[:2], rejected[:2], margin[:2])
    torch.testing.assert_close(inf, reward_loss(RewardLossConfig("bt"), chosen[:2], rejected[:2]))


# huggingface/trl v0.19.0 (5b3ea9d), trl/trainer/kto_trainer.py: KTOTrainer.kto_loss, copied verbatim but for
# `self`, which is a namespace with the trainer's fields here.
def trl_kto_loss(
    self,
    policy_chosen_logps,
    policy_rejected_logps,
    policy_KL_logps,
    reference_chosen_logps,
    reference_rejected_logps,
    reference_KL_logps,
):
    import torch.nn.functional as F  # noqa: N812

    if self.calculate_KL:
        kl = (policy_KL_logps - reference_KL_logps).mean().detach()
        kl = self.accelerator.gather_for_metrics(kl).mean().clamp(min=0)
    else:
        kl = torch.zeros(1).to(policy_chosen_logps.device)

    # Chosen losses
    if policy_chosen_logps.shape[0] != 0 or reference_chosen_logps.shape[0] != 0:
        chosen_logratios = policy_chosen_logps - reference_chosen_logps

        if self.loss_type == "kto":
            # Eqn (7) of the KTO paper (https://huggingface.co/papers/2402.01306)
            chosen_losses = 1 - F.sigmoid(self.beta * (chosen_logratios - kl))
        elif self.loss_type == "apo_zero_unpaired":
            chosen_losses = 1 - F.sigmoid(self.beta * chosen_logratios)

        chosen_rewards = self.beta * chosen_logratios.detach()

    else:
        chosen_losses = torch.Tensor([]).to(self.accelerator.device)
        chosen_rewards = torch.Tensor([]).to(self.accelerator.device)

    # Rejected losses
    if policy_rejected_logps.shape[0] != 0 or reference_rejected_logps.shape[0] != 0:
        rejected_logratios = policy_rejected_logps - reference_rejected_logps

        if self.loss_type == "kto":
            rejected_losses = 1 - F.sigmoid(self.beta * (kl - rejected_logratios))
        elif self.loss_type == "apo_zero_unpaired":
            rejected_losses = F.sigmoid(self.beta * rejected_logratios)

        rejected_rewards = self.beta * rejected_logratios.detach()
    else:
        rejected_losses = torch.Tensor([]).to(self.accelerator.device)
        rejected_rewards = torch.Tensor([]).to(self.accelerator.device)

    losses = torch.cat(
        (self.desirable_weight * chosen_losses, self.undesirable_weight * rejected_losses),
        0,
    )

    return losses, chosen_rewards, rejected_rewards, kl


def test_kto_weights_each_samples_own_term():
    """Desirable samples (score above the median) weigh their desirable term by w = sigmoid(gamma*(s - median)),
    undesirable ones their undesirable term by 1 - w; a sample at the median is neither."""
    scores = torch.tensor([1.0, 4.0, 5.0, 6.0, 9.0])
    w = kto_desirability_weights(scores, gamma=0.5)  # median 5
    assert w.tolist() == pytest.approx([sig(-2.0), sig(-0.5), 0.5, sig(0.5), sig(2.0)], rel=1e-6)
    assert kto_desirability_weights(scores, gamma=math.inf).tolist() == [0.0, 0.0, 0.5, 1.0, 1.0]
    policy = torch.tensor([-10.0, -12.0, -8.0, -9.0, -11.0], dtype=torch.float64)
    ref = torch.tensor([-10.5, -11.0, -8.5, -9.5, -12.0], dtype=torch.float64)
    config = LossConfig("kto", beta=0.5, gamma=0.5, kto_desirable_weight=1.5, kto_undesirable_weight=0.7)
    got = kto_loss(config, policy, ref, (scores - 5.0).double(), kl_estimate=0.2).tolist()
    expected = []
    for lp, lr, s, wi in zip(policy.tolist(), ref.tolist(), scores.tolist(), w.tolist()):
        r = lp - lr
        desirable, undesirable = 1.5 * (1 - sig(0.5 * (r - 0.2))), 0.7 * (1 - sig(0.5 * (0.2 - r)))
        expected.append(
            wi * desirable if s > 5 else (1 - wi) * undesirable if s < 5 else 0.5 * (desirable + undesirable)
        )
    assert got == pytest.approx(expected, rel=1e-6)  # w in float32 here
    # just above the median a sample still counts half (soft mixing of both terms would give it |2w - 1| ~ 0)
    near = kto_loss(config, policy[3:4].requires_grad_(), ref[3:4], torch.tensor([1e-3], dtype=torch.float64), 0.2)
    near.sum().backward()
    assert near.item() == pytest.approx(0.5 * 1.5 * (1 - sig(0.5 * (0.5 - 0.2))), rel=1e-3)


def test_kto_at_gamma_inf_equals_trl_kto_loss():
    """Hard KTO (gamma = inf, every weight 1) on one batch: the per-sample losses, their mean and the KL reference
    point equal TRL's kto_loss with desirable_weight / undesirable_weight."""
    from types import SimpleNamespace

    generator = torch.Generator().manual_seed(0)
    policy = -20 * torch.rand(8, generator=generator, dtype=torch.float64)
    ref = policy + 0.3 * torch.randn(8, generator=generator, dtype=torch.float64)
    kl_policy = -20 * torch.rand(8, generator=generator, dtype=torch.float64)
    kl_ref = kl_policy - 0.5 * torch.rand(8, generator=generator, dtype=torch.float64)
    margin = torch.tensor([2.0, -1.0, 0.5, -3.0, 1.0, 4.0, -0.5, -2.0], dtype=torch.float64)
    good = margin > 0
    trainer = SimpleNamespace(
        calculate_KL=True,
        loss_type="kto",
        beta=0.1,
        desirable_weight=1.3,
        undesirable_weight=0.8,
        accelerator=SimpleNamespace(gather_for_metrics=lambda t: t, device="cpu"),
    )
    losses, _, _, kl = trl_kto_loss(trainer, policy[good], policy[~good], kl_policy, ref[good], ref[~good], kl_ref)
    config = LossConfig("kto", beta=0.1, gamma=math.inf, kto_desirable_weight=1.3, kto_undesirable_weight=0.8)
    ours_kl = (kl_policy - kl_ref).mean().clamp(min=0)
    ours = kto_loss(config, policy, ref, margin, ours_kl)
    torch.testing.assert_close(ours_kl, kl)
    torch.testing.assert_close(torch.cat([ours[good], ours[~good]]), losses)
    torch.testing.assert_close(ours.mean(), losses.nanmean())
