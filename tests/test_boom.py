"""End-to-end tests of the SB3 contract: BOOM behaves like any SB3 off-policy algorithm."""

import os

import gymnasium as gym
import numpy as np
import pandas as pd
import pytest
import torch as th
from gymnasium import spaces
from stable_baselines3 import SAC
from stable_baselines3.common.callbacks import CheckpointCallback, EvalCallback
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.logger import Logger, configure
from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv, VecNormalize

from sb3_boom import BOOM, MultiInputPolicy, WorldModelPolicy
from sb3_boom import planner as planner_module


def test_user_snippet_end_to_end(tmp_path, tiny_kwargs, assert_same_state):
    env = gym.make("Pendulum-v1")
    model = BOOM("MlpPolicy", env, seed=0, **tiny_kwargs)
    assert isinstance(model.policy, WorldModelPolicy)
    model.learn(1.2e2, progress_bar=True)  # float step counts are accepted
    assert model.num_timesteps == 120
    obs, _ = env.reset(seed=0)
    action, state = model.predict(obs, deterministic=True)
    assert action.shape == (1,) and env.action_space.contains(action.astype(np.float32))
    assert state[0].shape == (1, model.horizon, 1)  # the planner's warm-start mean

    model.policy.q_scale.fill_(3.25)  # the running scale is part of the saved state
    model.save(tmp_path / "boom")
    model.save_replay_buffer(tmp_path / "rb.pkl")
    loaded = BOOM.load(tmp_path / "boom", env=env)
    loaded.load_replay_buffer(tmp_path / "rb.pkl")
    assert_same_state(loaded, model)
    assert loaded.policy.q_scale.item() == 3.25
    assert loaded.replay_buffer.size() == model.replay_buffer.size()
    np.testing.assert_array_equal(loaded.replay_buffer.observations, model.replay_buffer.observations)
    assert loaded.gamma == model.gamma and loaded.lambda_align == model.lambda_align
    # Optimizer states (Adam's moments and step counts) come back too: the next updates are identical.
    for m in (model, loaded):
        m.set_logger(Logger(folder=None, output_formats=[]))
        th.manual_seed(7)
        np.random.seed(7)
        m.train(gradient_steps=3, batch_size=8)
    assert_same_state(loaded, model)

    loaded.learn(30, reset_num_timesteps=False)
    assert loaded.num_timesteps == 150


def test_warmup_pretraining_and_update_to_data_ratio(tiny_kwargs):
    model = BOOM("MlpPolicy", "Pendulum-v1", **tiny_kwargs)
    model.learn(41)  # first train call at the first step after warm-up: the pre-training burst
    assert model._n_updates == 40
    model.learn(10, reset_num_timesteps=False)
    assert model._n_updates == 50  # then one update per step; no second burst

    vec = BOOM("MlpPolicy", make_vec_env("Pendulum-v1", n_envs=2), **tiny_kwargs)
    vec.learn(100)
    # 40 pre-training updates at 42 steps, then 2 updates per (2-env) step: one per transition.
    assert vec._n_updates == 40 + 2 * 29
    assert vec._plan_mean.shape == (2, vec.horizon, 1)


def test_auto_defaults_from_the_environment():
    model = BOOM("MlpPolicy", "Pendulum-v1", policy_kwargs=dict(model_size=1))
    assert model.gamma == pytest.approx(0.975)  # L = 200: frac 40 -> 39 / 40
    assert model.learning_starts == 1000  # max(1000, 5 * 200)
    assert model.lambda_align == pytest.approx(1 / 50)  # A = 1, outside 24..48
    assert model.iterations == 6
    explicit = BOOM(
        "MlpPolicy",
        "Pendulum-v1",
        gamma=0.9,
        learning_starts=7,
        lambda_align=0.5,
        iterations=3,
        policy_kwargs=dict(model_size=1),
    )
    assert (explicit.gamma, explicit.learning_starts, explicit.lambda_align, explicit.iterations) == (0.9, 7, 0.5, 3)
    assert explicit.policy.planner.iterations == 3 and explicit.policy.gamma == 0.9


