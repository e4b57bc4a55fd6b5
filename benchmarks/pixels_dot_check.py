"""
Does BOOM learn from pixels at all? A minutes-long check on a synthetic image task (docs/pixels.md):
tests/test_pixels.py's ``Dot`` env (a square the 2-D action moves on a 64x64 RGB image, reward minus
its distance to the centre, 20-step episodes), 3 frames stacked, "CnnPolicy" with the cpu model and 16
conv channels. Prints the mean return of 8 deterministic episodes before and after 1200 agent steps.

    python benchmarks/pixels_dot_check.py
"""

import pathlib
import sys
import time

import torch as th
from stable_baselines3.common.evaluation import evaluate_policy

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "tests"))
from test_pixels import stacked_dot  # noqa: E402

from sb3_boom import BOOM  # noqa: E402


def main() -> None:
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
    model.learn(1200)
    eval_env.seed(100)
    after, _ = evaluate_policy(model, eval_env, n_eval_episodes=8)
    print(f"mean return: untrained {before:.2f}, after 1200 agent steps {after:.2f} ({time.perf_counter() - start:.0f} s)")


if __name__ == "__main__":
    main()
