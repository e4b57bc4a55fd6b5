"""
Does BOOM learn from pixels at all? A minutes-long check on a synthetic image task (docs/pixels.md):
the ``Dot`` env below (a square the 2-D action moves on a 64x64 RGB image, reward minus
its distance to the centre, 20-step episodes), 3 frames stacked, "CnnPolicy" with the cpu model and 16
conv channels. Prints the mean return of 8 deterministic episodes before and after 1200 agent steps.
tests/test_pixels.py trains and checks the pixel code paths on the same env.

    python -m studies.pixels_dot_check
"""

import argparse
import time
from typing import Any

import gymnasium as gym
import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.vec_env import DummyVecEnv, VecFrameStack

from sb3_boom import BOOM


class Dot(gym.Env):
    """A bright square that the action moves on a dark image; reward: closeness to the centre."""

    def __init__(self, size: int = 64, channels_last: bool = True, dtype: type = np.uint8, episode_length: int = 20):
        shape = (size, size, 3) if channels_last else (3, size, size)
        high = 255 if dtype == np.uint8 else 1.0
        self.observation_space = spaces.Box(0, high, shape, dtype)
        self.action_space = spaces.Box(-1.0, 1.0, (2,), np.float32)
        self.size, self.channels_last, self.episode_length = size, channels_last, episode_length

    def _obs(self) -> np.ndarray:
        image = np.zeros((self.size, self.size, 3), np.uint8)
        row, col = (self.position * (self.size - 6)).astype(int)
        image[row : row + 6, col : col + 6] = (255, 128, 40)
        image[..., 2] += np.uint8(self.t)  # every frame differs
        image = image if self.channels_last else image.transpose(2, 0, 1)
        return image.astype(self.observation_space.dtype)

    def reset(self, seed: int | None = None, options: dict | None = None) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        self.position, self.t = self.np_random.uniform(0, 1, 2), 0
        return self._obs(), {}

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        self.position = np.clip(self.position + 0.1 * np.asarray(action), 0, 1)
        self.t += 1
        reward = -float(np.abs(self.position - 0.5).sum())
        return self._obs(), reward, False, self.t >= self.episode_length, {}


def stacked_dot(n_envs: int = 1, **kwargs: Any) -> VecFrameStack:
    """``n_envs`` Dot envs (``kwargs``: their arguments), 3 frames stacked."""
    return VecFrameStack(DummyVecEnv([lambda: Dot(**kwargs)] * n_envs), 3)


def main(argv: list[str] | None = None) -> tuple[float, float]:
    """Train on the Dot task; print and return the mean return before and after."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=1200, help="agent steps to train for (the first 200 random)")
    args = parser.parse_args(argv)
    th.set_num_threads(1)
    model = BOOM(
        "CnnPolicy",
        stacked_dot(episode_length=20),
        seed=0,
        policy_kwargs=dict(model_size="cpu", image_encoder_kwargs=dict(num_channels=16)),
        num_samples=64,
        num_elites=8,
        num_pi_trajs=4,
        iterations=2,
        batch_size=32,
        learning_starts=200,
        buffer_size=5000,
    )
    eval_env = stacked_dot(4, episode_length=20)
    eval_env.seed(100)
    before, _ = evaluate_policy(model, eval_env, n_eval_episodes=8)
    start = time.perf_counter()
    model.learn(args.steps)
    eval_env.seed(100)
    after, _ = evaluate_policy(model, eval_env, n_eval_episodes=8)
    seconds = time.perf_counter() - start
    print(f"mean return: untrained {before:.2f}, after {args.steps} agent steps {after:.2f} ({seconds:.0f} s)")
    return float(before), float(after)


if __name__ == "__main__":
    main()