def test_subproc_vec_env_runs_exactly_as_a_dummy_vec_env(tiny_kwargs, assert_same_state):
    runs = []
    for vec_env_cls in (DummyVecEnv, SubprocVecEnv):
        env = make_vec_env("Pendulum-v1", n_envs=2, seed=3, vec_env_cls=vec_env_cls)
        try:
            model = BOOM("MlpPolicy", env, seed=3, **tiny_kwargs)
            model.learn(90)
        finally:
            env.close()
        runs.append(model)
    dummy, subproc = runs
    assert subproc.gamma == dummy.gamma and subproc.learning_starts == dummy.learning_starts
    # 40 pre-training updates at 42 steps, then one per transition: 2 per 2-env step up to 90.
    assert subproc._n_updates == dummy._n_updates == 40 + 2 * 24
    buffer = subproc.replay_buffer
    assert list(buffer.env_pos) == [45, 45] and buffer.size() == 90
    assert not np.array_equal(buffer.observations[:45, 0], buffer.observations[:45, 1])  # two distinct envs
    for name in ("observations", "actions", "planner_actions", "rewards", "episode_steps"):
        np.testing.assert_array_equal(getattr(buffer, name), getattr(dummy.replay_buffer, name), err_msg=name)
    assert_same_state(subproc, dummy)


def test_vec_normalize_stores_original_observations(tiny_kwargs):
    env = VecNormalize(make_vec_env("Pendulum-v1", n_envs=2), norm_obs=True, norm_reward=True)
    model = BOOM("MlpPolicy", env, **tiny_kwargs)
    model.learn(80)
    stored = model.replay_buffer.observations[: model.replay_buffer.env_pos[0], 0]
    # Pendulum's raw observation is (cos, sin, velocity): cos^2 + sin^2 = 1 only before normalisation.
    np.testing.assert_allclose(stored[:, 0] ** 2 + stored[:, 1] ** 2, 1.0, atol=1e-4)
    batch = model.replay_buffer.sample(32, env=env)
    assert not np.allclose(batch.observations[..., 0] ** 2 + batch.observations[..., 1] ** 2, 1.0, atol=1e-3)


def test_callbacks_and_tensorboard(tmp_path, tiny_kwargs):
    eval_env = make_vec_env("Pendulum-v1", n_envs=2)
    eval_callback = EvalCallback(
        eval_env, eval_freq=50, n_eval_episodes=2, log_path=str(tmp_path / "eval"), best_model_save_path=str(tmp_path / "best")
    )
    checkpoint = CheckpointCallback(save_freq=60, save_path=str(tmp_path / "ckpt"), save_replay_buffer=True)
    model = BOOM("MlpPolicy", "Pendulum-v1", tensorboard_log=str(tmp_path / "tb"), **tiny_kwargs)
    model.learn(120, callback=[eval_callback, checkpoint])
    assert len(np.load(tmp_path / "eval" / "evaluations.npz")["results"]) == 2
    assert (tmp_path / "best" / "best_model.zip").exists()
    assert sorted(os.listdir(tmp_path / "ckpt")) == sorted(
        [
            "rl_model_60_steps.zip",
            "rl_model_120_steps.zip",
            "rl_model_replay_buffer_60_steps.pkl",
            "rl_model_replay_buffer_120_steps.pkl",
        ]
    )
    assert any(name.startswith("events.out.tfevents") for _, _, files in os.walk(tmp_path / "tb") for name in files)
    # The training environment's planner warm start is not disturbed by the evaluation's predictions.
    assert model._plan_mean.shape == (1, model.horizon, 1)
    BOOM.load(tmp_path / "ckpt" / "rl_model_120_steps.zip")


def test_logger_records_losses_and_planner_statistics(tmp_path, tiny_kwargs):
    model = BOOM("MlpPolicy", "Pendulum-v1", **tiny_kwargs)
    model.set_logger(configure(str(tmp_path), ["csv"]))
    model.learn(420, log_interval=1)  # 2 episodes of 200 steps
    progress = pd.read_csv(tmp_path / "progress.csv")
    for key in [
        "train/consistency_loss",
        "train/reward_loss",
        "train/value_loss",
        "train/policy_loss",
        "train/align_loss",
        "train/q_scale",
        "train/model_grad_norm",
        "train/latent_spread",
        "rollout/planner_std",
        "rollout/planner_value",
        "rollout/ep_rew_mean",
    ]:
        assert key in progress.columns, key
        assert np.isfinite(progress[key].dropna()).all() and len(progress[key].dropna()) > 0, key


