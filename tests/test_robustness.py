"""
Bad inputs, broken files and interrupted processes: BOOM refuses or survives them with a clear
message, and never leaves a model, a replay buffer or a checkpoint half-written or poisoned.
"""

import copy
import pickle
import random
import subprocess
import sys
import textwrap

import gymnasium as gym
import numpy as np
import pytest
import torch as th
from gymnasium import spaces
from stable_baselines3.common.buffers import ReplayBuffer
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv, VecNormalize

from sb3_boom import BOOM
from sb3_boom.env_defaults import episode_length


def _snapshot(model: BOOM) -> dict[str, th.Tensor]:
    return {name: value.detach().clone() for name, value in model.policy.state_dict().items()}


def _assert_same_weights(model: BOOM, snapshot: dict[str, th.Tensor]) -> None:
    state = model.policy.state_dict()
    assert state.keys() == snapshot.keys()
    for name, value in state.items():
        assert th.equal(value, snapshot[name]), name


# --- auto defaults: the same under every VecEnv class -------------------------------------------


def _repeated_pendulum() -> gym.Env:
    return gym.wrappers.RepeatAction(gym.make("Pendulum-v1"), 2)


def _dmc_as_the_zoo_makes_it() -> gym.Env:
    import shimmy
    from rl_zoo3.wrappers import FrameSkip

    gym.register_envs(shimmy)
    return FrameSkip(gym.wrappers.FlattenObservation(gym.make("dm_control/cartpole-swingup-v0")), skip=2)


@pytest.mark.parametrize("make_env, length", [(_repeated_pendulum, 100), (_dmc_as_the_zoo_makes_it, 500)])
def test_auto_defaults_do_not_depend_on_the_vec_env_class(make_env, length):
    dummy = DummyVecEnv([make_env, make_env])
    subproc = SubprocVecEnv([make_env, make_env])
    try:
        assert episode_length(dummy) == episode_length(subproc) == length
        assert episode_length(VecNormalize(subproc)) == length
        models = [BOOM("MlpPolicy", env, policy_kwargs=dict(model_size=1)) for env in (dummy, subproc)]
        assert models[0].gamma == models[1].gamma
        assert models[0].learning_starts == models[1].learning_starts == max(1000, 5 * length)
    finally:
        subproc.close()


# --- replay buffers are checked on load ---------------------------------------------------------


def _buffer_file(tmp_path, name, buffer) -> str:
    path = tmp_path / f"{name}.pkl"
    with open(path, "wb") as file:
        pickle.dump(buffer, file)
    return str(path)


def test_replay_buffers_that_do_not_fit_are_refused_at_load(tmp_path, tiny_kwargs):
    model = BOOM("MlpPolicy", "Pendulum-v1", **tiny_kwargs)
    model.learn(60)
    own_buffer = model.replay_buffer
    model.save_replay_buffer(tmp_path / "own.pkl")

    other_horizon = BOOM("MlpPolicy", "Pendulum-v1", **{**tiny_kwargs, "horizon": 4})
    other_obs = BOOM("MlpPolicy", gym.make("MountainCarContinuous-v0"), **tiny_kwargs)
    one_env = BOOM("MlpPolicy", "Pendulum-v1", **tiny_kwargs)
    two_envs = BOOM("MlpPolicy", make_vec_env("Pendulum-v1", n_envs=2), **tiny_kwargs)
    sb3_buffer = ReplayBuffer(100, model.observation_space, model.action_space)
    cases = [
        (model, {"observations": np.zeros(3)}, "dict, not a SequenceReplayBuffer"),
        (model, sb3_buffer, "ReplayBuffer, not a SequenceReplayBuffer"),
        (model, other_horizon.replay_buffer, "horizon 4 \\(this model: 3\\)"),
        (model, other_obs.replay_buffer, "observation_space Box.*\\(2,\\)"),
        (two_envs, one_env.replay_buffer, "n_envs 1 \\(this model: 2\\)"),
    ]
    for index, (target, buffer, message) in enumerate(cases):
        before = target.replay_buffer
        with pytest.raises(ValueError, match=message):
            target.load_replay_buffer(_buffer_file(tmp_path, f"case{index}", buffer))
        assert target.replay_buffer is before  # untouched
    model.load_replay_buffer(tmp_path / "own.pkl")  # its own buffer still loads
    assert model.replay_buffer is not own_buffer
    np.testing.assert_array_equal(model.replay_buffer.observations, own_buffer.observations)
    model.learn(10, reset_num_timesteps=False)


