import math

import numpy as np
import pytest
import torch as th

from sb3_boom import BOOM, losses


def test_symlog_symexp_inverse():
    x = th.tensor([-1e4, -3.0, -0.5, 0.0, 0.25, 7.0, 1e4])
    assert th.allclose(losses.symexp(losses.symlog(x)), x, rtol=1e-5)
    assert losses.symlog(th.tensor(math.e - 1)).item() == pytest.approx(1.0)


@pytest.mark.parametrize("value", [-500.0, -3.3, -1.0, 0.0, 0.123, 2.0, 41.5, 1000.0])
def test_two_hot_round_trip(value):
    bins = losses.bin_centres(101, -10.0, 10.0)
    encoded = losses.two_hot(th.tensor([value]), 101, -10.0, 10.0)
    assert encoded.sum().item() == pytest.approx(1.0)
    assert (encoded > 0).sum() <= 2
    # Decoding a distribution equal to the encoding gives the value back (log of the two-hot as logits).
    decoded = losses.two_hot_inv(th.log(encoded + 1e-30), bins)
    assert decoded.item() == pytest.approx(value, rel=1e-4, abs=1e-4)


def test_two_hot_clamps_outside_range():
    encoded = losses.two_hot(th.tensor([1e9, -1e9]), 11, -2.0, 2.0)
    assert encoded[0, -1].item() == pytest.approx(1.0)
    assert encoded[1, 0].item() == pytest.approx(1.0)


def test_two_hot_neighbour_weights():
    # symlog(y) = 0.3 on bins spaced by 1 over [-5, 5]: bins at 0 and 1 with weights 0.7 and 0.3.
    y = th.tensor([math.expm1(0.3)])
    encoded = losses.two_hot(y, 11, -5.0, 5.0)
    assert encoded[0, 5].item() == pytest.approx(0.7, abs=1e-5)
    assert encoded[0, 6].item() == pytest.approx(0.3, abs=1e-5)


def test_soft_cross_entropy_matches_hand_computation():
    th.manual_seed(0)
    logits = th.randn(4, 21)
    y = th.tensor([0.0, 1.5, -2.0, 30.0])
    expected = []
    for i in range(4):
        target = losses.two_hot(y[i : i + 1], 21, -10.0, 10.0)[0]
        log_p = logits[i] - th.logsumexp(logits[i], dim=0)
        expected.append(-(target * log_p).sum())
    assert th.allclose(losses.soft_cross_entropy(logits, y, -10.0, 10.0), th.stack(expected), atol=1e-6)


def test_gaussian_logprob_is_action_dim_times_textbook_plus_constant():
    eps = th.tensor([[0.5, -1.0, 2.0]])
    log_std = th.tensor([[0.1, -0.2, 0.3]])
    terms = zip([0.5, -1.0, 2.0], [0.1, -0.2, 0.3], strict=True)
    by_hand = (sum(-0.5 * e**2 - s for e, s in terms) - 0.5 * math.log(2 * math.pi)) * 3
    assert losses.gaussian_logprob(eps, log_std).item() == pytest.approx(by_hand, rel=1e-6)


def test_scale_log_std_bounds():
    raw = th.tensor([-1e3, 0.0, 1e3])
    scaled = losses.scale_log_std(raw, -10.0, 2.0)
    assert scaled.tolist() == pytest.approx([-10.0, -4.0, 2.0])


def test_running_scale_update():
    scale = th.ones(1)
    q = th.arange(101, dtype=th.float32)  # 5th..95th percentile range = 90
    new = losses.updated_scale(scale, q, tau=0.01)
    assert new.item() == pytest.approx(1.0 + 0.01 * (90.0 - 1.0), rel=1e-5)
    # A tiny spread is floored at 1: the scale stays at 1.
    assert losses.updated_scale(th.ones(1), th.zeros(8), 0.5).item() == pytest.approx(1.0)