def test_latent_spread_is_the_spread_of_the_batch_latents_before_the_update(tiny_kwargs):
    """train/latent_spread: std over the batch of each latent coordinate of the first observations, averaged."""
    from copy import deepcopy

    from sb3_boom.boom import TRAIN_STATS

    model = BOOM("MlpPolicy", "Pendulum-v1", seed=0, **{**tiny_kwargs, "learning_starts": 100}).learn(120)
    batch = model.replay_buffer.sample(tiny_kwargs["batch_size"])
    encoder = deepcopy(model.policy.encoder)  # the weights the update starts from
    model.policy.set_training_mode(True)
    stats = dict(zip(TRAIN_STATS, model._update(batch).tolist(), strict=True))
    with th.no_grad():
        expected = encoder(batch.observations[0]).std(dim=0, correction=0).mean()
    assert stats["latent_spread"] == pytest.approx(float(expected), rel=1e-5) and stats["latent_spread"] > 0
    one = model.replay_buffer.sample(1)  # one observation: spread 0, not NaN (which would stop training)
    assert dict(zip(TRAIN_STATS, model._update(one).tolist(), strict=True))["latent_spread"] == 0.0


def test_box_bounds_are_rescaled(tiny_kwargs):
    env = gym.wrappers.RescaleAction(gym.make("Pendulum-v1"), min_action=np.float32(3.0), max_action=np.float32(7.0))
    model = BOOM("MlpPolicy", env, **tiny_kwargs)
    model.learn(60)
    stored = model.replay_buffer.actions[:60, 0, 0]
    assert stored.min() >= -1.0 and stored.max() <= 1.0 and stored.min() < -0.5 and stored.max() > 0.5
    obs = np.stack([env.observation_space.sample() for _ in range(64)])
    for use_planner in (True, False):
        model.use_planner = use_planner
        actions, _ = model.predict(obs)
        assert actions.min() >= 3.0 and actions.max() <= 7.0 and actions.max() - actions.min() > 0.1


def test_terminating_env_hopper(tiny_kwargs):
    model = BOOM("MlpPolicy", "Hopper-v5", **{**tiny_kwargs, "learning_starts": 150})
    model.learn(220)
    buffer = model.replay_buffer
    assert buffer.terminated.any()  # random hopping falls over: true terminations are stored
    assert model.gamma == pytest.approx(0.995)  # 1000-step time limit
    batch = buffer.sample(64)
    assert (batch.terminated[:-1] == 0).all()  # only the last transition of a window can terminate


def test_dm_control_dict_observations(tiny_kwargs):
    import shimmy  # noqa: F401  (registers dm_control/* ids)

    env = gym.make("dm_control/cartpole-swingup-v0")
    assert isinstance(env.observation_space, spaces.Dict)
    with pytest.raises((TypeError, ValueError), match="MultiInputPolicy"):
        BOOM("MlpPolicy", env, **tiny_kwargs)
    model = BOOM("MultiInputPolicy", env, **tiny_kwargs)
    assert isinstance(model.policy, MultiInputPolicy)
    assert model.gamma == pytest.approx(0.995)  # 1000-step episodes
    model.learn(60)
    obs, _ = env.reset(seed=1)
    action, _ = model.predict(obs, deterministic=True)
    assert action.shape == (1,)


def test_dm_control_episode_length_through_frame_skip():
    import shimmy  # noqa: F401
    from rl_zoo3.wrappers import FrameSkip

    env = DummyVecEnv([lambda: FrameSkip(gym.wrappers.FlattenObservation(gym.make("dm_control/cartpole-swingup-v0")), skip=2)])
    model = BOOM("MlpPolicy", env, policy_kwargs=dict(model_size=1))
    assert model.gamma == pytest.approx(0.99)  # the paper's L = 500 agent steps
    assert model.learning_starts == 2500
    # gymnasium's own action repeat wrapper counts too
    env = DummyVecEnv([lambda: gym.wrappers.RepeatAction(gym.make("dm_control/cartpole-swingup-v0"), 2)])
    assert BOOM("MultiInputPolicy", env, policy_kwargs=dict(model_size=1)).learning_starts == 2500


