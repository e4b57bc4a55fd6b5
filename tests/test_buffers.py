import pickle

import numpy as np
import pytest
from gymnasium import spaces
from stable_baselines3.common.vec_env import DummyVecEnv, VecNormalize

from sb3_boom.buffers import SequenceReplayBuffer
from sb3_boom.planner import RANDOM_ACTION_STD

OBS_SPACE = spaces.Box(-np.inf, np.inf, (2,), np.float32)
ACTION_SPACE = spaces.Box(-1, 1, (1,), np.float32)


def encode(env: int, episode: int, step: int) -> np.ndarray:
    """Observation that names its env, episode and step."""
    return np.array([env * 1000 + episode, step], dtype=np.float32)


def fill(buffer: SequenceReplayBuffer, episode_lengths: list[list[int]], terminate: bool = False) -> None:
    """
    Run ``n_envs`` fake envs with the given episode lengths in lock step, the way SB3's collection
    loop calls ``add`` (auto-reset: after a done, the next obs is the new episode's first one).
    """
    n_envs = buffer.n_envs
    queues = [list(lengths) for lengths in episode_lengths]
    episode = [0] * n_envs
    step = [0] * n_envs
    total = min(sum(lengths) for lengths in episode_lengths)
    for _ in range(total):
        obs = np.stack([encode(i, episode[i], step[i]) for i in range(n_envs)])
        next_obs, dones, infos = [], [], []
        for i in range(n_envs):
            step[i] += 1
            next_obs.append(encode(i, episode[i], step[i]))  # true final obs when the episode ends
            done = step[i] == queues[i][0]
            dones.append(done)
            infos.append({"TimeLimit.truncated": done and not terminate})
            if done:
                queues[i].pop(0)
                episode[i] += 1
                step[i] = 0
        action = obs[:, 1:] / 100.0  # the action names the step it was taken at
        planner_action = action + 0.5
        buffer.add(
            obs,
            np.stack(next_obs),
            action,
            obs[:, 1] + 0.25,
            np.array(dones),
            infos,
            planner_action,
            np.full_like(action, 0.1),
        )


def check_windows(buffer: SequenceReplayBuffer, batch) -> None:
    horizon = buffer.horizon
    obs = batch.observations.numpy()
    assert obs.shape == (horizon + 1, len(obs[0]), 2)
    ids, steps = obs[..., 0], obs[..., 1]
    # One env and one episode per window, consecutive steps.
    assert (ids == ids[:1]).all()
    assert (np.diff(steps, axis=0) == 1).all()
    # Transition t goes from obs t (action, reward, planner action) to obs t + 1.
    np.testing.assert_allclose(batch.actions.numpy()[..., 0], steps[:-1] / 100.0, rtol=1e-6)
    np.testing.assert_allclose(batch.rewards.numpy(), steps[:-1] + 0.25)
    np.testing.assert_allclose(batch.planner_actions.numpy()[..., 0], steps[:-1] / 100.0 + 0.5, rtol=1e-6)
    np.testing.assert_allclose(batch.planner_stds.numpy(), 0.1)


@pytest.mark.parametrize("n_envs", [1, 3])
def test_windows_never_cross_episode_boundaries(n_envs):
    np.random.seed(0)
    buffer = SequenceReplayBuffer(10_000, OBS_SPACE, ACTION_SPACE, "cpu", n_envs=n_envs, horizon=3)
    lengths = [[5, 4, 9, 3, 7, 12, 4] * 3 for _ in range(n_envs)]
    lengths[-1] = [6, 11, 4, 5, 8, 3, 9] * 3
    fill(buffer, lengths)
    for _ in range(20):
        check_windows(buffer, buffer.sample(64))


def test_windows_after_ring_wrap_around():
    np.random.seed(1)
    buffer = SequenceReplayBuffer(2 * 23, OBS_SPACE, ACTION_SPACE, "cpu", n_envs=2, horizon=4)
    fill(buffer, [[7, 5, 13] * 6, [9, 6, 10] * 6])  # far more than 23 slots per env
    assert buffer.full
    for _ in range(50):
        check_windows(buffer, buffer.sample(32))


def test_episode_can_be_used_while_running_and_last_step_terminal_is_kept():
    buffer = SequenceReplayBuffer(100, OBS_SPACE, ACTION_SPACE, "cpu", horizon=2)
    fill(buffer, [[3]], terminate=True)
    # Windows [0, 1] and [1, 2] only; the latter ends with the termination (true final obs = step 3).
    starts = {int(buffer.sample(1).observations[0, 0, 1]) for _ in range(100)}
    assert starts == {0, 1}
    for _ in range(50):
        batch = buffer.sample(1)
        if batch.observations[0, 0, 1] == 1:
            assert batch.observations[-1, 0, 1].item() == 3.0  # terminal observation
            assert batch.terminated[:, 0].tolist() == [0.0, 1.0]


