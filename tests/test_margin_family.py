"""The margin-aware losses (gamma-PO, AMaPO, beta-DPO, MADPO, BPO, RePO) against their reference code, copied into
``margin_family_upstream.py`` with the source named, on the same inputs; plus hand values, limits and gradients, and
the table of losses that declares what each needs."""

from __future__ import annotations

import math

import margin_family_upstream as upstream
import pytest
import torch

from mmpo.losses import LossConfig, policy_loss
from mmpo.losses.hyperparameters import POLICY_LOSS_TYPES, REWARD_LOSS_TYPES, BetaDPOConfig
from mmpo.losses.inputs import BatchStatistics
from mmpo.losses.margin_aware import beta_dpo_kept, gammapo_margins, madpo_weights
from mmpo.losses.table import LOSS_TABLE, loss_spec


def logps(seed: int, n: int = 8, scale: float = 3.0, center: float = -20.0) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(n, generator=g, dtype=torch.float64) * scale + center for _ in range(4)]


def test_the_table_declares_every_loss_once_with_its_kinds():
    assert {n for n, s in LOSS_TABLE.items() if "policy" in s.kinds} == set(POLICY_LOSS_TYPES)
    assert {n for n, s in LOSS_TABLE.items() if "reward" in s.kinds} == set(REWARD_LOSS_TYPES)
    assert all(s.function is not None for s in LOSS_TABLE.values() if "policy" in s.kinds)
    assert [n for n, s in LOSS_TABLE.items() if not s.needs_reference and "policy" in s.kinds] == [
        "simpo",
        "gammapo",
        "amapo",
        "repo",
    ]
    assert [n for n, s in LOSS_TABLE.items() if s.batch_statistics] == ["gammapo", "amapo", "beta_dpo"]
    assert loss_spec("madpo").needs_margin and not loss_spec("bpo").needs_margin
    with pytest.raises(ValueError, match="choose one of"):
        loss_spec("nope")
    # every declared hyper-parameter exists on LossConfig
    config = LossConfig()
    for spec in LOSS_TABLE.values():
        for name in spec.hyperparameters:
            record = config
            for part in name.split("."):
                record = getattr(record, part)


# --- gamma-PO ----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("tau", [1.0, 3.0, 10.0])
def test_gammapo_equals_its_reference_code(tau):
    pc, pr, _, _ = logps(1, scale=0.5, center=-1.0)
    ours = policy_loss(LossConfig("gammapo", beta=2.5, gammapo={"gamma_beta_ratio": 0.4, "tau": tau}), pc, pr)
    theirs = upstream.GammaPOSimPO(beta=2.5, gamma_beta_ratio=0.4, tau=tau).gm_simpo_losses(pc, pr)
    torch.testing.assert_close(ours, theirs, rtol=1e-12, atol=1e-12)


def test_gammapo_margins_average_gamma0_and_grow_with_the_gap():
    gaps = torch.tensor([-2.0, -0.5, 0.0, 0.5, 1.0, 2.0, 4.0, 8.0], dtype=torch.float64)
    for tau in (3.0, 10.0, 20.0):
        margins = gammapo_margins(gaps, 4.0, tau)
        assert margins.mean().item() == pytest.approx(4.0, rel=1e-9)
        assert (margins.diff() > 0).all()
    # smaller tau spreads them more
    assert gammapo_margins(gaps, 4.0, 3.0).std() > gammapo_margins(gaps, 4.0, 20.0).std()
    # equal gaps: every margin is gamma0, the loss is SimPO's at gamma = gamma0
    pc, pr = torch.full((4,), -1.0, dtype=torch.float64), torch.full((4,), -1.5, dtype=torch.float64)
    cfg = LossConfig("gammapo", beta=2.0, gammapo={"gamma_beta_ratio": 0.25, "tau": 1.0})
    simpo = policy_loss(LossConfig("simpo", beta=2.0, simpo_gamma=0.5), pc, pr)
    torch.testing.assert_close(policy_loss(cfg, pc, pr), simpo)


# --- AMaPO -------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("label_smoothing", [0.0, 0.1])
def test_amapo_equals_its_reference_code_on_one_process(label_smoothing):
    pc, pr, _, _ = logps(2, scale=0.4, center=-1.2)
    upstream.dist = upstream.FakeDist([torch.zeros(8, dtype=torch.float64)], 0)
    theirs = upstream.amapo_loss(upstream.amapo_self(2.0, label_smoothing), pc, pr)[0]
    ours = policy_loss(LossConfig("amapo", beta=2.0, label_smoothing=label_smoothing), pc, pr)
    torch.testing.assert_close(ours, theirs, rtol=1e-12, atol=1e-12)


