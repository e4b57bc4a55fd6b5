"""
DeepMind Control Suite from pixels, as TD-MPC2 learns it: 64x64 RGB frames rendered off-screen
(camera 0; camera 2 for quadruped), each action repeated twice, frames stacked by 3 with SB3's
``VecFrameStack``.

Importing this module registers ``dmc_pixels/<domain>-<task>-v0`` for every Control Suite task that
shimmy registers as ``dm_control/<domain>-<task>-v0`` (``python -m rl_zoo3.train --algo boom --env
dmc_pixels/finger-spin-v0 --gym-packages sb3_boom.dmc``). Rendering needs an OpenGL backend without a
display: ``MUJOCO_GL=egl`` (Mesa's EGL renders on the CPU; set here unless already set) or ``osmesa``.

Example::

    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.vec_env import VecFrameStack
    from sb3_boom import BOOM
    from sb3_boom.envs import make_dmc
    from sb3_boom.presets import PRESETS

    env = VecFrameStack(make_vec_env(make_dmc, env_kwargs=dict(env_id="finger-spin", pixels=True)), 3)
    model = BOOM("CnnPolicy", env, **PRESETS["cpu_pixels"]).learn(50_000)
"""

import os
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from sb3_boom.envs import ACTION_REPEAT, IMAGE_SIZE

NAMESPACE = "dmc_pixels"
# TD-MPC2's pixel setting (IMAGE_SIZE and ACTION_REPEAT: sb3_boom.envs).
FRAME_STACK = 3
# Camera per domain (TD-MPC2: 2 for quadruped, 0 elsewhere).
CAMERA_IDS: dict[str, int] = {"quadruped": 2}


def camera_id(domain: str) -> int:
    """The camera TD-MPC2 renders ``domain`` from."""
    return CAMERA_IDS.get(domain, 0)


class PixelObservation(gym.Wrapper):
    """
    Replace the observation with a rendered RGB frame, ``(size, size, 3)`` uint8 channel-last (SB3's
    ``VecTransposeImage`` moves the channels first). Rendered once per ``step`` of this wrapper, so
    put it outside the action repeat: one frame per agent step.

    :param env: an env created with ``render_mode="rgb_array"`` that renders ``size x size`` frames
    :param size: side of the frames
    """

    def __init__(self, env: gym.Env, size: int = IMAGE_SIZE):
        super().__init__(env)
        self.observation_space = spaces.Box(0, 255, (size, size, 3), np.uint8)

    def _frame(self) -> np.ndarray:
        frame = self.env.render()
        if frame is None or frame.shape != self.observation_space.shape:
            raise RuntimeError(
                f"The env rendered {None if frame is None else frame.shape}, expected {self.observation_space.shape}: "
                "create it with render_mode='rgb_array' and render_kwargs width/height equal to the frame size."
            )
        return np.ascontiguousarray(frame, dtype=np.uint8)

    def reset(self, **kwargs: Any) -> tuple[np.ndarray, dict[str, Any]]:
        _, info = self.env.reset(**kwargs)
        return self._frame(), info

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        _, reward, terminated, truncated, info = self.env.step(action)
        return self._frame(), float(reward), terminated, truncated, info


def _prepare_rendering() -> None:
    # Before dm_control is first imported: it picks its OpenGL backend then. EGL needs no display.
    os.environ.setdefault("MUJOCO_GL", "egl")


def make_dmc_pixels(
    domain: str,
    task: str,
    size: int = IMAGE_SIZE,
    action_repeat: int = ACTION_REPEAT,
    camera: int | None = None,
    **kwargs: Any,
) -> gym.Env:
    """
    A Control Suite task from pixels, as TD-MPC2 sets it up (:func:`sb3_boom.envs.make_dmc` with
    ``pixels=True`` calls it; frames not stacked: wrap the VecEnv in
    ``VecFrameStack(venv, 3)``, or ``frame_stack: 3`` in an RL Zoo entry).

    :param domain: e.g. "finger"
    :param task: e.g. "spin"
    :param size: side of the square frames (64)
    :param action_repeat: times each action is repeated, rewards summed (2: 500 agent steps per episode)
    :param camera: camera id (default: TD-MPC2's, see :func:`camera_id`)
    :param kwargs: more arguments of ``gymnasium.make`` for the shimmy env (e.g. ``task_kwargs``)
    :return: the env: ``(size, size, 3)`` uint8 observations, ``Box(-1, 1)`` actions
    """
    _prepare_rendering()
    import shimmy  # noqa: F401  # registers dm_control/*

    render_kwargs = dict(width=size, height=size, camera_id=camera_id(domain) if camera is None else camera)
    env = gym.make(f"dm_control/{domain}-{task}-v0", render_mode="rgb_array", render_kwargs=render_kwargs, **kwargs)
    if action_repeat > 1:
        env = gym.wrappers.RepeatAction(env, action_repeat)
    return PixelObservation(env, size)


def register_dmc_pixels() -> list[str]:
    """Register ``dmc_pixels/<domain>-<task>-v0`` for every Control Suite task; returns the ids."""
    from dm_control import suite

    ids = []
    for domain, task in suite.ALL_TASKS:
        env_id = f"{NAMESPACE}/{domain}-{task}-v0"
        if env_id not in gym.registry:
            gym.register(env_id, entry_point=make_dmc_pixels, kwargs=dict(domain=domain, task=task))
        ids.append(env_id)
    return ids


_prepare_rendering()
DMC_PIXEL_IDS = register_dmc_pixels()
