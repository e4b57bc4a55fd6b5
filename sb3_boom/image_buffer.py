"""
Sequence replay buffer for image observations: each frame stored once, as uint8.

With frame stacking (SB3's ``VecFrameStack``), consecutive observations share all but one frame.
:class:`ImageSequenceReplayBuffer` keeps only the newest frame of each image per slot and rebuilds
the stacks when it samples, from the ``frame_stack - 1`` slots before. So that every stack can be
rebuilt from slots of its own episode, each episode (or fragment) starts with ``frame_stack - 1``
extra slots that hold the older frames of its first observation (``VecFrameStack``'s zero padding,
or whatever the stack held) and no transition.
"""

from typing import Any

import numpy as np
from gymnasium import spaces
from stable_baselines3.common.vec_env import VecEnv, VecFrameStack, unwrap_vec_wrapper

from sb3_boom.buffers import SequenceReplayBuffer
from sb3_boom.encoders import image_keys


class ImageSequenceReplayBuffer(SequenceReplayBuffer):
    """
    :class:`SequenceReplayBuffer` that stores the images of each observation as uint8, one frame
    per slot, and rebuilds frame stacks at sampling; vector entries of a Dict are stored as float32.

    Memory per slot: the newest frame of each image (``C * H * W`` bytes, ``C`` the channels of one
    frame) plus the vectors, actions, planner outputs and bookkeeping, see :attr:`bytes_per_slot`.
    Each episode costs ``frame_stack`` slots more than its transitions (the final observation and
    the ``frame_stack - 1`` older frames of the first one).

    Sampled observations are flat, as the policy's: images flattened channel-first with their
    frames stacked oldest first, uint8 when the observation is an image ``Box``, float32 when a Dict
    mixes images and vectors.

    :param frame_stack: frames stacked on the channel axis of every image (oldest first, as
        ``VecFrameStack`` stacks them); 1: no stacking. ``BOOM`` sets it from a ``VecFrameStack``
        around its env. A stack whose older frames are not the previous observation's newer ones
        raises an error (not a frame stack, or the wrong ``frame_stack``).
    :param kwargs: the arguments of :class:`SequenceReplayBuffer`
    """

    def __init__(
        self,
        buffer_size: int,
        observation_space: spaces.Space,
        action_space: spaces.Space,
        device: Any = "auto",
        n_envs: int = 1,
        optimize_memory_usage: bool = False,
        handle_timeout_termination: bool = True,
        horizon: int = 3,
        sample_running_episodes: bool = True,
        frame_stack: int = 1,
    ):
        self.frame_stack = int(frame_stack)
        if self.frame_stack < 1:
            raise ValueError(f"frame_stack must be >= 1, got {frame_stack}")
        keys = image_keys(observation_space)
        if not keys:
            raise TypeError(
                f"ImageSequenceReplayBuffer needs uint8 image observations (or a Dict with some), got {observation_space}; "
                "use SequenceReplayBuffer for state observations."
            )
        entries = (
            observation_space.spaces.items()
            if isinstance(observation_space, spaces.Dict)
            else [("observation", observation_space)]
        )
        # Columns of every entry in the flat observation; images keep channel-first frame sizes.
        self._image_columns: dict[str, tuple[int, int]] = {}
        self._frame_sizes: dict[str, int] = {}
        vector_columns: list[np.ndarray] = []
        offset = 0
        for key, space in entries:
            size = int(np.prod(space.shape))
            if key in keys:
                channels = space.shape[0]
                if channels % self.frame_stack != 0:
                    raise ValueError(
                        f"Image '{key}' has {channels} channels, not a multiple of frame_stack={self.frame_stack}: "
                        "frames must be stacked on the channel axis (channel-first after VecTransposeImage)."
                    )
                self._image_columns[key] = (offset, offset + size)
                self._frame_sizes[key] = size // self.frame_stack
            else:
                vector_columns.append(np.arange(offset, offset + size))
            offset += size
        self._vector_columns = np.concatenate(vector_columns) if vector_columns else np.zeros(0, dtype=np.int64)
        self._images_only = len(vector_columns) == 0
        super().__init__(
            buffer_size,
            observation_space,
            action_space,
            device=device,
            n_envs=n_envs,
            optimize_memory_usage=optimize_memory_usage,
            handle_timeout_termination=handle_timeout_termination,
            horizon=horizon,
            sample_running_episodes=sample_running_episodes,
        )
        if self.buffer_size < horizon + 1 + self.frame_stack:
            raise ValueError(
                f"buffer_size per env ({self.buffer_size}) must be at least horizon + 1 + frame_stack "
                f"({horizon + 1 + self.frame_stack})"
            )
        slots = (self.buffer_size, self.n_envs)
        self.frames = {key: np.zeros((*slots, size), dtype=np.uint8) for key, size in self._frame_sizes.items()}

    @property
    def bytes_per_slot(self) -> int:
        """Memory of one slot (one transition of one env) in bytes: the newest frames plus the rest."""
        return super().bytes_per_slot + sum(self._frame_sizes.values())

    def _stored_observation_dim(self) -> int:
        return len(self._vector_columns)

    # --- frames ---------------------------------------------------------------------------------

    def _newest_frames(self, key: str, flat: np.ndarray) -> np.ndarray:
        end = self._image_columns[key][1]
        return flat[:, end - self._frame_sizes[key] : end]

    def _stacks_at(self, key: str, slots: np.ndarray, envs: np.ndarray) -> np.ndarray:
        """The stacked image ``[..., frame_stack * frame_size]`` (uint8) ending at each (slot, env)."""
        back = np.arange(self.frame_stack - 1, -1, -1)  # oldest first
        stack_slots = (slots[..., None] - back) % self.buffer_size
        frames = self.frames[key][stack_slots, envs[..., None]]  # [..., frame_stack, frame_size]
        return frames.reshape(*frames.shape[:-2], -1)

    def _check_frame_stack(self, flat: np.ndarray, next_flat: np.ndarray) -> None:
        """The older frames of each next observation must be the newer frames of the observation."""
        if self.frame_stack == 1:
            return
        for key, (start, end) in self._image_columns.items():
            size = self._frame_sizes[key]
            if not np.array_equal(next_flat[:, start : end - size], flat[:, start + size : end]):
                raise ValueError(
                    f"Image '{key}' does not look like a stack of {self.frame_stack} frames (oldest first on the channel "
                    "axis): the older frames of the next observation differ from the newer frames of the observation. "
                    "Stack frames with SB3's VecFrameStack (BOOM then sets frame_stack itself), or pass the right "
                    "replay_buffer_kwargs=dict(frame_stack=...), 1 if the channels are not stacked frames."
                )

    # --- hooks of SequenceReplayBuffer ----------------------------------------------------------

    def add(  # type: ignore[override]
        self,
        obs: np.ndarray | dict[str, np.ndarray],
        next_obs: np.ndarray | dict[str, np.ndarray],
        *args: Any,
        **kwargs: Any,
    ) -> None:
        """Store one step of every environment, as :meth:`SequenceReplayBuffer.add`."""
        self._check_frame_stack(self.flatten_observation(obs), self.flatten_observation(next_obs))
        super().add(obs, next_obs, *args, **kwargs)

    def _stored_observation_equals(self, slots: np.ndarray, envs: np.ndarray, flat: np.ndarray) -> np.ndarray:
        equal = np.all(self.observations[slots, envs] == flat[:, self._vector_columns], axis=1)
        for key, (start, end) in self._image_columns.items():
            equal &= np.all(self._stacks_at(key, slots, envs) == flat[:, start:end], axis=1)
        return equal

    def _store_observations(self, slots: np.ndarray, envs: np.ndarray, flat: np.ndarray) -> None:
        self.observations[slots, envs] = flat[:, self._vector_columns]
        for key in self._image_columns:
            self.frames[key][slots, envs] = self._newest_frames(key, flat)

    def _open_fragments(self, pos: np.ndarray, envs: np.ndarray, flat: np.ndarray) -> np.ndarray:
        # A new episode or fragment: its first stack's older frames go into the frame_stack - 1 slots
        # ahead of it, which hold no transition (episode step -1) and are never a window's start.
        starting = self.current_episode_step == 0
        if self.frame_stack == 1 or not starting.any():
            return pos
        for back in range(self.frame_stack - 1):
            slot = (pos + back) % self.buffer_size
            for key, (start, _) in self._image_columns.items():
                size = self._frame_sizes[key]
                older = flat[:, start + back * size : start + (back + 1) * size]
                self.frames[key][slot[starting], envs[starting]] = older[starting]
            self.episode_steps[slot[starting], envs[starting]] = -1
        shift = np.where(starting, self.frame_stack - 1, 0)
        self.slots_advanced += shift
        return (pos + shift) % self.buffer_size

    def _observations_at(self, slots: np.ndarray, envs: np.ndarray) -> np.ndarray:
        slots, envs = np.broadcast_arrays(slots, envs)
        if self._images_only:
            # One image Box: uint8 all the way to the policy, which scales it.
            key = next(iter(self._image_columns))
            return self._stacks_at(key, slots, envs)
        flat = np.empty((*slots.shape, self.obs_dim), dtype=np.float32)
        flat[..., self._vector_columns] = self.observations[slots, envs]
        for key, (start, end) in self._image_columns.items():
            flat[..., start:end] = self._stacks_at(key, slots, envs)
        return flat

    def valid_starts(self, slots: np.ndarray, envs: np.ndarray) -> np.ndarray:
        """As :meth:`SequenceReplayBuffer.valid_starts`, and the start's older frames not yet overwritten."""
        valid = super().valid_starts(slots, envs)
        if self.frame_stack > 1:
            age = (self.env_pos[envs] - slots) % self.buffer_size
            valid &= age <= self.buffer_size - self.frame_stack
        return valid


def frame_stack_of(env: VecEnv | None) -> int:
    """Frames a ``VecFrameStack`` in the env's wrapper chain stacks (1 if there is none)."""
    if env is None:
        return 1
    wrapper = unwrap_vec_wrapper(env, VecFrameStack)
    if wrapper is None:
        return 1
    return int(wrapper.stacked_obs.n_stack)