def test_amapo_on_two_ranks_reads_the_gathered_batch_as_its_reference_code():
    """Rank 1 of 2: the statistics are those of both ranks' pairs, not of its own four; computed per rank, they
    would differ."""
    pc, pr, _, _ = logps(3, n=8, scale=0.4, center=-1.2)
    deltas = pc - pr
    upstream.dist = upstream.FakeDist([deltas[:4], deltas[4:]], rank=1)
    theirs = upstream.amapo_loss(upstream.amapo_self(2.0), pc[4:], pr[4:])[0]
    batch = BatchStatistics(deltas, offset=4)
    ours = policy_loss(LossConfig("amapo", beta=2.0), pc[4:], pr[4:], batch=batch)
    torch.testing.assert_close(ours, theirs, rtol=1e-12, atol=1e-12)
    alone = policy_loss(LossConfig("amapo", beta=2.0), pc[4:], pr[4:])
    assert not torch.allclose(alone, ours)


def test_amapo_margin_is_zero_above_the_mean_and_detached():
    pc = torch.tensor([-1.0, -1.0, -1.0, -1.0], dtype=torch.float64, requires_grad=True)
    pr = torch.tensor([-0.5, -1.0, -1.5, -3.0], dtype=torch.float64)
    losses = policy_loss(LossConfig("amapo", beta=2.0), pc, pr)
    d = (pc - pr).detach()
    mu, s = d.mean(), d.std()
    hand = [
        -math.log(1 / (1 + math.exp(-(2.0 * di - (2.0 * math.exp(((mu - di) / s) * mu) if di < mu else 0.0)))))
        for di in d.tolist()
    ]
    assert losses.tolist() == pytest.approx(hand, rel=1e-12)
    losses.sum().backward()  # the margin carries no gradient: d loss / d chosen = -beta * sigmoid(-z)
    z = 2.0 * d - torch.tensor([h for h in (2.0 * math.exp(((mu - di) / s) * mu) if di < mu else 0.0 for di in d)])
    torch.testing.assert_close(pc.grad, -2.0 * torch.sigmoid(-z).double())


# --- beta-DPO ----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("rank", [0, 1])
def test_beta_dpo_equals_its_reference_code_on_each_rank(rank):
    """Two ranks of 4 pairs: the same gathered margins, moving averages and random filter (the same seed) give each
    rank the reference code's masked mean; mmpo returns per-pair losses whose mean is that number."""
    pc, pr, rc, rr = logps(4)
    deltas = (pc - rc) - (pr - rr)
    mean, std = deltas.mean().item() + 0.3, deltas.std().item() * 1.2
    upstream.dist = upstream.FakeDist([deltas[:4], deltas[4:]], rank)
    local = slice(4 * rank, 4 * rank + 4)
    config = upstream.SimpleNamespace(mode_loss="beta_DPO", mode_weight=0.2, a=0.6)
    torch.manual_seed(7)
    (losses, mask), _, _, beta_used = upstream.preference_loss(
        pc[local],
        pr[local],
        rc[local],
        rr[local],
        0.1,
        config,
        rank,
        2,
        gap_mean=torch.tensor([mean], dtype=torch.float64),
        gap_std=torch.tensor([std], dtype=torch.float64),
    )
    theirs = upstream.beta_dpo_rank_loss(losses, mask, rank, 2)
    ours_config = LossConfig("beta_dpo", beta=0.1, beta_dpo=BetaDPOConfig(alpha=0.6, rho=0.8))
    batch = BatchStatistics(deltas, 4 * rank, mean, std, torch.Generator().manual_seed(7))
    ours = policy_loss(ours_config, pc[local], pr[local], rc[local], rr[local], batch=batch)
    torch.testing.assert_close(ours.mean(), theirs, rtol=1e-12, atol=1e-12)
    kept = beta_dpo_kept(ours_config, BatchStatistics(deltas, 0, mean, std, torch.Generator().manual_seed(7)))
    assert len(kept) == int(8 * 0.8) and mask.sum().item() == len(kept)


def test_beta_dpo_at_alpha_zero_and_rho_one_is_dpo():
    pc, pr, rc, rr = logps(5)
    cfg = LossConfig("beta_dpo", beta=0.1, beta_dpo=BetaDPOConfig(alpha=0.0, rho=1.0))
    torch.testing.assert_close(
        policy_loss(cfg, pc, pr, rc, rr), policy_loss(LossConfig("dpo", beta=0.1), pc, pr, rc, rr)
    )