# --- a non-finite update leaves the networks as they were ---------------------------------------


class _HugeObservationEnv(gym.Env):
    """Finite observations of around 1e22: the losses overflow to inf / NaN."""

    observation_space = spaces.Box(-np.inf, np.inf, (3,), np.float32)
    action_space = spaces.Box(-1, 1, (1,), np.float32)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return np.full(3, 1e22, dtype=np.float32), {}

    def step(self, action):
        self.t += 1
        obs = np.array([1e22, -3e22, 2e22 * float(action[0])], dtype=np.float32)
        return obs, 1.0, False, self.t >= 50, {}


@pytest.mark.parametrize("fused", [True, False])
def test_a_non_finite_update_is_skipped_and_the_model_stays_usable(tmp_path, fused, tiny_kwargs):
    policy_kwargs = {**tiny_kwargs["policy_kwargs"], "optimizer_kwargs": dict(fused=fused)}
    model = BOOM("MlpPolicy", _HugeObservationEnv(), **{**tiny_kwargs, "policy_kwargs": policy_kwargs})
    before = _snapshot(model)
    with pytest.raises(FloatingPointError, match="skipped"):
        model.learn(45)
    _assert_same_weights(model, before)
    for optimizer in (model.policy.optimizer, model.policy.pi_optimizer):
        for state in optimizer.state.values():  # no step taken: Adam's moments hold no NaN
            assert all(th.isfinite(value).all() for value in state.values() if th.is_tensor(value))
    assert th.isfinite(model.policy.q_scale).all()
    model.save(tmp_path / "model")
    loaded = BOOM.load(tmp_path / "model")
    action, _ = loaded.predict(np.zeros(3, dtype=np.float32), deterministic=True)
    assert np.isfinite(action).all()


# --- saving is atomic -----------------------------------------------------------------------------

_SAVE_UNTIL_KILLED = textwrap.dedent(
    """
    import pickle, sys, time
    import torch as th
    from stable_baselines3.common import save_util
    from sb3_boom import BOOM
    from sb3_boom.presets import PRESETS

    folder, what = sys.argv[1], sys.argv[2]
    model = BOOM("MlpPolicy", "Pendulum-v1", **{**PRESETS["tiny"], "buffer_size": 50_000, "learning_starts": 100})
    model.learn(60)  # random actions only: a buffer to save, no updates needed
    model.save(f"{folder}/model")
    model.save_replay_buffer(f"{folder}/buffer")
    model.replay_buffer.observations[:] = 1.0  # the next save differs from the complete one on disk

    class StopHere:  # pickled after the buffer's arrays: the file is half-written when it runs
        def __reduce__(self):
            print("WRITING", flush=True)
            time.sleep(600)
            return (StopHere, ())

    original_save = th.save
    def stalling_save(obj, file, *args, **kwargs):  # the archive's policy.pth written, the rest not yet
        original_save(obj, file, *args, **kwargs)
        print("WRITING", flush=True)
        time.sleep(600)

    if what == "model":
        th.save = stalling_save
        model.save(f"{folder}/model")
    else:
        model.replay_buffer.zz_stop_here = StopHere()
        model.save_replay_buffer(f"{folder}/buffer")
    """
)


