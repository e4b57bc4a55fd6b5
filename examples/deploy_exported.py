"""
Drive an environment with a BOOM policy exported by ``model.export`` (docs/export.md), without SB3 or
sb3-boom: numpy, gymnasium and the file's runtime (``onnxruntime`` for ``.onnx``, ``torch`` for ``.pt``).
Copy this file next to the exported one on the robot.

    python -c "from sb3_boom import BOOM; BOOM.load('boom_pendulum').export('planner.onnx', what='planner')"
    python examples/deploy_exported.py planner.onnx --env Pendulum-v1 --episodes 1
    # a dm_control agent trained by the zoo config (flattened observations, action repeat 2):
    python examples/deploy_exported.py planner.onnx --env dm_control/cheetah-run-v0 --flatten --action-repeat 2

For a planner, the loop keeps the warm start (the planner's mean over the horizon) between steps and
draws the planner's random inputs with numpy, from the distributions the file's metadata names.
"""

import argparse
import json
import pathlib
import sys
from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np

# Where the exporter stores the description of the inputs and outputs (sb3_boom.export.METADATA_KEY).
METADATA_KEY = "sb3_boom"


def load_program(path: str | pathlib.Path) -> tuple[Callable[[dict[str, np.ndarray]], list[np.ndarray]], dict[str, Any]]:
    """
    The exported program as a function of named numpy inputs (returning its outputs in order), and its metadata.

    :param path: an ``.onnx`` or ``.pt`` file written by ``model.export``
    """
    path = pathlib.Path(path)
    if path.suffix == ".onnx":
        import onnxruntime

        session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        metadata = json.loads(session.get_modelmeta().custom_metadata_map[METADATA_KEY])

        def run_onnx(inputs: dict[str, np.ndarray]) -> list[np.ndarray]:
            return session.run(None, inputs)

        return run_onnx, metadata
    import torch

    extra = {f"{METADATA_KEY}.json": ""}
    module = torch.jit.load(str(path), _extra_files=extra)
    metadata = json.loads(extra[f"{METADATA_KEY}.json"])
    names = [item["name"] for item in metadata["inputs"]]

    def run_torchscript(inputs: dict[str, np.ndarray]) -> list[np.ndarray]:
        with torch.no_grad():
            outputs = module(*[torch.as_tensor(inputs[name]) for name in names])
        return [output.numpy() for output in (outputs if isinstance(outputs, tuple) else (outputs,))]

    return run_torchscript, metadata


def draw_inputs(metadata: dict[str, Any], rng: np.random.Generator) -> dict[str, np.ndarray]:
    """
    Fresh random inputs of an exported planner (none for a prior), from the distributions its metadata
    names: the same distributions ``predict`` draws from, not the same numbers.
    """
    draws = {}
    for item in metadata["inputs"]:
        name, kind, shape = item["name"], item["kind"], item["shape"]
        if kind == "normal":
            draws[name] = rng.standard_normal(shape, dtype=np.float32)
        elif kind == "uniform":
            draws[name] = rng.random(shape, dtype=np.float32)
        elif kind == "exponential":
            draws[name] = rng.standard_exponential(shape, dtype=np.float32)
        elif kind == "geometric":
            draws[name] = rng.geometric(metadata["dropout_p"], shape).astype(np.int64)
    return draws


def observation_inputs(metadata: dict[str, Any], observation: np.ndarray | dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """One environment's observation as the program's observation inputs (batch of one; one input per Dict key)."""
    names = [item["name"] for item in metadata["inputs"] if item["kind"] == "observation"]
    parts = observation if isinstance(observation, dict) else {names[0]: observation}
    return {name: np.asarray(parts[name], dtype=np.float32)[None] for name in names}


def run_episodes(
    path: str | pathlib.Path, env: gym.Env, episodes: int = 1, seed: int = 0, action_repeat: int = 1
) -> list[float]:
    """
    Run ``episodes`` episodes of ``env`` with the exported program; return their returns.

    :param path: the exported file (a prior, or a planner exported with ``n_envs=1``)
    :param env: one (not vectorised) environment, wrapped as in training (the observations the policy saw)
    :param seed: seed of the first episode's reset and of the planner's draws
    :param action_repeat: env steps per action, as in training (the zoo's dm_control setting is 2)
    """
    run, metadata = load_program(path)
    planner = metadata["what"] == "planner"
    if planner and metadata["n_envs"] != 1:
        raise ValueError(f"This loop drives one environment; {path} was exported for n_envs={metadata['n_envs']}.")
    rng = np.random.default_rng(seed)
    returns = []
    for episode in range(episodes):
        observation, _ = env.reset(seed=seed + episode)
        if planner:
            state_shape = next(item["shape"] for item in metadata["inputs"] if item["name"] == "warm_start")
            warm_start, episode_start = np.zeros(state_shape, dtype=np.float32), np.ones(1, dtype=bool)
        done, total = False, 0.0
        while not done:
            inputs = observation_inputs(metadata, observation)
            if planner:
                inputs.update(warm_start=warm_start, episode_start=episode_start, **draw_inputs(metadata, rng))
                action, warm_start = run(inputs)
                episode_start = np.zeros(1, dtype=bool)
            else:
                (action,) = run(inputs)
            for _ in range(action_repeat):
                observation, reward, terminated, truncated, _ = env.step(action[0])
                total += float(reward)
                done = terminated or truncated
                if done:
                    break
        returns.append(total)
    return returns


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("path", help="file written by model.export (.onnx or .pt)")
    parser.add_argument("--env", default="Pendulum-v1", help="gymnasium environment id")
    parser.add_argument("--episodes", type=int, default=1)
    parser.add_argument("--max-steps", type=int, default=None, help="truncate episodes after this many steps")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--flatten", action="store_true", help="flatten Dict observations (FlattenObservation)")
    parser.add_argument("--action-repeat", type=int, default=1, help="env steps per action")
    args = parser.parse_args(argv)
    if args.env.startswith("dm_control/"):
        import shimmy

        gym.register_envs(shimmy)
    env = gym.make(args.env, max_episode_steps=args.max_steps) if args.max_steps else gym.make(args.env)
    if args.flatten:
        env = gym.wrappers.FlattenObservation(env)
    returns = run_episodes(args.path, env, args.episodes, args.seed, args.action_repeat)
    loaded = sorted(name for name in ("sb3_boom", "stable_baselines3") if name in sys.modules)
    print(f"returns: {[round(value, 2) for value in returns]}; SB3 / sb3-boom modules loaded: {loaded or 'none'}")


if __name__ == "__main__":
    main()