# --- MADPO -------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("tau", [2.0, math.log(999.0)])
def test_madpo_equals_its_reference_code(tau):
    pc, pr, rc, rr = logps(6)
    rewards_chosen = torch.tensor([3.0, 0.2, -1.0, 8.0, -9.0, 0.0, 1.5, -2.5], dtype=torch.float64)
    rewards_rejected = torch.zeros(8, dtype=torch.float64)
    theirs = upstream.MADPOLoss(beta=0.1, c_max=2, c_min=0.5, lmbda=1, tau=tau)(
        pc, pr, rc, rr, rewards_chosen, rewards_rejected, torch.zeros(8, dtype=torch.long)
    )
    cfg = LossConfig("madpo", beta=0.1, madpo={"c_max": 2.0, "c_min": 0.5, "lmbda": 1.0, "tau": tau})
    ours = policy_loss(cfg, pc, pr, rc, rr, rewards_chosen - rewards_rejected)
    torch.testing.assert_close(ours.mean(), theirs, rtol=1e-12, atol=1e-12)


def test_madpo_weights_hand_values():
    """c(tau) = 1 so w(tau) = 1; w(0) = 1; below -tau the weight is capped at 1; a small positive margin weighs more."""
    cfg = LossConfig("madpo", madpo={"c_max": 2.0, "c_min": 0.5, "lmbda": 1.0, "tau": math.log(999.0)})
    m = torch.tensor([0.0, math.log(999.0), -10.0, 1.0], dtype=torch.float64)
    w = madpo_weights(cfg, m)
    c1 = 0.5 + 1.5 / (1 + 2.0 * math.exp(1.0 - math.log(999.0)))
    hand_1 = (1 / (1 + math.exp(-c1))) / (1 / (1 + math.exp(-1.0)))
    assert w.tolist() == pytest.approx([1.0, 1.0, 1.0, hand_1], rel=1e-12)
    assert w[3] > 1.2


# --- BPO ---------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "function,upstream_type", [("hinge", "balance_hinge_alpha"), ("logistic", "balance_logistic_alpha")]
)
def test_bpo_equals_its_reference_code(function, upstream_type):
    pc, pr, rc, rr = logps(7)
    theirs = upstream.bpo_dpo_loss(upstream.SimpleNamespace(beta=0.1, loss_type=upstream_type), pc, pr, rc, rr)
    cfg = LossConfig("bpo", beta=0.1, bpo={"alpha": 0.3, "preference_function": function})
    torch.testing.assert_close(policy_loss(cfg, pc, pr, rc, rr), theirs, rtol=1e-12, atol=1e-12)


def test_bpo_splits_the_gradient_at_a_tie_as_torch_min():
    """At step 0 (policy = reference) both sides of the min are 0: each side gets half the gradient, as upstream."""
    pc = torch.tensor([-5.0], dtype=torch.float64, requires_grad=True)
    pr = torch.tensor([-7.0], dtype=torch.float64, requires_grad=True)
    cfg = LossConfig("bpo", beta=0.1, bpo={"alpha": 0.3, "preference_function": "logistic"})
    policy_loss(cfg, pc, pr, pc.detach().clone(), pr.detach().clone()).sum().backward()
    # d/dz -log sigmoid(z) at 0 = -0.5; z = 0.1 * min(a, 0.3 * b): half to a (x 0.1), half to b (x 0.1 x 0.3 x -1)
    assert pc.grad.item() == pytest.approx(-0.5 * 0.1 * 0.5)
    assert pr.grad.item() == pytest.approx(0.5 * 0.1 * 0.3 * 0.5)


# --- RePO --------------------------------------------------------------------------------------------------------
def test_repo_equals_its_reference_code_and_ignores_confident_pairs():
    pc, pr, _, _ = logps(8, scale=0.5, center=-1.0)
    theirs = upstream.repo_losses(
        upstream.SimpleNamespace(gamma_beta_ratio=0.4, accelerator=upstream.SimpleNamespace(device="cpu")), pc, pr
    )
    cfg = LossConfig("repo", beta=2.5, repo={"gamma": 0.4})
    ours = policy_loss(cfg, pc, pr)
    torch.testing.assert_close(ours, theirs, rtol=1e-12, atol=1e-12)
    confident = policy_loss(cfg, torch.tensor([-0.5]), torch.tensor([-1.0]))
    assert confident.item() == 0.0
    assert policy_loss(cfg, torch.tensor([-0.9]), torch.tensor([-1.0])).item() == pytest.approx(0.3)


# --- the hyper-parameter records ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "override,match",
    [
        ({"bpo": {"alpha": 1.5}}, "gap adaptor"),
        ({"bpo": {"preference_function": "square"}}, "preference_function"),
        ({"beta_dpo": {"rho": 0.0}}, "rho"),
        ({"madpo": {"c_min": 1.5}}, "c_min"),
        ({"gammapo": {"tau": 0.0}}, "gammapo.tau"),
        ({"repo": {"gamma": float("nan")}}, "repo.gamma"),
    ],
)
def test_each_loss_record_refuses_bad_values_naming_the_key(override, match):
    with pytest.raises(ValueError, match=match):
        LossConfig("dpo", **override)


