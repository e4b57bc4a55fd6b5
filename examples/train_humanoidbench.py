"""
Train BOOM on a HumanoidBench task, save it, then evaluate the MPPI planner and the policy prior alone.

HumanoidBench is not on PyPI and pins its own mujoco and dm_control: install it in a separate
virtualenv first, see docs/humanoidbench.md.

    # the paper's settings (needs a GPU):
    python examples/train_humanoidbench.py --env h1hand-walk-v0
    # CPU smoke test (2.5 minutes on one core with OMP_NUM_THREADS=1):
    python examples/train_humanoidbench.py --steps 1500 --model-size 1 --quick --eval-episodes 1
"""

import argparse
import os
import sys
import time

import gymnasium as gym
import numpy as np
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.monitor import Monitor

from sb3_boom import BOOM

# A lighter planner, smaller batches and a short warm-up: to check the setup on a CPU, not to learn the task.
QUICK_KWARGS = dict(num_samples=128, num_elites=16, iterations=2, batch_size=64, learning_starts=500)

INSTALL_HINT = """HumanoidBench could not be imported ({error}).
It is not on PyPI; install it beside sb3-boom in its own virtualenv (details: docs/humanoidbench.md):

    git clone https://github.com/carlosferrazza/humanoid-bench
    pip install mujoco==3.1.6 dm_control==1.0.20 jax imageio
    pip install --no-deps -e humanoid-bench
"""


def register_humanoidbench() -> None:
    """Import HumanoidBench (it registers the ``h1hand-*-v0`` ids), or exit with install instructions."""
    # Its envs render off-screen by default (render_mode="rgb_array"), which needs an OpenGL backend.
    os.environ.setdefault("MUJOCO_GL", "egl")
    try:
        import humanoid_bench  # noqa: F401
    except ImportError as error:
        sys.exit(INSTALL_HINT.format(error=error))


def make_env(env_id: str) -> gym.Env:
    """A HumanoidBench env without its off-screen renderer (about 1.2 GB less memory per env with Mesa's EGL)."""
    return gym.make(env_id, render_mode=None)


def evaluate(model: BOOM, env_id: str, n_episodes: int, name: str) -> None:
    """Deterministic evaluation: mean return and episode length (HumanoidBench episodes end when the robot falls)."""
    env = Monitor(make_env(env_id))
    start = time.time()
    returns, lengths = evaluate_policy(model, env, n_eval_episodes=n_episodes, deterministic=True, return_episode_rewards=True)
    env.close()
    print(
        f"evaluation, {name:>12}: return {np.mean(returns):7.1f} +/- {np.std(returns):5.1f}, "
        f"length {np.mean(lengths):6.1f} over {n_episodes} episodes ({time.time() - start:.0f} s)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env", default="h1hand-stand-v0", help="HumanoidBench id, e.g. h1hand-walk-v0")
    parser.add_argument("--steps", type=int, default=2_000_000, help="environment steps to train for (authors' config: 2M)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--model-size", type=int, default=5, choices=[1, 5, 19, 48, 317], help="TD-MPC2 size preset")
    parser.add_argument("--quick", action="store_true", help="CPU smoke-test settings: " + str(QUICK_KWARGS))
    parser.add_argument("--eval-episodes", type=int, default=10)
    parser.add_argument("--save-path", default=None, help="where to save the model (default: boom_<env>.zip)")
    args = parser.parse_args()

    register_humanoidbench()
    env = make_env(args.env)
    model = BOOM(
        "MlpPolicy",
        env,
        policy_kwargs=dict(model_size=args.model_size),
        seed=args.seed,
        verbose=1,
        **(QUICK_KWARGS if args.quick else {}),
    )
    print(
        f"BOOM on {args.env}: obs {env.observation_space.shape}, actions {env.action_space.shape}, "
        f"gamma={model.gamma}, warm-up {model.learning_starts} random steps, {model.iterations} MPPI iterations, "
        f"lambda_align={model.lambda_align}, {args.steps} steps in all"
    )
    start = time.time()
    model.learn(args.steps, log_interval=10)
    print(f"trained {model.num_timesteps} steps in {time.time() - start:.0f} s")
    save_path = args.save_path or f"boom_{args.env}"
    model.save(save_path)
    model.env.close()

    evaluate(model, args.env, args.eval_episodes, "MPPI planner")
    evaluate(BOOM.load(save_path, use_planner=False), args.env, args.eval_episodes, "policy prior")


if __name__ == "__main__":
    main()
