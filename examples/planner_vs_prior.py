"""
Compare BOOM's two ways of acting: the MPPI planner (``use_planner=True``, what BOOM trains with) and
the policy prior alone (``use_planner=False``, one network call per action). Both are evaluated with
SB3's ``evaluate_policy`` on the same episodes (same seeds), and the time per action is measured.

With no ``--model``, BOOM is first trained on Pendulum-v1 as in examples/quickstart.py (about 5 minutes on 2 cores).

    python examples/planner_vs_prior.py [--steps 6000] [--episodes 10]
    # a saved model, e.g. one from train_dmc.py (its env is rebuilt with the same wrappers):
    python examples/planner_vs_prior.py --model runs/cartpole-swingup-v0_seed0/boom.zip --env dm_control/cartpole-swingup-v0
    # smoke test with tiny networks and planner:
    python examples/planner_vs_prior.py --tiny --steps 300 --episodes 2
"""

import argparse
import time
from typing import Any

import gymnasium as gym
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.vec_env import VecEnv

from sb3_boom import BOOM
from sb3_boom.presets import PRESETS


def make_env(env_id: str) -> gym.Env:
    """``env_id`` as the model saw it in training: dm_control ids as train_dmc.py makes them (``make_dmc``)."""
    if env_id.startswith("dm_control/"):
        from sb3_boom.envs import make_dmc

        return make_dmc(env_id)
    return gym.make(env_id)


class TimedPredictor:
    """Wraps a model for ``evaluate_policy`` and adds up the time spent in ``predict``."""

    def __init__(self, model: BOOM):
        self.model = model
        self.seconds = 0.0
        self.actions = 0

    def predict(self, observation: Any, state: Any = None, episode_start: Any = None, deterministic: bool = False) -> Any:
        start = time.perf_counter()
        result = self.model.predict(observation, state, episode_start, deterministic)
        self.seconds += time.perf_counter() - start
        self.actions += len(result[0])  # one action per env
        return result


def evaluate(model: BOOM, env: VecEnv, seed: int, n_episodes: int) -> tuple[float, float, float]:
    """Mean and std of the return over ``n_episodes`` deterministic episodes, and seconds per action."""
    env.seed(seed)  # the next reset, and so every episode after it, starts from the same states
    predictor = TimedPredictor(model)
    mean, std = evaluate_policy(predictor, env, n_eval_episodes=n_episodes, deterministic=True)
    return float(mean), float(std), predictor.seconds / predictor.actions


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None, help="a saved BOOM model (.zip); default: train one on --env")
    parser.add_argument("--env", default="Pendulum-v1", help="env id of the model")
    parser.add_argument("--steps", type=int, default=6_000, help="training steps when no --model is given")
    parser.add_argument("--episodes", type=int, default=10, help="evaluation episodes of each mode")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--tiny", action="store_true", help="train tiny networks and planner, for smoke tests")
    args = parser.parse_args()

    env = make_vec_env(make_env, n_envs=1, env_kwargs=dict(env_id=args.env))
    if args.model:
        model = BOOM.load(args.model, env=env)
        print(f"loaded {args.model} ({model.num_timesteps} steps of training)")
    else:
        kwargs = PRESETS["tiny"] if args.tiny else PRESETS["cpu"]
        model = BOOM("MlpPolicy", env, seed=args.seed, **kwargs)
        start = time.time()
        model.learn(args.steps)
        print(f"trained BOOM on {args.env} for {args.steps} steps in {time.time() - start:.0f} s")

    print(f"{args.episodes} episodes of {args.env} per mode, the same ones (env seed {args.seed}), deterministic actions:")
    for use_planner, name in ((True, "MPPI planner"), (False, "policy prior")):
        model.use_planner = use_planner
        mean, std, seconds = evaluate(model, env, args.seed, args.episodes)
        print(f"{name}: return {mean:8.1f} +/- {std:6.1f}, {1000 * seconds:7.2f} ms per action")


if __name__ == "__main__":
    main()
