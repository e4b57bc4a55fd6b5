"""
Every "auto" default of BOOM that derives from the environment, in one place: the discount and
warm-up length from the episode length, and the action-size rules of the BOOM code (planner
iterations, lambda_align, SimNorm).
"""

import warnings

import gymnasium as gym
import numpy as np
from stable_baselines3.common.vec_env import DummyVecEnv, VecEnv, VecEnvWrapper

DEFAULT_DISCOUNT = 0.99
MIN_SEED_STEPS = 1000


def discount_from_episode_length(episode_length: int) -> float:
    """TD-MPC2's heuristic: ``frac = L / 5; gamma = clip((frac - 1) / frac, 0.95, 0.995)``."""
    frac = episode_length / 5
    return min(max((frac - 1) / frac, 0.95), 0.995)


def seed_steps_from_episode_length(episode_length: int | None) -> int:
    """Random warm-up steps: ``max(1000, 5 * L)`` (1000 when ``L`` is unknown)."""
    return max(MIN_SEED_STEPS, 5 * episode_length) if episode_length else MIN_SEED_STEPS


def planner_iterations(action_dim: int, base: int = 6) -> int:
    """MPPI iterations: ``base``, plus 2 for action spaces of 20 dimensions or more."""
    return base + 2 * int(action_dim >= 20)


def lambda_align_for(action_dim: int) -> float:
    """
    Newest BOOM code's rule: ``A / 1000`` when ``24 <= A <= 48`` (the dog tasks), else ``A / 50``.
    (The paper states ``A / 1000`` on DMC and ``A / 50`` on HumanoidBench.)
    """
    return action_dim / 1000 if 24 <= action_dim <= 48 else action_dim / 50


def simnorm_enabled(simnorm: bool | str, action_dim: int) -> bool:
    """SimNorm on the latent; ``"auto"``: off when ``24 <= A <= 48``, as the BOOM code."""
    if simnorm == "auto":
        return not 24 <= action_dim <= 48
    if isinstance(simnorm, bool):
        return simnorm
    raise ValueError(f"simnorm must be True, False or 'auto', got {simnorm!r}")


def _step_limit_of(env: gym.Env) -> int | None:
    """Episode length in agent steps from the wrapper chain (time limits over action repeats)."""
    action_repeat = 1
    current: gym.Env | None = env
    while current is not None:
        if isinstance(current, gym.wrappers.RepeatAction):
            skip = current.num_repeats
        else:
            skip = getattr(current, "_skip", None)  # rl_zoo3 FrameSkip, SB3 MaxAndSkipEnv
        if isinstance(skip, (int, np.integer)) and skip > 1:
            action_repeat *= int(skip)
        limit = getattr(current, "_max_episode_steps", None)  # gymnasium TimeLimit
        if limit is None:
            inner = getattr(current, "_env", None)  # shimmy's dm_control wrapper
            step_limit = getattr(inner, "_step_limit", None)
            if isinstance(step_limit, (int, float)) and step_limit != float("inf"):
                limit = int(step_limit)
        if limit:
            return max(int(limit) // action_repeat, 1)
        current = getattr(current, "env", None)
    return None


class _MeasureEpisodeLength(type):
    """
    Metaclass whose ``isinstance`` check measures the episode length of the env it is given and leaves
    the answer on it as ``EPISODE_LENGTH_ATTRIBUTE``. ``VecEnv.env_is_wrapped`` runs that check in the
    env's own process (SubprocVecEnv's workers, or any VecEnv), where the whole wrapper chain can be
    walked exactly as for a DummyVecEnv; ``get_attr`` then reads the answer back.
    """

    def __instancecheck__(cls, env: object) -> bool:
        if isinstance(env, gym.Env):
            env.__dict__[EPISODE_LENGTH_ATTRIBUTE] = _step_limit_of(env)
        return True  # stop at the outermost wrapper


EPISODE_LENGTH_ATTRIBUTE = "_sb3_boom_episode_length"


class EpisodeLengthProbe(metaclass=_MeasureEpisodeLength):
    """Pass to ``VecEnv.env_is_wrapped`` to measure the episode length inside the env's process."""


def episode_length(env: VecEnv | None) -> int | None:
    """
    Episode length in agent steps (after action repeat), or None when it cannot be found.

    Looks through the first environment's wrappers (gymnasium ``TimeLimit``, dm_control step
    limits under shimmy, frame-skip and action-repeat wrappers), in the env's own process for
    subprocess envs, so that every VecEnv class gives the same answer.
    """
    if env is None:
        return None
    venv = env
    while isinstance(venv, VecEnvWrapper):
        venv = venv.venv
    if isinstance(venv, DummyVecEnv):
        return _step_limit_of(venv.envs[0])
    venv.env_is_wrapped(EpisodeLengthProbe)  # type: ignore[arg-type]  # every env: has_attr asks them all
    if venv.has_attr(EPISODE_LENGTH_ATTRIBUTE):
        return venv.get_attr(EPISODE_LENGTH_ATTRIBUTE, indices=[0])[0]
    # A VecEnv whose envs are not gymnasium envs: only the registered time limit is known.
    spec = venv.get_attr("spec", indices=[0])[0]
    return getattr(spec, "max_episode_steps", None)


def resolve_discount(gamma: float | str, env: VecEnv | None, known_episode_length: int | None = None) -> float:
    """
    ``gamma="auto"``: from the episode length (0.99 with a warning if it is unknown).

    :param known_episode_length: the episode length if already measured (else it is measured on ``env``)
    """
    if gamma != "auto":
        return float(gamma)
    length = known_episode_length if known_episode_length is not None else episode_length(env)
    if length is None:
        warnings.warn(f"gamma='auto' could not find the episode length of the environment; using {DEFAULT_DISCOUNT}.")
        return DEFAULT_DISCOUNT
    return discount_from_episode_length(length)