def test_losses_refuse_broadcasting_shapes():
    pc, pr = torch.zeros(4, 1), torch.zeros(4)
    for name in ("gammapo", "amapo", "repo"):
        with pytest.raises(ValueError, match="must match"):
            policy_loss(LossConfig(name), pc, pr)
    with pytest.raises(ValueError, match="needs a margin"):
        policy_loss(LossConfig("madpo"), torch.zeros(4), torch.zeros(4), torch.zeros(4), torch.zeros(4))
    with pytest.raises(ValueError, match="needs reference"):
        policy_loss(LossConfig("bpo"), torch.zeros(4), torch.zeros(4))
    with pytest.raises(ValueError, match="must match"):
        policy_loss(LossConfig("madpo"), *[torch.zeros(4)] * 4, torch.zeros(4, 1))
    with pytest.raises(ValueError, match="batch statistics hold 4 pairs"):
        policy_loss(LossConfig("gammapo"), torch.zeros(4), torch.zeros(4), batch=BatchStatistics(torch.zeros(4), 2))


# --- training with each loss ---------------------------------------------------------------------------------------
LOSS_SETTINGS = {
    "gammapo": ["loss.beta=2.0", "loss.gammapo.gamma_beta_ratio=0.25", "loss.gammapo.tau=10"],
    "amapo": ["loss.beta=2.0"],
    "madpo": [],
    "beta_dpo": ["loss.beta_dpo.alpha=0.6", "loss.beta_dpo.rho=0.8"],
    "bpo": ["loss.bpo.alpha=0.3"],
    "repo": ["loss.repo.gamma=0.5"],
}


@pytest.mark.parametrize("loss", list(LOSS_SETTINGS))
def test_each_margin_aware_loss_trains_a_policy_that_prefers_held_out_chosen(tmp_path, tiny_llama_dir, loss):
    """Every loss of the family through the trainer: held-out accuracy, and a reference pass only where the table
    says the loss needs one (none is cached for the reference-free losses)."""
    from test_training import policy_config

    from mmpo.training.run import train_from_config

    result = train_from_config(policy_config(tmp_path, tiny_llama_dir, f"loss.loss_type={loss}", *LOSS_SETTINGS[loss]))
    assert result.metrics["eval_accuracy"] >= 0.9, result.metrics
    assert math.isfinite(result.metrics["eval_loss"])
    cached = list((tmp_path / "refcache").glob("logp_stats-*.safetensors"))
    assert len(cached) == (2 if loss_spec(loss).needs_reference else 0)
    card = (result.output_dir / "README.md").read_text()
    for name in loss_spec(loss).hyperparameters:
        assert f"`loss.{name}`" in card


def test_beta_dpo_moving_averages_resume_from_the_checkpoint(tmp_path, tiny_llama_dir):
    """beta-DPO's M0 and sigma0 are saved in each checkpoint's trainer_state.json and read back on resume: a run
    stopped at step 3 and resumed ends with the same averages, losses and weights as a straight run."""
    import json

    from safetensors.torch import load_file
    from test_training import policy_config

    from mmpo.training.run import train_from_config

    common = [
        "loss.loss_type=beta_dpo",
        "train.per_device_train_batch_size=4",
        "train.save_steps=3",
        "train.logging_steps=1",
        "train.lr_scheduler_type=constant",
    ]
    train_from_config(
        policy_config(tmp_path, tiny_llama_dir, *common, "train.max_steps=3", f"train.output_dir={tmp_path}/r")
    )
    train_from_config(
        policy_config(tmp_path, tiny_llama_dir, *common, "train.max_steps=6", f"train.output_dir={tmp_path}/r")
    )
    train_from_config(
        policy_config(tmp_path, tiny_llama_dir, *common, "train.max_steps=6", f"train.output_dir={tmp_path}/straight")
    )

    def state(run: str) -> dict:
        return json.loads((tmp_path / run / "checkpoint-6" / "trainer_state.json").read_text())

    saved = [state(run)["stateful_callbacks"]["RunningMarginStatistics"]["attributes"] for run in ("r", "straight")]
    assert saved[0]["mean"] is not None and saved[0] == pytest.approx(saved[1], rel=1e-6)
    losses = [[e["loss"] for e in state(run)["log_history"] if "loss" in e] for run in ("r", "straight")]
    assert losses[0] == pytest.approx(losses[1], rel=1e-5)
    resumed, straight = (load_file(str(tmp_path / run / "model.safetensors")) for run in ("r", "straight"))
    for name in straight:
        torch.testing.assert_close(resumed[name], straight[name], rtol=0, atol=1e-6)
