"""Learning test: BOOM solves Pendulum-v1 with small networks on CPU within 10,000 steps."""

import gymnasium as gym
import pytest
from stable_baselines3.common.callbacks import EvalCallback, StopTrainingOnRewardThreshold
from stable_baselines3.common.monitor import Monitor

from sb3_boom import BOOM


@pytest.mark.slow
def test_pendulum_reaches_minus_300_within_10k_steps():
    stop = StopTrainingOnRewardThreshold(reward_threshold=-300, verbose=1)
    evaluation = EvalCallback(Monitor(gym.make("Pendulum-v1")), eval_freq=1000, n_eval_episodes=5, callback_on_new_best=stop)
    model = BOOM(
        "MlpPolicy",
        "Pendulum-v1",
        policy_kwargs=dict(model_size=1, latent_dim=64, mlp_dim=128, enc_dim=128),
        num_samples=128,
        num_elites=16,
        num_pi_trajs=8,
        iterations=4,
        batch_size=128,
        learning_starts=1000,
        seed=0,
    )
    model.learn(10_000, callback=evaluation)
    assert evaluation.best_mean_reward >= -300, evaluation.best_mean_reward