@pytest.mark.parametrize("n_envs", [1, 2])
def test_running_episodes_are_left_out_when_asked(n_envs):
    """sample_running_episodes=False (the authors' buffer): windows only from episodes that have ended."""
    np.random.seed(4)
    both = [
        SequenceReplayBuffer(200, OBS_SPACE, ACTION_SPACE, "cpu", n_envs=n_envs, horizon=2, sample_running_episodes=flag)
        for flag in (True, False)
    ]
    for buffer in both:
        fill(buffer, [[6, 5]] * n_envs)  # two episodes per env, both ended
        for step in range(7):  # then a third one, still running (episode index 2)
            obs = np.stack([encode(i, 2, step) for i in range(n_envs)])
            next_obs = np.stack([encode(i, 2, step + 1) for i in range(n_envs)])
            buffer.add(obs, next_obs, obs[:, 1:] / 100.0, obs[:, 1] + 0.25, np.zeros(n_envs, bool), [{}] * n_envs)
    running, ended_only = (
        np.concatenate([b.sample(64).observations[0, :, 0].numpy() % 1000 for _ in range(20)]) for b in both
    )
    assert (running == 2).any() and set(running) == {0, 1, 2}
    assert set(ended_only) == {0, 1}
    for _ in range(10):
        check_windows(both[1], both[1].sample(32))
    # Pickles from before the option existed load with the old behaviour.
    del both[1].__dict__["sample_running_episodes"]
    assert pickle.loads(pickle.dumps(both[1])).sample_running_episodes is True


def test_no_ended_episode_yet_gives_a_clear_error():
    buffer = SequenceReplayBuffer(100, OBS_SPACE, ACTION_SPACE, "cpu", horizon=2, sample_running_episodes=False)
    for step in range(10):
        buffer.add(
            encode(0, 0, step)[None], encode(0, 0, step + 1)[None], np.zeros((1, 1)), np.zeros(1), np.zeros(1, bool), [{}]
        )
    with pytest.raises(ValueError, match="sample_running_episodes=False"):
        buffer.sample(4)


def test_truncation_is_not_termination():
    buffer = SequenceReplayBuffer(100, OBS_SPACE, ACTION_SPACE, "cpu", horizon=2)
    fill(buffer, [[3, 3]], terminate=False)
    assert buffer.sample(64).terminated.sum().item() == 0.0


def test_sampling_is_uniform_over_transitions():
    np.random.seed(2)
    buffer = SequenceReplayBuffer(1000, OBS_SPACE, ACTION_SPACE, "cpu", horizon=1)
    fill(buffer, [[2] * 100 + [100]])  # many short episodes, one long one
    long_episode = np.concatenate([(buffer.sample(256).observations[0, :, 0] == 100).numpy() for _ in range(40)])
    # 100 of the 300 valid starts are in the long episode (an episode-first sampler would give ~1%).
    assert long_episode.mean() == pytest.approx(100 / 300, abs=0.03)


def test_reset_between_learn_calls_cuts_the_episode():
    """An obs that does not continue the stored episode starts a new fragment."""
    buffer = SequenceReplayBuffer(100, OBS_SPACE, ACTION_SPACE, "cpu", horizon=2)
    info = [{}]
    for step in range(3):  # episode 0, steps 0..2 (still running)
        buffer.add(encode(0, 0, step)[None], encode(0, 0, step + 1)[None], np.zeros((1, 1)), np.zeros(1), np.zeros(1), info)
    for step in range(3):  # the env was reset without a done: episode 1
        buffer.add(encode(0, 1, step)[None], encode(0, 1, step + 1)[None], np.zeros((1, 1)), np.zeros(1), np.zeros(1), info)
    for _ in range(50):
        ids = buffer.sample(8).observations[..., 0].numpy()
        assert (ids == ids[:1]).all()


def test_too_short_episodes_give_a_clear_error():
    buffer = SequenceReplayBuffer(100, OBS_SPACE, ACTION_SPACE, "cpu", horizon=3)
    fill(buffer, [[2] * 10])
    with pytest.raises(ValueError, match="Episodes must last more than horizon"):
        buffer.sample(4)
    with pytest.raises(ValueError, match="empty"):
        SequenceReplayBuffer(100, OBS_SPACE, ACTION_SPACE, "cpu").sample(4)


