"""
Replay a packaged agent (benchmarks/package_agents.py's RL Zoo layout) for one deterministic episode
with ``predict`` and with its exported planner, ONNX and TorchScript, fed either torch's draws
(``planner_draws``, the same numbers ``predict`` draws) or numpy's (examples/deploy_exported.py's
``draw_inputs``): the episode returns of a trained planner and of its exported files, side by side.

    python -m studies.export_replay agents/boom/dm_control-cheetah-run-v0_1 --env dm_control/cheetah-run-v0

The env is built as ``rl_zoo3.enjoy`` builds it (the agent's config.yml, seed 0), torch is seeded
before each episode, one torch thread.
"""

import argparse
import copy
import importlib.util
import pathlib
import tempfile
import time
import warnings
from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np
import torch as th
from rl_zoo3.utils import create_test_env, get_saved_hyperparams
from stable_baselines3.common.utils import set_random_seed

from sb3_boom import BOOM
from sb3_boom.export import planner_draws

ROOT = pathlib.Path(__file__).resolve().parents[1]
SEED = 0


def _load_deploy_example() -> Any:
    spec = importlib.util.spec_from_file_location("deploy_exported", ROOT / "examples" / "deploy_exported.py")
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


def episode_return(make_env: Callable[[], Any], act: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> float:
    """One episode of the (1-env) VecEnv ``make_env()`` with ``act(obs, episode_start)``; torch seeded first."""
    env = make_env()
    set_random_seed(SEED)
    observation, total, episode_start = env.reset(), 0.0, np.ones(1, dtype=bool)
    while True:
        observation, reward, done, _ = env.step(act(observation, episode_start))
        total += float(reward[0])
        episode_start = done
        if done[0]:
            env.close()
            return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("run_dir", type=pathlib.Path, help="<agents>/boom/<env name>_1, as package_agents.py writes it")
    parser.add_argument("--env", required=True, help="the env id, e.g. dm_control/cheetah-run-v0")
    args = parser.parse_args()
    warnings.filterwarnings("ignore", category=DeprecationWarning)  # torch.jit's (see docs/export.md)
    th.set_num_threads(1)
    if args.env.startswith("dm_control/"):
        import shimmy

        gym.register_envs(shimmy)
    name = args.env.replace("/", "-")
    hyperparams, stats_path = get_saved_hyperparams(str(args.run_dir / name), test_mode=True)

    def make_env() -> Any:
        # create_test_env pops the wrappers from the hyperparameters it is given: a copy each time.
        kwargs = dict(n_envs=1, stats_path=stats_path, seed=SEED, should_render=False)
        return create_test_env(args.env, hyperparams=copy.deepcopy(hyperparams), **kwargs)

    model = BOOM.load(args.run_dir / f"{name}.zip", device="cpu")
    deploy = _load_deploy_example()
    folder = tempfile.TemporaryDirectory()
    path = pathlib.Path(folder.name) / "planner"
    files = {fmt: model.export(path, what="planner", format=fmt) for fmt in ("onnx", "torchscript")}

    state: list[Any] = [None]

    def predict(observation: np.ndarray, episode_start: np.ndarray) -> np.ndarray:
        action, state[0] = model.predict(observation, state=state[0], episode_start=episode_start, deterministic=True)
        return action

    def exported(fmt: str, torch_draws: bool) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
        run, metadata = deploy.load_program(files[fmt])
        shape = next(item["shape"] for item in metadata["inputs"] if item["name"] == "warm_start")
        warm_start, rng = [np.zeros(shape, np.float32)], np.random.default_rng(SEED)

        def act(observation: np.ndarray, episode_start: np.ndarray) -> np.ndarray:
            if torch_draws:
                draws = {key: value.numpy() for key, value in planner_draws(model.policy, 1).items()}
            else:
                draws = deploy.draw_inputs(metadata, rng)
            inputs = {"obs": observation.astype(np.float32), "warm_start": warm_start[0], "episode_start": episode_start}
            action, warm_start[0] = run({**inputs, **draws})
            return action

        return act

    runs = {"predict": predict}
    for fmt in ("torchscript", "onnx"):
        for torch_draws in (True, False):
            runs[f"{fmt}, {'torch' if torch_draws else 'numpy'} draws"] = exported(fmt, torch_draws)
    print(f"| {args.env} | return | seconds |\n|---|---|---|")
    for label, act in runs.items():
        start = time.perf_counter()
        value = episode_return(make_env, act)
        print(f"| {label} | {value:.3f} | {time.perf_counter() - start:.0f} |", flush=True)
    folder.cleanup()


if __name__ == "__main__":
    main()
