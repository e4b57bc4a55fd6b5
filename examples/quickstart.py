"""
Quick start: train BOOM on Pendulum-v1 on a CPU in a few minutes, then evaluate the MPPI planner
and the policy prior alone.

    python examples/quickstart.py [--steps 6000] [--seed 0]
"""

import argparse
import time

import gymnasium as gym
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.monitor import Monitor

from sb3_boom import BOOM

# A CPU-friendly configuration: small networks and a lighter planner than the paper's 5M model.
PENDULUM_KWARGS = dict(
    policy_kwargs=dict(model_size=1, latent_dim=64, mlp_dim=128, enc_dim=128),
    num_samples=128,
    num_elites=16,
    num_pi_trajs=8,
    iterations=4,
    batch_size=128,
    learning_starts=1000,
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    # 6000, not fewer: at 3000-5000 steps the prior already swings up, but Q is still wrong near the
    # bottom at low speed and the planner, which ranks by Q after 3 steps, pushes one way in some
    # episodes (seed 0 here: 3, 2, 1 and 0 of 10 episodes failed at 3000, 4000, 5000 and 6000 steps).
    parser.add_argument("--steps", type=int, default=6000, help="environment steps to train for")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--episodes", type=int, default=10, help="evaluation episodes")
    args = parser.parse_args()

    model = BOOM("MlpPolicy", "Pendulum-v1", seed=args.seed, verbose=1, **PENDULUM_KWARGS)
    print(
        f"BOOM on Pendulum-v1: gamma={model.gamma:.3f}, warm-up {model.learning_starts} random steps, "
        f"lambda_align={model.lambda_align}, {args.steps} steps in all"
    )
    start = time.time()
    model.learn(args.steps, progress_bar=True, log_interval=5)
    print(f"trained in {time.time() - start:.0f} s")

    eval_env = Monitor(gym.make("Pendulum-v1"))
    for use_planner, name in ((True, "MPPI planner"), (False, "policy prior")):
        model.use_planner = use_planner
        start = time.time()
        mean, std = evaluate_policy(model, eval_env, n_eval_episodes=args.episodes, deterministic=True)
        elapsed = time.time() - start
        print(f"evaluation, {name:>12}: {mean:8.1f} +/- {std:5.1f} over {args.episodes} episodes ({elapsed:.1f} s)")


if __name__ == "__main__":
    main()
