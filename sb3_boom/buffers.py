"""
Sequence replay buffer of BOOM: stores every observation once, the executed action, the planner
action ``mu_beta`` and the planner std, and samples windows of ``horizon`` consecutive
transitions that never cross an episode end.
"""

from typing import Any, NamedTuple

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.buffers import BaseBuffer, ReplayBuffer
from stable_baselines3.common.vec_env import VecNormalize

from sb3_boom.planner import RANDOM_ACTION_STD
from sb3_boom.spaces import flat_observation_dim


class SequenceReplayBufferSamples(NamedTuple):
    """A batch of ``B`` windows, time first."""

    observations: th.Tensor  # [H + 1, B, obs_dim]
    actions: th.Tensor  # [H, B, A], executed actions in [-1, 1]
    planner_actions: th.Tensor  # [H, B, A], mu_beta
    planner_stds: th.Tensor  # [H, B, A]
    rewards: th.Tensor  # [H, B]
    terminated: th.Tensor  # [H, B], 1.0 for a true termination (never for a time-limit truncation)


class SequenceReplayBuffer(ReplayBuffer):
    """
    Replay buffer of H-step sub-sequences for world-model learning.

    Each environment writes to its own ring of ``buffer_size // n_envs`` slots. A slot holds an
    observation and, unless it only closes an episode, the transition taken from it. The next
    observation of a transition is the observation of the following slot; when an episode ends,
    the following slot keeps the true final observation (SB3's ``terminal_observation``) and the
    next episode starts one slot later. So every observation is stored once, at the cost of one
    slot per episode.

    Windows are sampled uniformly over all valid start positions: every stored transition is
    equally likely (the authors' sampler picks an episode first, which over-samples short
    episodes), and by default an episode can be used while it is still running (the authors'
    buffer takes an episode only when it ends). Transitions must be added in
    time order per environment; an observation that does not continue the stored one starts a new
    fragment, so windows never join two unrelated pieces of experience.

    :param buffer_size: max number of slots (all environments together)
    :param observation_space: Box or Dict of Box observations (stored flattened, as float32)
    :param action_space: Box actions (stored scaled to [-1, 1])
    :param device: device of the sampled tensors
    :param n_envs: number of parallel environments
    :param optimize_memory_usage: accepted for SB3 compatibility; observations are always stored once
    :param handle_timeout_termination: treat ``TimeLimit.truncated`` as a truncation, not a termination
    :param horizon: transitions per sampled window (``H``)
    :param sample_running_episodes: also sample windows from the episode each env is running; when
        False, only from episodes that have ended (or were cut), as the authors' buffer does
    """

    def __init__(
        self,
        buffer_size: int,
        observation_space: spaces.Space,
        action_space: spaces.Space,
        device: th.device | str = "auto",
        n_envs: int = 1,
        optimize_memory_usage: bool = False,
        handle_timeout_termination: bool = True,
        horizon: int = 3,
        sample_running_episodes: bool = True,
    ):
        # ReplayBuffer.__init__ would allocate a second copy of the observations: skip it.
        BaseBuffer.__init__(self, buffer_size, observation_space, action_space, device, n_envs=n_envs)
        self.buffer_size = max(buffer_size // n_envs, 1)
        if horizon < 1:
            raise ValueError(f"horizon must be >= 1, got {horizon}")
        if self.buffer_size < horizon + 2:
            raise ValueError(f"buffer_size per env ({self.buffer_size}) must be at least horizon + 2 ({horizon + 2})")
        self.horizon = horizon
        self.sample_running_episodes = sample_running_episodes
        self.optimize_memory_usage = optimize_memory_usage
        self.handle_timeout_termination = handle_timeout_termination
        self.obs_dim = flat_observation_dim(observation_space)
        slots = (self.buffer_size, n_envs)
        self.observations = np.zeros((*slots, self._stored_observation_dim()), dtype=np.float32)
        self.actions = np.zeros((*slots, self.action_dim), dtype=np.float32)
        self.planner_actions = np.zeros((*slots, self.action_dim), dtype=np.float32)
        self.planner_stds = np.zeros((*slots, self.action_dim), dtype=np.float32)
        self.rewards = np.zeros(slots, dtype=np.float32)
        self.terminated = np.zeros(slots, dtype=bool)
        # Index of the slot's transition within its episode; -1 where the slot holds no transition.
        self.episode_steps = np.full(slots, -1, dtype=np.int32)
        self.env_pos = np.zeros(n_envs, dtype=np.int64)  # next slot to write, per env
        self.slots_advanced = np.zeros(n_envs, dtype=np.int64)  # slots written behind env_pos, ever
        self.current_episode_step = np.zeros(n_envs, dtype=np.int64)
        # Whether a window has ever been stored: set in add(), so that has_window() costs nothing per step.
        self._window_stored = False
        self._staged_planner_output: tuple[np.ndarray, np.ndarray] | None = None

    def _stored_observation_dim(self) -> int:
        """Columns of ``observations``: the whole flat observation (a subclass may store parts elsewhere)."""
        return self.obs_dim

    def _stored_observation_equals(self, slots: np.ndarray, envs: np.ndarray, flat: np.ndarray) -> np.ndarray:
        """Whether the observation stored at each (slot, env) equals the flat observation ``flat[i]``."""
        return np.all(self.observations[slots, envs] == flat, axis=1)

    def _store_observations(self, slots: np.ndarray, envs: np.ndarray, flat: np.ndarray) -> None:
        """Store the flat observations ``flat[i]`` at each (slot, env)."""
        self.observations[slots, envs] = flat

    def _open_fragments(self, pos: np.ndarray, envs: np.ndarray, flat: np.ndarray) -> np.ndarray:
        """
        Hook called before each env's observation is stored at ``pos``; a subclass may write slots
        ahead of a new episode (fragment) there and return where its first observation goes.
        """
        return pos

    def _observations_at(self, slots: np.ndarray, envs: np.ndarray) -> np.ndarray:
        """Flat observations ``[..., obs_dim]`` at (slot, env) index arrays (broadcast together)."""
        return self.observations[slots, envs]

    @property
    def bytes_per_slot(self) -> int:
        """Memory of one slot (one transition of one env) in bytes."""
        arrays = (
            self.observations,
            self.actions,
            self.planner_actions,
            self.planner_stds,
            self.rewards,
            self.terminated,
            self.episode_steps,
        )
        return sum(a.itemsize * int(np.prod(a.shape[2:])) for a in arrays)

    def size(self) -> int:
        """Number of slots in use over all environments."""
        return int(np.minimum(self.slots_advanced, self.buffer_size).sum())

    def reset(self) -> None:
        super().reset()
        self.episode_steps.fill(-1)
        self.env_pos[:] = 0
        self.slots_advanced[:] = 0
        self.current_episode_step[:] = 0
        self._window_stored = False

    def __setstate__(self, state: dict[str, Any]) -> None:
        # Buffers pickled before the option existed sampled running episodes.
        self.__dict__.update({"sample_running_episodes": True, **state})
        if "_window_stored" not in state:  # pickled before the flag existed: look once
            self._window_stored = self._any_valid_start()

    def has_window(self) -> bool:
        """Whether at least one window of ``horizon`` transitions of one episode can be sampled."""
        return self._window_stored

    def _any_valid_start(self) -> bool:
        slots, envs = np.meshgrid(np.arange(self.buffer_size), np.arange(self.n_envs), indexing="ij")
        return bool(self.valid_starts(slots.ravel(), envs.ravel()).any())

    def stage_planner_output(self, planner_action: np.ndarray, planner_std: np.ndarray) -> None:
        """Planner action and std that the next :meth:`add` stores (used by SB3's collection loop)."""
        self._staged_planner_output = (planner_action, planner_std)

    def flatten_observation(self, observation: np.ndarray | dict[str, np.ndarray]) -> np.ndarray:
        """Batch of (Dict) observations to ``[n_envs, obs_dim]`` float32, in the space's key order."""
        if isinstance(self.observation_space, spaces.Dict):
            assert isinstance(observation, dict)
            parts = [np.asarray(observation[key]).reshape(self.n_envs, -1) for key in self.observation_space.spaces]
            return np.concatenate(parts, axis=1).astype(np.float32, copy=False)
        return np.asarray(observation).reshape(self.n_envs, self.obs_dim).astype(np.float32, copy=False)

    def add(  # type: ignore[override]
        self,
        obs: np.ndarray | dict[str, np.ndarray],
        next_obs: np.ndarray | dict[str, np.ndarray],
        action: np.ndarray,
        reward: np.ndarray,
        done: np.ndarray,
        infos: list[dict[str, Any]],
        planner_action: np.ndarray | None = None,
        planner_std: np.ndarray | None = None,
    ) -> None:
        """
        Store one step of every environment.

        :param planner_action: ``mu_beta`` per env (default: the staged output, else ``action``)
        :param planner_std: the planner's std per env (default: the staged output, else ``e^2``,
            the value recorded for random actions)
        """
        n_envs, capacity = self.n_envs, self.buffer_size
        obs_flat, next_flat = self.flatten_observation(obs), self.flatten_observation(next_obs)
        action = np.asarray(action, dtype=np.float32).reshape(n_envs, self.action_dim)
        reward = np.asarray(reward, dtype=np.float32).reshape(n_envs)
        done = np.asarray(done, dtype=bool).reshape(n_envs)
        if planner_action is None and self._staged_planner_output is not None:
            planner_action, planner_std = self._staged_planner_output
        self._staged_planner_output = None
        planner_action = action if planner_action is None else planner_action
        planner_std = np.full_like(action, RANDOM_ACTION_STD) if planner_std is None else planner_std
        _check_finite("observation", obs_flat)
        _check_finite("next observation", next_flat)
        _check_finite("reward", reward)
        if self.handle_timeout_termination:
            truncated = np.array([info.get("TimeLimit.truncated", False) for info in infos], dtype=bool)
        else:
            truncated = np.zeros(n_envs, dtype=bool)

        envs = np.arange(n_envs)
        pos = self.env_pos.copy()
        # An episode in progress must continue from the observation stored at `pos`. If it does
        # not (the env was reset outside the loop, e.g. by a new learn() call), close the old
        # fragment there: that slot keeps its observation and holds no transition.
        in_episode = self.current_episode_step > 0
        cut = in_episode & ~self._stored_observation_equals(pos, envs, obs_flat)
        pos = (pos + cut) % capacity
        self.slots_advanced += cut
        self.current_episode_step[cut] = 0

        pos = self._open_fragments(pos, envs, obs_flat)
        self._store_observations(pos, envs, obs_flat)
        self.actions[pos, envs] = action
        self.planner_actions[pos, envs] = np.asarray(planner_action, dtype=np.float32).reshape(n_envs, self.action_dim)
        self.planner_stds[pos, envs] = np.asarray(planner_std, dtype=np.float32).reshape(n_envs, self.action_dim)
        self.rewards[pos, envs] = reward
        self.terminated[pos, envs] = done & ~truncated
        self.episode_steps[pos, envs] = self.current_episode_step
        next_slot = (pos + 1) % capacity
        self._store_observations(next_slot, envs, next_flat)
        self.episode_steps[next_slot, envs] = -1
        # After an episode end, the next slot keeps the final observation: skip it.
        advance = np.where(done, 2, 1)
        self.env_pos = (pos + advance) % capacity
        self.slots_advanced += advance
        episode_transitions = self.current_episode_step + 1
        if not self._window_stored:
            # A running episode can be sampled once it holds `horizon` transitions; otherwise once it ended.
            ready = (episode_transitions >= self.horizon) & (done | self.sample_running_episodes)
            self._window_stored = bool(ready.any())
        self.current_episode_step = np.where(done, 0, episode_transitions)
        self.pos = int(self.env_pos[0])
        self.full = bool(np.all(self.slots_advanced >= capacity))

    def valid_starts(self, slots: np.ndarray, envs: np.ndarray) -> np.ndarray:
        """Whether a window of ``horizon`` transitions (and its H + 1 observations) starts at each (slot, env)."""
        horizon, capacity = self.horizon, self.buffer_size
        age = (self.env_pos[envs] - slots) % capacity  # slots between the start and the write position
        first = self.episode_steps[slots, envs]
        last = self.episode_steps[(slots + horizon - 1) % capacity, envs]
        # Episode steps count up by one inside an episode and a closing slot holds -1, so equal
        # spacing of the two ends means one unbroken piece of one episode.
        valid = (age >= horizon) & (first >= 0) & (last - first == horizon - 1)
        if not self.sample_running_episodes:
            # The running episode fills the last current_episode_step slots behind env_pos.
            valid &= age > self.current_episode_step[envs]
        return valid

    def sample(self, batch_size: int, env: VecNormalize | None = None) -> SequenceReplayBufferSamples:  # type: ignore[override]
        """
        Sample ``batch_size`` windows uniformly over all valid start positions.

        :param env: the VecNormalize wrapper whose statistics normalise observations and rewards
        """
        slots, envs = self._sample_starts(batch_size)
        horizon = self.horizon
        window = (slots[None, :] + np.arange(horizon + 1)[:, None]) % self.buffer_size  # [H + 1, B]
        obs = self._observations_at(window, envs[None, :])
        step_slots, step_envs = window[:-1], envs[None, :]
        rewards = self.rewards[step_slots, step_envs]
        if env is not None:
            obs = self._normalize_flat_obs(obs, env)
            rewards = self._normalize_reward(rewards, env).astype(np.float32)
        data = (
            obs,
            self.actions[step_slots, step_envs],
            self.planner_actions[step_slots, step_envs],
            self.planner_stds[step_slots, step_envs],
            rewards,
            self.terminated[step_slots, step_envs].astype(np.float32),
        )
        return SequenceReplayBufferSamples(*(self.to_torch(array) for array in data))

    def _sample_starts(self, batch_size: int) -> tuple[np.ndarray, np.ndarray]:
        filled = np.minimum(self.slots_advanced, self.buffer_size)
        total = int(filled.sum())
        if total == 0:
            raise ValueError("The replay buffer is empty: collect experience before sampling.")
        cumulative = np.cumsum(filled)
        chosen_slots, chosen_envs, missing = [], [], batch_size
        # Rejection sampling: invalid starts (near an episode end or the write position) are rare.
        for _ in range(32):
            flat = np.random.randint(0, total, size=2 * missing + 8)
            envs = np.searchsorted(cumulative, flat, side="right")
            slots = flat - (cumulative[envs] - filled[envs])
            keep = self.valid_starts(slots, envs)
            chosen_slots.append(slots[keep][:missing])
            chosen_envs.append(envs[keep][:missing])
            missing -= len(chosen_slots[-1])
            if missing == 0:
                return np.concatenate(chosen_slots), np.concatenate(chosen_envs)
        # Very few valid starts (episodes barely longer than the horizon): enumerate them all.
        all_slots, all_envs = np.meshgrid(np.arange(self.buffer_size), np.arange(self.n_envs), indexing="ij")
        all_slots, all_envs = all_slots.ravel(), all_envs.ravel()
        keep = self.valid_starts(all_slots, all_envs)
        if not keep.any():
            raise ValueError(
                f"No window of {self.horizon} consecutive transitions within one episode is stored yet "
                f"({total} slots in use). Episodes must last more than horizon={self.horizon} steps"
                + ("." if self.sample_running_episodes else ", and with sample_running_episodes=False they must have ended.")
            )
        index = np.random.randint(0, int(keep.sum()), size=missing)
        chosen_slots.append(all_slots[keep][index])
        chosen_envs.append(all_envs[keep][index])
        return np.concatenate(chosen_slots), np.concatenate(chosen_envs)

    def _normalize_flat_obs(self, obs: np.ndarray, env: VecNormalize) -> np.ndarray:
        """Apply VecNormalize to flat observations (unflattening Dict or multi-dimensional Box ones)."""
        leading = obs.shape[:-1]
        if isinstance(self.observation_space, spaces.Dict):
            parts, offset = {}, 0
            for key, space in self.observation_space.spaces.items():
                size = int(np.prod(space.shape))
                parts[key] = obs[..., offset : offset + size].reshape(*leading, *space.shape)
                offset += size
            normalized = self._normalize_obs(parts, env)
            assert isinstance(normalized, dict)
            flat = [np.asarray(normalized[key]).reshape(*leading, -1) for key in self.observation_space.spaces]
            return np.concatenate(flat, axis=-1).astype(np.float32)
        normalized = self._normalize_obs(obs.reshape(*leading, *self.obs_shape), env)  # type: ignore[misc]
        return np.asarray(normalized, dtype=np.float32).reshape(*leading, -1)


def _check_finite(name: str, values: np.ndarray) -> None:
    finite = np.isfinite(values)
    if not finite.all():
        bad_envs = np.unique(np.nonzero(~finite)[0]).tolist()
        raise ValueError(
            f"The environment returned a non-finite {name} (NaN or inf) in env index {bad_envs}; "
            "BOOM cannot learn from it. Check the environment (SB3's VecCheckNan wrapper helps find the step)."
        )
