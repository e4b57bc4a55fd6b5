"""
The DeepMind Control Suite as the paper sets it up: :func:`make_dmc` makes every Control Suite env of
sb3-boom (examples, benchmarks, studies, tests), from states or from pixels.

- States: the Dict observation flattened to one float32 vector, each action repeated twice (rewards
  summed). The ``dm_control/*`` entries of hyperparams/boom.yml build the same env with their
  ``env_wrapper`` list (same observations and rewards; rl_zoo3's ``FrameSkip`` repeats as gymnasium's
  ``RepeatAction`` does).
- Pixels: :func:`sb3_boom.dmc.make_dmc_pixels`, TD-MPC2's 64x64 frames (stack them by 3 with SB3's
  ``VecFrameStack``).

Importing this module loads neither dm_control nor an OpenGL backend: the state envs work wherever
dm_control does, with ``MUJOCO_GL`` as the user left it (:mod:`sb3_boom.dmc`, for pixels, sets it).

Example::

    from sb3_boom import BOOM
    from sb3_boom.envs import make_dmc

    model = BOOM("MlpPolicy", make_dmc("dm_control/cartpole-swingup-v0")).learn(10_000)
"""

import re
from typing import Any

import gymnasium as gym
import numpy as np

DMC_PREFIX = "dm_control/"
# The paper's protocol on the Control Suite: 1000 env steps per episode, 500 agent steps.
ACTION_REPEAT = 2
# TD-MPC2's pixel setting.
IMAGE_SIZE = 64


def split_task(env_id: str) -> tuple[str, str]:
    """
    The Control Suite domain and task of an id: ``dm_control/walker-walk-v0``, ``dmc_pixels/walker-walk-v0``
    and ``walker-walk`` give ``("walker", "walk")`` (domain and task names use underscores, never hyphens).

    :param env_id: the id
    :return: ``(domain, task)``
    """
    name = re.sub(r"-v\d+$", "", env_id.rpartition("/")[2])
    domain, separator, task = name.partition("-")
    if not (separator and domain and task):
        raise ValueError(f"{env_id!r} names no Control Suite task: expected dm_control/<domain>-<task>-v0 or <domain>-<task>")
    return domain, task


def make_dmc(
    env_id: str,
    action_repeat: int = ACTION_REPEAT,
    pixels: bool = False,
    size: int = IMAGE_SIZE,
    camera: int | None = None,
    **kwargs: Any,
) -> gym.Env:
    """
    A Control Suite task as the paper sets it up, through shimmy's ``dm_control/*`` envs.

    From states: the Dict observation flattened to one vector (keys in sorted order), float64 -> float32,
    each action repeated ``action_repeat`` times (rewards summed; the episode's end stops the repeat).
    From pixels: :func:`sb3_boom.dmc.make_dmc_pixels` (frames not stacked: wrap the VecEnv in
    ``VecFrameStack(venv, 3)``).

    :param env_id: ``dm_control/<domain>-<task>-v0``, ``dmc_pixels/<domain>-<task>-v0`` or ``<domain>-<task>``
    :param action_repeat: times each action is repeated, rewards summed (2: 500 agent steps per episode)
    :param pixels: observe ``(size, size, 3)`` uint8 frames instead of the state vector
    :param size: side of the square frames (pixels only)
    :param camera: camera id (pixels only; default: TD-MPC2's, see :func:`sb3_boom.dmc.camera_id`)
    :param kwargs: more arguments of ``gymnasium.make`` for the shimmy env (e.g. ``task_kwargs``)
    :return: the env, with ``Box(-1, 1)`` actions
    """
    domain, task = split_task(env_id)
    if pixels:
        from sb3_boom.dmc import make_dmc_pixels  # sets MUJOCO_GL before dm_control is imported

        return make_dmc_pixels(domain, task, size=size, action_repeat=action_repeat, camera=camera, **kwargs)
    import shimmy

    gym.register_envs(shimmy)
    env = gym.make(f"{DMC_PREFIX}{domain}-{task}-v0", **kwargs)
    if isinstance(env.observation_space, gym.spaces.Dict):
        env = gym.wrappers.FlattenObservation(env)
    env = gym.wrappers.DtypeObservation(env, np.float32)  # dm_control returns float64
    if action_repeat > 1:
        env = gym.wrappers.RepeatAction(env, action_repeat)
    return env