def test_policy_prior_only_mode(tmp_path, tiny_kwargs):
    env = gym.make("Pendulum-v1")
    model = BOOM("MlpPolicy", env, **tiny_kwargs)
    model.learn(50)
    model.save(tmp_path / "boom")
    fast = BOOM.load(tmp_path / "boom", use_planner=False)
    assert fast.use_planner is False
    obs = np.stack([env.observation_space.sample() for _ in range(5)])
    action, state = fast.predict(obs, deterministic=True)
    assert state is None
    with th.no_grad():
        z = fast.policy.encode(th.as_tensor(obs))
        expected = fast.policy.unscale_action(fast.policy.pi(z).mean.numpy())
    np.testing.assert_allclose(action, expected, rtol=1e-5)
    mean_prior, _ = evaluate_policy(fast, env, n_eval_episodes=1)
    fast.use_planner = True
    mean_planner, _ = evaluate_policy(fast, env, n_eval_episodes=1)
    assert np.isfinite(mean_prior) and np.isfinite(mean_planner)


def test_predict_threads_the_warm_start_state(tiny_kwargs):
    # Sampled sequences only, and values that differ between them: the warm start then moves every plan
    # (with the zero-initialised output layers, all values tie and the prior's proposals win).
    model = BOOM("MlpPolicy", "Pendulum-v1", seed=0, **{**tiny_kwargs, "num_pi_trajs": 0})
    policy = model.policy
    with th.no_grad():
        for weight in (*policy.q_ensemble.weights, *policy.reward_head[-1].parameters()):
            weight.normal_()
    obs = np.random.default_rng(0).normal(size=(3, 3)).astype(np.float32)

    def planned(previous, starts, seed):
        th.manual_seed(seed)
        with th.no_grad():
            return policy.plan(th.as_tensor(obs), previous, None if starts is None else th.as_tensor(starts))

    th.manual_seed(0)
    action, state = model.predict(obs, episode_start=np.ones(3, dtype=bool))
    fresh = planned(None, None, 0)
    np.testing.assert_array_equal(state[0], fresh.mean.numpy())  # the state is the planner's MPPI mean
    np.testing.assert_allclose(action, policy.unscale_action(fresh.action.numpy()), rtol=1e-6)

    # The state passed in warm-starts the next plan; episode_start discards it for env 1 only.
    given = np.linspace(-0.9, 0.9, 3 * model.horizon, dtype=np.float32).reshape(3, model.horizon, 1)
    starts = np.array([False, True, False])
    th.manual_seed(1)
    _, state2 = model.predict(obs, state=(given,), episode_start=starts)
    warm, cold = planned(th.as_tensor(given), starts, 1), planned(None, None, 1)
    np.testing.assert_array_equal(state2[0], warm.mean.numpy())
    np.testing.assert_array_equal(state2[0][1], cold.mean[1].numpy())  # env 1: as without a warm start
    assert not np.array_equal(state2[0][[0, 2]], cold.mean[[0, 2]].numpy())  # envs 0 and 2: warm-started

    # Without a state argument, the policy keeps the warm start itself between calls (the first call
    # above had none either: its mean is the warm start of the next such call).
    th.manual_seed(2)
    model.predict(obs)
    th.manual_seed(3)
    _, kept = model.predict(obs)
    first = planned(fresh.mean, None, 2)
    np.testing.assert_array_equal(kept[0], planned(first.mean, None, 3).mean.numpy())
    assert state2[0].shape == (3, model.horizon, 1)
    single, _ = model.predict(np.zeros(3, dtype=np.float32))
    assert single.shape == (1,)
    with pytest.raises(ValueError):
        model.predict(np.zeros((3, 4), dtype=np.float32))  # wrong observation shape