def _hand_policy_loss(q_s, log_pi, a_pi, log_std, mu_beta, scale, rho, alpha, lam, min_std, weighting, temp):
    """Loop-by-loop transcription of SPEC section 7 (forward KL)."""
    horizon, batch, action_dim = a_pi.shape
    value_term = 0.0
    align_term = 0.0
    for t in range(horizon):
        value_term += rho**t * np.mean([alpha * log_pi[t, b] - q_s[t, b] for b in range(batch)])
        if weighting == "softq":
            w = np.exp(q_s[t] / temp) / np.exp(q_s[t] / temp).sum()
        else:
            w = np.full(batch, 1.0 / batch)
        total = 0.0
        for b in range(batch):
            sigma = np.maximum(np.exp(log_std[t, b]), min_std)
            eps = (a_pi[t, b] - mu_beta[t, b]) / sigma
            log_density = (np.sum(-0.5 * eps**2 - np.log(sigma)) - 0.5 * math.log(2 * math.pi)) * action_dim
            l_tb = log_density / scale if scale > 2 else 0.0
            total += w[b] * l_tb
        align_term += rho**t * total
    value_term /= horizon
    align_term = -align_term / horizon
    return value_term + lam * align_term, value_term, align_term


@pytest.mark.parametrize("weighting", ["softq", "uniform"])
@pytest.mark.parametrize("scale", [1.5, 3.7])
def test_forward_kl_policy_loss_matches_hand_computation(weighting, scale):
    rng = np.random.default_rng(0)
    horizon, batch, action_dim = 3, 5, 2
    q_s = rng.normal(size=(horizon, batch))
    log_pi = rng.normal(size=(horizon, batch))
    a_pi = np.tanh(rng.normal(size=(horizon, batch, action_dim)))
    log_std = rng.normal(size=(horizon, batch, action_dim)) - 2.0  # some stds below min_std
    mu_beta = np.tanh(rng.normal(size=(horizon, batch, action_dim)))
    expected = _hand_policy_loss(q_s, log_pi, a_pi, log_std, mu_beta, scale, 0.5, 1e-4, 0.3, 0.05, weighting, 1.0)

    t = lambda x: th.tensor(x, dtype=th.float64)  # noqa: E731
    result = losses.boom_policy_loss(
        q_scaled=t(q_s),
        policy_log_prob=t(log_pi),
        policy_action=t(a_pi),
        policy_log_std=t(log_std),
        planner_action=t(mu_beta),
        planner_std=th.ones(horizon, batch, action_dim, dtype=th.float64),
        scale=t([scale]),
        rho=0.5,
        entropy_coef=1e-4,
        lambda_align=0.3,
        min_std=0.05,
        alignment="fkl",
        weighting=weighting,
    )
    assert result.total.item() == pytest.approx(expected[0], rel=1e-9)
    assert result.value_term.item() == pytest.approx(expected[1], rel=1e-9)
    assert result.align_term.item() == pytest.approx(expected[2], rel=1e-9, abs=1e-12)
    if scale <= 2:
        assert result.align_term.item() == 0.0


def test_no_alignment_is_the_tdmpc2_policy_loss():
    """'none' = TD-MPC2's loss: mean_t rho^t mean_b (alpha log pi - Q / S)."""
    rng = np.random.default_rng(1)
    q = rng.normal(size=(3, 8)) * 40
    scale = 12.5
    log_pi = rng.normal(size=(3, 8))
    tdmpc2 = np.mean([0.5**t * np.mean(1e-4 * log_pi[t] - q[t] / scale) for t in range(3)])
    result = losses.boom_policy_loss(
        q_scaled=th.tensor(q / scale),
        policy_log_prob=th.tensor(log_pi),
        policy_action=th.zeros(3, 8, 2, dtype=th.float64),
        policy_log_std=th.zeros(3, 8, 2, dtype=th.float64),
        planner_action=th.ones(3, 8, 2, dtype=th.float64),
        planner_std=th.ones(3, 8, 2, dtype=th.float64),
        scale=th.tensor([scale]),
        rho=0.5,
        entropy_coef=1e-4,
        lambda_align=5.0,
        min_std=0.05,
        alignment="none",
    )
    assert result.total.item() == pytest.approx(tdmpc2, rel=1e-12)
    assert result.align_term.item() == 0.0