@pytest.mark.parametrize("what", ["model", "buffer"])
def test_a_process_killed_while_saving_leaves_the_previous_file_loadable(tmp_path, what):
    script = tmp_path / "save_until_killed.py"
    script.write_text(_SAVE_UNTIL_KILLED)
    process = subprocess.Popen([sys.executable, str(script), str(tmp_path), what], stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout.readline().strip() == "WRITING"
    finally:
        process.kill()  # SIGKILL: no cleanup runs
        process.wait()
    model = BOOM.load(tmp_path / "model.zip")
    model.load_replay_buffer(tmp_path / "buffer.pkl")
    assert not (model.replay_buffer.observations[:60] == 1.0).all()  # the complete earlier save
    assert sorted(path.name for path in tmp_path.iterdir() if not path.name.startswith(".")) == [
        "buffer.pkl",
        "model.zip",
        "save_until_killed.py",
    ]


def test_a_failed_save_keeps_the_previous_file_and_leaves_no_temporary(tmp_path, monkeypatch, tiny_kwargs):
    model = BOOM("MlpPolicy", "Pendulum-v1", **tiny_kwargs)
    model.save(tmp_path / "model")
    complete = (tmp_path / "model.zip").read_bytes()

    def broken_save(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(th, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        model.save(tmp_path / "model")
    assert (tmp_path / "model.zip").read_bytes() == complete
    assert [path.name for path in tmp_path.iterdir()] == ["model.zip"]


# --- damaged model files ----------------------------------------------------------------------------


def test_a_model_file_cut_short_is_reported_as_damaged(tmp_path, tiny_kwargs):
    BOOM("MlpPolicy", "Pendulum-v1", **tiny_kwargs).save(tmp_path / "model")
    content = (tmp_path / "model.zip").read_bytes()
    for cut in (10, 100, 1000, len(content) // 2):
        (tmp_path / "cut.zip").write_bytes(content[:-cut])
        with pytest.raises(ValueError, match="damaged|not a zip"):
            BOOM.load(tmp_path / "cut.zip")
    corrupted = bytearray(content)
    corrupted[len(content) // 3] ^= 0xFF
    (tmp_path / "corrupted.zip").write_bytes(bytes(corrupted))
    with pytest.raises(ValueError, match="damaged"):
        BOOM.load(tmp_path / "corrupted.zip")


# --- unbounded actions ------------------------------------------------------------------------------


def test_unbounded_actions_are_refused_with_the_fix_also_under_python_O():
    code = textwrap.dedent(
        """
        import gymnasium as gym, numpy as np
        from sb3_boom import BOOM
        env = gym.make("Pendulum-v1")
        env.action_space = gym.spaces.Box(-np.inf, np.inf, (1,), np.float32)
        try:
            BOOM("MlpPolicy", env)
        except ValueError as error:
            print(error)
        """
    )
    for flags in ([], ["-O"]):
        output = subprocess.run([sys.executable, *flags, "-c", code], capture_output=True, text=True, check=True).stdout
        assert "BOOM needs a bounded Box action space" in output and "TransformAction" in output, (flags, output)


# --- updates wait until a window exists ---------------------------------------------------------


def test_updates_wait_for_a_full_window(tmp_path, tiny_kwargs):
    model = BOOM("MlpPolicy", "Pendulum-v1", **{**tiny_kwargs, "learning_starts": 0})
    model.learn(50)
    # The first window (3 transitions) is stored at step 3; from then on one update per step.
    assert model._n_updates == 50 - (model.horizon - 1)

    trained = BOOM("MlpPolicy", "Pendulum-v1", **tiny_kwargs)
    trained.learn(60)
    trained.save(tmp_path / "model")
    without_buffer = BOOM.load(tmp_path / "model", env=make_vec_env("Pendulum-v1"))
    updates = without_buffer._n_updates
    without_buffer.learn(20, reset_num_timesteps=False)
    assert without_buffer._n_updates == updates + 20 - (model.horizon - 1)


def test_episodes_shorter_than_the_horizon_are_refused_at_construction(tiny_kwargs):
    short = gym.make("Pendulum-v1", max_episode_steps=2)
    with pytest.raises(ValueError, match="at most 2 agent steps, shorter than horizon=3"):
        BOOM("MlpPolicy", short, **tiny_kwargs)
    BOOM("MlpPolicy", short, **{**tiny_kwargs, "horizon": 2}).learn(50)


# --- exact resume -----------------------------------------------------------------------------------


def _rng_state() -> tuple:
    return th.get_rng_state(), np.random.get_state(), random.getstate()


def _set_rng_state(state: tuple) -> None:
    th.set_rng_state(state[0])
    np.random.set_state(state[1])
    random.setstate(state[2])


@pytest.mark.parametrize("steps_before", [70, 100], ids=["mid-episode", "episode-boundary"])
def test_a_saved_and_reloaded_run_continues_exactly_as_an_uninterrupted_one(
    tmp_path, steps_before, tiny_kwargs, assert_same_state
):
    env = make_vec_env("Pendulum-v1", seed=1, env_kwargs=dict(max_episode_steps=100))
    uninterrupted = BOOM("MlpPolicy", env, seed=1, **tiny_kwargs)
    uninterrupted.learn(steps_before)
    uninterrupted.save(tmp_path / "model")
    uninterrupted.save_replay_buffer(tmp_path / "buffer")
    env_state = copy.deepcopy(uninterrupted.env)  # the env exactly where the run stopped
    plan_mean, episode_starts = uninterrupted._plan_mean.clone(), uninterrupted._episode_starts.copy()
    rng = _rng_state()
    uninterrupted.learn(40, reset_num_timesteps=False)

    resumed = BOOM.load(tmp_path / "model", env=env_state, force_reset=False)
    resumed.load_replay_buffer(tmp_path / "buffer")
    # The collection state comes back: the planner's warm start and which envs start an episode.
    assert th.equal(resumed._plan_mean, plan_mean)
    np.testing.assert_array_equal(resumed._episode_starts, episode_starts)
    _set_rng_state(rng)
    resumed.learn(40, reset_num_timesteps=False)

    assert resumed.num_timesteps == uninterrupted.num_timesteps and resumed._n_updates == uninterrupted._n_updates
    assert_same_state(resumed, uninterrupted)  # weights, target Q, running Q scale, Adam's moments
    np.testing.assert_array_equal(resumed.replay_buffer.actions, uninterrupted.replay_buffer.actions)
    assert th.equal(resumed._plan_mean, uninterrupted._plan_mean)


# --- several envs: terminations, truncations and terminal observations --------------------------


class _CountingEnv(gym.Env):
    """Observation ``[step, env index, episode]``; env 0 terminates after 7 steps, env 1 is truncated after 5."""

    observation_space = spaces.Box(-np.inf, np.inf, (3,), np.float32)
    action_space = spaces.Box(-1, 1, (1,), np.float32)

    def __init__(self, index: int):
        self.index, self.episode, self.t = index, -1, 0

    def _obs(self) -> np.ndarray:
        return np.array([self.t, self.index, self.episode], dtype=np.float32)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t, self.episode = 0, self.episode + 1
        return self._obs(), {}

    def step(self, action):
        self.t += 1
        terminated = self.index == 0 and self.t == 7
        truncated = self.index == 1 and self.t == 5
        return self._obs(), float(self.t), terminated, truncated, {}


def test_several_envs_store_terminations_truncations_and_the_raw_terminal_observations(tiny_kwargs):
    env = VecNormalize(DummyVecEnv([lambda: _CountingEnv(0), lambda: _CountingEnv(1)]), norm_obs=True, norm_reward=True)
    model = BOOM("MlpPolicy", env, **{**tiny_kwargs, "learning_starts": 30})
    model.learn(70)  # 35 steps per env: 5 episodes of env 0, 7 of env 1
    buffer = model.replay_buffer
    for index, length, terminates in ((0, 7, True), (1, 5, False)):
        written = buffer.env_pos[index]
        obs = buffer.observations[:written, index]
        steps = buffer.episode_steps[:written, index]
        transitions = steps >= 0
        # The observations are stored raw (not normalised), the final one of each episode included.
        np.testing.assert_allclose(obs[:, 1], index, atol=1e-3)
        closing = np.flatnonzero(~transitions)
        assert len(closing) == 35 // length
        np.testing.assert_allclose(obs[closing, 0], length, atol=1e-3)  # the true terminal observation
        np.testing.assert_allclose(obs[closing - 1, 0], length - 1, atol=1e-3)
        # Only the last transition of a terminating env is terminal; a truncation never is.
        last = closing - 1
        assert buffer.terminated[last, index].all() == terminates
        assert buffer.terminated[:written, index].sum() == (len(closing) if terminates else 0)
        np.testing.assert_array_equal(buffer.rewards[transitions.nonzero()[0], index], obs[transitions, 0] + 1)
    batch = buffer.sample(256, env=env)
    assert (batch.terminated[:-1] == 0).all()
