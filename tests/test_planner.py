import pytest
import torch as th

from sb3_boom.planner import PlannerConfig, plan, warm_start_mean


class QuadraticModel:
    """A world model with known answers: the latent never changes, r(a) = -|a - target|^2, Q = 0."""

    def __init__(self, target: th.Tensor, policy_action: th.Tensor | None = None):
        self.target = target  # [n, A] or [A]
        self.action_dim = target.shape[-1]
        self.policy_action = policy_action

    def next_latent(self, z, action):
        return z

    def predict_reward(self, z, action):
        target = self.target if self.target.dim() == 1 else self.target.view(-1, *([1] * (action.dim() - 2)), self.action_dim)
        return -(action - target).pow(2).sum(-1)

    def sample_action(self, z):
        if self.policy_action is None:
            return th.zeros(*z.shape[:-1], self.action_dim)
        return self.policy_action.expand(*z.shape[:-1], self.action_dim)

    def q_value(self, z, action, reduce="min", target=False):
        return th.zeros(z.shape[:-1])


CONFIG = PlannerConfig(horizon=3, iterations=6, num_samples=256, num_elites=32, num_pi_trajs=8, temperature=0.5)


def test_actions_in_bounds_and_shapes():
    th.manual_seed(0)
    model = QuadraticModel(th.tensor([5.0, -5.0, 0.3]))  # optimum outside the box
    result = plan(model, th.zeros(4, 6), CONFIG, gamma=0.99)
    assert result.action.shape == (4, 3)
    assert result.planner_action.shape == (4, 3)
    assert result.std.shape == (4, 3)
    assert result.mean.shape == (4, 3, 3)
    assert result.value.shape == (4,)
    for tensor in (result.action, result.planner_action, result.mean):
        assert tensor.abs().max() <= 1.0
    assert ((result.std >= CONFIG.min_std) & (result.std <= CONFIG.max_std)).all()


def test_finds_the_better_sequence_for_each_env():
    th.manual_seed(0)
    targets = th.tensor([[0.5, -0.3], [-0.7, 0.8], [0.0, 0.0]])
    result = plan(QuadraticModel(targets), th.zeros(3, 4), CONFIG, gamma=0.99, deterministic=True)
    assert th.allclose(result.planner_action, targets, atol=0.12)
    assert th.allclose(result.mean, targets.unsqueeze(1).expand(3, 3, 2), atol=0.12)
    assert th.equal(result.action, result.planner_action)  # deterministic: no exploration noise


def test_exploration_noise_uses_planner_std():
    th.manual_seed(0)
    model = QuadraticModel(th.tensor([0.0]))
    config = PlannerConfig(horizon=2, iterations=1, num_samples=64, num_elites=8, num_pi_trajs=0, min_std=0.3, max_std=0.3)
    result = plan(model, th.zeros(512, 2), config, gamma=0.99, deterministic=False)
    noise = result.action - result.planner_action
    assert noise.std().item() == pytest.approx(0.3, rel=0.15)


def test_policy_trajectories_are_candidates():
    """With one iteration and no sampling noise to help, the policy's (optimal) proposal wins."""
    th.manual_seed(0)
    target = th.tensor([0.9, -0.9])
    model = QuadraticModel(target, policy_action=target)
    config = PlannerConfig(horizon=2, iterations=1, num_samples=16, num_elites=1, num_pi_trajs=1, max_std=2.0)
    result = plan(model, th.zeros(1, 2), config, gamma=0.99, deterministic=True)
    assert th.allclose(result.planner_action[0], target)


def test_warm_start_shifts_previous_mean_and_resets_on_episode_start():
    previous = th.arange(2 * 3 * 1, dtype=th.float32).view(2, 3, 1)
    mean = warm_start_mean(previous, th.tensor([False, True]), 2, 3, 1, th.device("cpu"))
    assert mean[0, :, 0].tolist() == [1.0, 2.0, 0.0]  # shifted by one, last step zero
    assert mean[1].abs().sum() == 0  # episode start: no warm start
    assert warm_start_mean(None, None, 2, 3, 1, th.device("cpu")).abs().sum() == 0


def test_warm_start_is_used_by_plan():
    """A warm start at the optimum survives a single low-noise iteration; without it, it is lost."""
    th.manual_seed(0)
    target = th.tensor([0.8])
    model = QuadraticModel(target)
    config = PlannerConfig(horizon=3, iterations=1, num_samples=64, num_elites=8, num_pi_trajs=0, min_std=0.01, max_std=0.01)
    previous = th.full((1, 3, 1), 0.8)
    warm = plan(model, th.zeros(1, 2), config, 0.99, previous, th.tensor([False]), deterministic=True)
    cold = plan(model, th.zeros(1, 2), config, 0.99, previous, th.tensor([True]), deterministic=True)
    assert warm.planner_action.item() == pytest.approx(0.8, abs=0.05)
    assert cold.planner_action.item() == pytest.approx(0.0, abs=0.05)


def test_nan_values_do_not_break_planning():
    class NanModel(QuadraticModel):
        def predict_reward(self, z, action):
            reward = super().predict_reward(z, action)
            return th.where(action[..., 0] > 0.5, th.full_like(reward, float("nan")), reward)

    th.manual_seed(0)
    result = plan(NanModel(th.tensor([0.0])), th.zeros(2, 2), CONFIG, 0.99)
    assert th.isfinite(result.action).all() and th.isfinite(result.mean).all()


@pytest.mark.parametrize(
    "kwargs",
    [dict(num_pi_trajs=512), dict(num_elites=0), dict(num_elites=600), dict(min_std=0.0), dict(horizon=0)],
)
def test_invalid_config_raises(kwargs):
    with pytest.raises(ValueError):
        PlannerConfig(**kwargs)