def test_reverse_kl_term_matches_hand_computation():
    a_pi = th.tensor([[0.2, -0.4]], dtype=th.float64)
    log_pi = th.tensor([1.3], dtype=th.float64)
    mu_beta = th.tensor([[0.0, 0.1]], dtype=th.float64)
    std_beta = th.tensor([[0.5, 0.25]], dtype=th.float64)
    eps = ((a_pi - mu_beta) / std_beta).numpy()[0]
    log_beta = (np.sum(-0.5 * eps**2 - np.log([0.5, 0.25])) - 0.5 * math.log(2 * math.pi)) * 2
    assert losses.reverse_kl_estimate(a_pi, log_pi, mu_beta, std_beta).item() == pytest.approx(1.3 - log_beta)


def test_alignment_pulls_policy_towards_planner_action():
    """The forward-KL gradient moves the policy's sample towards mu_beta."""
    a_pi = th.tensor([[[0.5]]], requires_grad=True)
    result = losses.boom_policy_loss(
        q_scaled=th.zeros(1, 1),
        policy_log_prob=th.zeros(1, 1),
        policy_action=a_pi,
        policy_log_std=th.full((1, 1, 1), math.log(0.3)),
        planner_action=th.tensor([[[-0.2]]]),
        planner_std=th.ones(1, 1, 1),
        scale=th.tensor([4.0]),
        rho=0.5,
        entropy_coef=0.0,
        lambda_align=1.0,
        min_std=0.05,
    )
    result.total.backward()
    assert a_pi.grad.item() > 0  # descending the loss lowers a_pi towards -0.2


def test_unknown_alignment_and_weighting_raise():
    args = dict(
        q_scaled=th.zeros(1, 2),
        policy_log_prob=th.zeros(1, 2),
        policy_action=th.zeros(1, 2, 1),
        policy_log_std=th.zeros(1, 2, 1),
        planner_action=th.zeros(1, 2, 1),
        planner_std=th.ones(1, 2, 1),
        scale=th.tensor([3.0]),
        rho=0.5,
        entropy_coef=0.0,
        lambda_align=1.0,
        min_std=0.05,
    )
    with pytest.raises(ValueError, match="alignment"):
        losses.boom_policy_loss(**args, alignment="kl")
    with pytest.raises(ValueError, match="weighting"):
        losses.boom_policy_loss(**args, weighting="hard")


@pytest.mark.parametrize("trains_encoder", [True, False])
def test_consistency_reaches_the_encoder_only_when_asked(tiny_kwargs, trains_encoder):
    """
    consistency_trains_encoder=False: the consistency loss has the same value, still trains the dynamics,
    and gives the encoder no gradient; the reward loss still trains the encoder (through the rollout).
    """
    model = BOOM("MlpPolicy", "Pendulum-v1", seed=0, **{**tiny_kwargs, "learning_starts": 100}).learn(120)
    model.consistency_trains_encoder = trains_encoder
    batch = model.replay_buffer.sample(tiny_kwargs["batch_size"])
    policy = model.policy
    policy.set_training_mode(True)

    def gradients(consistency: float, reward: float) -> tuple[float, float, th.Tensor]:
        model.consistency_coef, model.reward_coef, model.value_coef = consistency, reward, 0.0
        policy.optimizer.zero_grad(set_to_none=False)
        th.manual_seed(0)  # the same dropout masks and Q-target actions each time
        loss, stats, _ = model._world_model_loss(batch.observations, batch.actions, batch.rewards, batch.terminated)
        loss.backward()
        norm = lambda module: float(sum(p.grad.norm() ** 2 for p in module.parameters()) ** 0.5)  # noqa: E731
        return norm(policy.encoder), norm(policy.dynamics), stats[0]

    encoder, dynamics, consistency = gradients(consistency=1.0, reward=0.0)
    assert dynamics > 0
    assert (encoder > 0) == trains_encoder
    reward_encoder, _, _ = gradients(consistency=0.0, reward=1.0)
    assert reward_encoder > 0
    model.consistency_trains_encoder = not trains_encoder
    _, _, other_consistency = gradients(consistency=1.0, reward=0.0)
    th.testing.assert_close(consistency, other_consistency)


def test_consistency_trains_encoder_is_saved(tmp_path, tiny_kwargs):
    BOOM("MlpPolicy", "Pendulum-v1", consistency_trains_encoder=False, **tiny_kwargs).save(tmp_path / "model")
    assert BOOM.load(tmp_path / "model").consistency_trains_encoder is False