@pytest.mark.parametrize(
    "env_id, match",
    [("CartPole-v1", "Box action"), ("MountainCar-v0", "Box action")],
)
def test_unsupported_action_spaces(env_id, match):
    with pytest.raises(TypeError, match=match):
        BOOM("MlpPolicy", env_id)


class _ImageEnv(gym.Env):
    observation_space = spaces.Box(0, 255, (32, 32, 3), np.uint8)
    action_space = spaces.Box(-1, 1, (2,), np.float32)

    def reset(self, *, seed=None, options=None):
        return self.observation_space.sample(), {}

    def step(self, action):
        return self.observation_space.sample(), 0.0, False, False, {}


class _FaultyEnv(gym.Env):
    """Pendulum-like env that returns a NaN observation or reward at a given step."""

    observation_space = spaces.Box(-1, 1, (3,), np.float32)
    action_space = spaces.Box(-1, 1, (1,), np.float32)

    def __init__(self, bad: str, at_step: int = 5):
        self.bad, self.at_step, self.t = bad, at_step, 0

    def reset(self, *, seed=None, options=None):
        self.t = 0
        return np.zeros(3, dtype=np.float32), {}

    def step(self, action):
        self.t += 1
        obs = np.full(3, 0.1, dtype=np.float32)
        reward = 0.0
        if self.t == self.at_step:
            if self.bad == "observation":
                obs[1] = np.nan
            else:
                reward = float("inf")
        return obs, reward, False, self.t >= 50, {}


def test_bad_environments_give_clear_errors(tiny_kwargs):
    with pytest.raises(TypeError, match="image"):
        BOOM("MlpPolicy", _ImageEnv())
    unbounded = gym.make("Pendulum-v1")
    unbounded.action_space = spaces.Box(-np.inf, np.inf, (1,), np.float32)
    with pytest.raises((ValueError, AssertionError), match="finite lower and upper bound"):
        BOOM("MlpPolicy", unbounded)
    for bad in ("observation", "reward"):
        model = BOOM("MlpPolicy", _FaultyEnv(bad), **tiny_kwargs)
        with pytest.raises(ValueError, match=f"non-finite (next )?{bad}"):
            model.learn(20)
    model = BOOM("MlpPolicy", "Pendulum-v1", **tiny_kwargs)
    with pytest.raises(ValueError, match="Non-finite"):
        model.predict(np.array([0.0, np.nan, 0.0], dtype=np.float32))
    with pytest.raises(ValueError, match="alignment"):
        BOOM("MlpPolicy", "Pendulum-v1", alignment="kl")
    with pytest.raises(ValueError, match="model_size"):
        BOOM("MlpPolicy", "Pendulum-v1", policy_kwargs=dict(model_size=3))


def test_nan_loss_stops_with_the_name_of_the_loss(tiny_kwargs):
    model = BOOM("MlpPolicy", "Pendulum-v1", **tiny_kwargs)
    model.learn(45)
    with th.no_grad():
        model.policy.reward_head[-1].weight.fill_(float("nan"))
    with pytest.raises(FloatingPointError, match="reward_loss became nan"):
        model.train(gradient_steps=2, batch_size=8)


def test_load_and_set_env_take_an_env_id(tmp_path, tiny_kwargs):
    """As the constructor does: BOOM.load(path, env="Pendulum-v1") and set_env("Pendulum-v1") make the env."""
    BOOM("MlpPolicy", "Pendulum-v1", **tiny_kwargs).save(tmp_path / "boom")
    model = BOOM.load(tmp_path / "boom", env="Pendulum-v1")
    assert model.get_env().num_envs == 1 and model.get_env().observation_space.shape == (3,)
    model.learn(model.learning_starts + 5)
    model.set_env("Pendulum-v1")
    assert model.get_env().action_space.shape == (1,)


def test_loading_a_model_that_is_not_boom(tmp_path):
    SAC("MlpPolicy", "Pendulum-v1", buffer_size=100).save(tmp_path / "sac")
    with pytest.raises(ValueError, match="not a BOOM model"):
        BOOM.load(tmp_path / "sac")
    (tmp_path / "junk.zip").write_text("not a zip")
    with pytest.raises(ValueError, match="zip"):
        BOOM.load(tmp_path / "junk.zip")