def test_non_finite_values_are_rejected():
    buffer = SequenceReplayBuffer(100, OBS_SPACE, ACTION_SPACE, "cpu", n_envs=2)
    obs = np.zeros((2, 2), dtype=np.float32)
    bad = obs.copy()
    bad[1, 0] = np.nan
    with pytest.raises(ValueError, match=r"non-finite observation .*\[1\]"):
        buffer.add(bad, obs, np.zeros((2, 1)), np.zeros(2), np.zeros(2), [{}, {}])
    with pytest.raises(ValueError, match="non-finite reward"):
        buffer.add(obs, obs, np.zeros((2, 1)), np.array([0.0, np.inf]), np.zeros(2), [{}, {}])


def test_default_planner_output_and_staging():
    buffer = SequenceReplayBuffer(100, OBS_SPACE, ACTION_SPACE, "cpu", horizon=1)
    obs = np.zeros((1, 2), dtype=np.float32)
    buffer.add(obs, obs + 1, np.full((1, 1), 0.3), np.zeros(1), np.zeros(1), [{}])
    assert buffer.planner_actions[0, 0, 0] == pytest.approx(0.3)
    assert buffer.planner_stds[0, 0, 0] == pytest.approx(RANDOM_ACTION_STD)
    buffer.stage_planner_output(np.full((1, 1), -0.7), np.full((1, 1), 0.2))
    buffer.add(obs + 1, obs + 2, np.full((1, 1), 0.3), np.zeros(1), np.zeros(1), [{}])
    assert buffer.planner_actions[1, 0, 0] == pytest.approx(-0.7)
    assert buffer.planner_stds[1, 0, 0] == pytest.approx(0.2)


def test_observations_stored_once_and_pickle_round_trip(tmp_path):
    buffer = SequenceReplayBuffer(1000, spaces.Box(-1, 1, (223,), np.float32), spaces.Box(-1, 1, (38,)), "cpu", horizon=3)
    assert not hasattr(buffer, "next_observations")
    # obs + action + planner action + planner std (float32), reward, terminated flag, episode step
    assert buffer.bytes_per_slot == 223 * 4 + 3 * 38 * 4 + 4 + 1 + 4
    small = SequenceReplayBuffer(100, OBS_SPACE, ACTION_SPACE, "cpu", horizon=2)
    fill(small, [[5, 6]])
    path = tmp_path / "buffer.pkl"
    path.write_bytes(pickle.dumps(small))
    loaded = pickle.loads(path.read_bytes())
    np.random.seed(3)
    first = small.sample(16)
    np.random.seed(3)
    second = loaded.sample(16)
    for a, b in zip(first, second, strict=False):
        assert (a == b).all()


def test_dict_observations_are_flattened_in_key_order():
    space = spaces.Dict({"velocity": spaces.Box(-1, 1, (2,)), "position": spaces.Box(-1, 1, (1, 3))})
    buffer = SequenceReplayBuffer(100, space, ACTION_SPACE, "cpu", horizon=1)
    obs = {"position": np.array([[[1.0, 2.0, 3.0]]]), "velocity": np.array([[4.0, 5.0]])}
    next_obs = {"position": np.array([[[6.0, 7.0, 8.0]]]), "velocity": np.array([[9.0, 10.0]])}
    buffer.add(obs, next_obs, np.zeros((1, 1)), np.zeros(1), np.ones(1), [{}])
    batch = buffer.sample(1)
    # gymnasium sorts Dict keys: position, then velocity.
    assert batch.observations[:, 0].tolist() == [[1.0, 2.0, 3.0, 4.0, 5.0], [6.0, 7.0, 8.0, 9.0, 10.0]]


def test_vec_normalize_statistics_are_applied_at_sampling():
    import gymnasium as gym

    venv = VecNormalize(DummyVecEnv([lambda: gym.make("Pendulum-v1")]), norm_obs=True, norm_reward=False)
    venv.obs_rms.mean = np.array([1.0, 2.0, 3.0])
    venv.obs_rms.var = np.array([4.0, 4.0, 4.0])
    buffer = SequenceReplayBuffer(100, venv.observation_space, venv.action_space, "cpu", horizon=1)
    obs = np.array([[1.0, 2.0, 3.0]], dtype=np.float32)
    buffer.add(obs, obs + 2.0, np.zeros((1, 1)), np.zeros(1), np.ones(1), [{}])
    batch = buffer.sample(1, env=venv)
    np.testing.assert_allclose(batch.observations[:, 0].numpy(), [[0.0, 0.0, 0.0], [1.0, 1.0, 1.0]], atol=1e-4)