@pytest.mark.parametrize("alignment, weighting", [("rkl", "softq"), ("none", "softq"), ("fkl", "uniform")])
def test_ablation_switches_train(alignment, weighting, tiny_kwargs):
    model = BOOM("MlpPolicy", "Pendulum-v1", alignment=alignment, align_weighting=weighting, **tiny_kwargs)
    model.learn(60)
    assert model._n_updates == 40 + 19  # pre-training burst, then one per step


def test_ablation_switches_reach_the_policy_loss(tiny_kwargs):
    """The alignment and its weighting change the prior's loss on the same batch and weights."""
    generator = th.Generator().manual_seed(0)
    horizon, batch, action_dim = 3, 16, 1
    planner_actions = th.rand(horizon, batch, action_dim, generator=generator) * 2 - 1
    planner_stds = th.full((horizon, batch, action_dim), 0.3)
    align_terms = {}
    for alignment, weighting in [("fkl", "softq"), ("rkl", "softq"), ("none", "softq"), ("fkl", "uniform")]:
        model = BOOM("MlpPolicy", "Pendulum-v1", alignment=alignment, align_weighting=weighting, seed=0, **tiny_kwargs)
        with th.no_grad():  # Q values that vary over the batch: the zero-initialised output layers give none
            for weight in model.policy.q_ensemble.weights:
                weight.copy_(th.randn(weight.shape, generator=th.Generator().manual_seed(1)))
        zs = th.randn(horizon, batch, model.policy.latent_dim, generator=th.Generator().manual_seed(2))
        th.manual_seed(3)
        _, stats, _ = model._prior_loss(zs, planner_actions, planner_stds)
        align_terms[alignment, weighting] = float(stats[2])
    assert align_terms["none", "softq"] == 0.0
    assert align_terms["fkl", "softq"] != 0.0
    assert align_terms["rkl", "softq"] not in (0.0, align_terms["fkl", "softq"])
    assert align_terms["fkl", "uniform"] not in (0.0, align_terms["fkl", "softq"])


def test_model_size_presets_and_simnorm_rule():
    box = spaces.Box(-1, 1, (5,), np.float32)
    policy = WorldModelPolicy(box, spaces.Box(-1, 1, (38,), np.float32), lambda _: 3e-4, model_size=1)
    assert (policy.latent_dim, policy.mlp_dim, policy.enc_dim, policy.num_q) == (128, 384, 256, 2)
    assert policy.encoder[-1].activation.enabled is False  # dog-sized action: SimNorm off
    policy5 = WorldModelPolicy(box, spaces.Box(-1, 1, (21,), np.float32), lambda _: 3e-4)
    assert (policy5.latent_dim, policy5.mlp_dim, policy5.num_q) == (512, 512, 5)
    assert policy5.encoder[-1].activation.enabled and policy5.dynamics[-1].activation.enabled
    n_params = sum(p.numel() for name, p in policy5.named_parameters() if not name.startswith("q_target"))
    assert 4e6 < n_params < 6e6  # the "5M" model


@pytest.mark.parametrize("q_dropout", ["train", "always"])
def test_q_dropout_mode_decides_where_the_q_heads_drop_units(tmp_path, q_dropout, tiny_kwargs):
    policy_kwargs = {**tiny_kwargs["policy_kwargs"], "dropout": 0.2, "q_dropout": q_dropout}
    BOOM("MlpPolicy", "Pendulum-v1", **{**tiny_kwargs, "policy_kwargs": policy_kwargs}).save(tmp_path / "model")
    policy = BOOM.load(tmp_path / "model").policy  # the mode survives save / load
    assert policy.q_dropout == q_dropout
    with th.no_grad():  # the zero-initialised output layers would hide any dropout
        for weight in (*policy.q_ensemble.weights, *policy.q_target.weights):
            weight.normal_()
    z, action = th.rand(64, policy.latent_dim), th.rand(64, policy.action_dim)

    def drops(target: bool) -> bool:
        with th.no_grad():
            return not th.equal(policy.q_logits(z, action, target=target), policy.q_logits(z, action, target=target))

    always = q_dropout == "always"
    policy.set_training_mode(True)
    assert drops(target=False)  # the value and policy losses drop units in both modes
    assert drops(target=True) == always  # the TD target
    policy.set_training_mode(False)
    assert drops(target=False) == always  # the planner's value estimate
    assert drops(target=True) == always
    # Switched on the built policy: the other mode's behaviour, for the planner and the TD target alike.
    policy.set_q_dropout("train" if always else "always")
    assert drops(target=False) == drops(target=True) == (not always)
    with pytest.raises(ValueError, match="q_dropout"):
        BOOM("MlpPolicy", "Pendulum-v1", **{**tiny_kwargs, "policy_kwargs": {**policy_kwargs, "q_dropout": "eval"}})
    with pytest.raises(ValueError, match="q_dropout"):
        policy.set_q_dropout("eval")


def test_q_heads_drop_units_while_planning_by_default_as_the_authors_code_does(tiny_kwargs):
    # The SPEC's text says otherwise; the authors' vmapped ensemble never leaves train mode (docs/validation.md).
    policy = BOOM("MlpPolicy", "Pendulum-v1", **tiny_kwargs).policy
    assert policy.q_dropout == "always"
    assert policy.q_ensemble.dropout_always and policy.q_target.dropout_always


@pytest.mark.skipif(not th.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_device(tiny_kwargs):
    model = BOOM("MlpPolicy", "Pendulum-v1", device="cuda", **tiny_kwargs)
    model.learn(60)
    assert next(model.policy.parameters()).is_cuda


def test_settings_held_by_boom_and_its_policy_never_disagree(tmp_path, tiny_kwargs):
    model = BOOM("MlpPolicy", "Pendulum-v1", **tiny_kwargs)
    model.num_samples, model.num_elites, model.temperature = 24, 3, 0.7
    model.gamma, model.use_planner, model.precision = 0.9, False, "bfloat16"
    policy = model.policy
    assert (policy.planner.num_samples, policy.planner.num_elites, policy.planner.temperature) == (24, 3, 0.7)
    assert (policy.gamma, policy.use_planner, policy.precision) == (0.9, False, "bfloat16")
    model.precision, model.use_planner = "float32", True
    sampled = []

    def recording(model_, z, actions, *args, **kwargs):
        sampled.append(actions.shape[2])
        return planner_module.estimate_value(model_, z, actions, *args, **kwargs)

    policy._value_program = recording
    model.predict(np.zeros(3, dtype=np.float32))
    assert set(sampled) == {24 - model.num_pi_trajs}  # the planner used the new sample count
    # Refused values leave both copies as they were.
    with pytest.raises(ValueError, match="num_elites"):
        model.num_elites = 100
    assert model.num_elites == policy.planner.num_elites == 3
    with pytest.raises(ValueError, match="horizon cannot change"):
        model.horizon = 5
    with pytest.raises(ValueError, match="precision"):
        model.precision = "float16"
    # At load time too.
    model.save(tmp_path / "model")
    loaded = BOOM.load(tmp_path / "model", num_samples=40, iterations=1, use_planner=False)
    assert (loaded.policy.planner.num_samples, loaded.policy.planner.iterations, loaded.policy.use_planner) == (40, 1, False)


def test_use_planner_set_on_the_policy_is_what_predict_uses(tiny_kwargs):
    model = BOOM("MlpPolicy", "Pendulum-v1", **tiny_kwargs)
    observation = np.array([0.6, 0.8, -1.0], dtype=np.float32)
    with th.no_grad():
        prior_mean = model.policy.pi(model.policy.encode(th.as_tensor(observation[None]))).mean.numpy()[0]
    model.policy.use_planner = False
    for _ in range(2):  # the prior's mean, every call (the planner's samples would differ)
        np.testing.assert_allclose(model.predict(observation, deterministic=True)[0], 2.0 * prior_mean, atol=1e-6)
    model.use_planner = True  # and through the model, as before
    assert model.policy.use_planner is True
