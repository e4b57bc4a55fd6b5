"""
Per-action latency of the exported policy prior and MPPI planner (sb3_boom/export.py) against
``predict`` (eager and ``compile=True``), and the exported files' sizes: the table of docs/export.md.

    python benchmarks/export_latency.py --sizes cpu 5 --threads 1

One environment, one action per call (a robot's control loop). ``predict`` is timed through
``model.predict`` (observation from numpy, action back to numpy, the warm start carried as
``state``); an exported planner's time includes drawing its random inputs with numpy
(examples/deploy_exported.py's ``draw_inputs``). Latencies are medians over ``--repeats`` rounds (one
call of each prior, or of each planner, per round: interleaved) after ``--warmup`` calls of each. Networks: untrained
(latency does not depend on the weights). Appends one JSON row per model size to ``--output``.
"""

import argparse
import importlib.util
import json
import os
import pathlib
import platform
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np
import onnxruntime
import torch as th
from gymnasium import spaces

from sb3_boom import BOOM
from sb3_boom.presets import PRESETS

ROOT = pathlib.Path(__file__).resolve().parents[1]
DEFAULT_OUTPUT = ROOT / "benchmarks" / "results" / "export_latency.jsonl"
# The model and planner settings timed: the "cpu" preset, and the paper's 5M model with its planner (512
# samples, 64 elites, 24 prior sequences, 6 iterations for fewer than 20 action dimensions).
SIZES: dict[str, dict[str, Any]] = {
    "cpu": {**{key: value for key, value in PRESETS["cpu"].items() if key != "batch_size"}, "gamma": 0.99},
    "5": dict(policy_kwargs=dict(model_size=5), gamma=0.99),
}


class SpacesEnv(gym.Env):
    """An environment that only has spaces (BOOM needs one to build the policy): Box observations and actions in [-1, 1]."""

    def __init__(self, obs_dim: int, action_dim: int):
        self.observation_space = spaces.Box(-np.inf, np.inf, (obs_dim,), np.float32)
        self.action_space = spaces.Box(-1.0, 1.0, (action_dim,), np.float32)

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        return np.zeros(self.observation_space.shape, np.float32), {}

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict]:
        return np.zeros(self.observation_space.shape, np.float32), 0.0, False, False, {}


def _load_deploy_example() -> Any:
    spec = importlib.util.spec_from_file_location("deploy_exported", ROOT / "examples" / "deploy_exported.py")
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


def median_ms(calls: dict[str, Callable[[], Any]], warmup: int, repeats: int) -> dict[str, float]:
    """
    Median time of each call in milliseconds. The calls are interleaved (one of each per round), so that
    a change of the machine's load during the run falls on all of them alike.
    """
    for call in calls.values():
        for _ in range(warmup):
            call()
    times: dict[str, list[float]] = {label: [] for label in calls}
    for _ in range(repeats):
        for label, call in calls.items():
            start = time.perf_counter()
            call()
            times[label].append(time.perf_counter() - start)
    return {label: 1e3 * statistics.median(values) for label, values in times.items()}


def predict_calls(model: BOOM, observation: np.ndarray) -> dict[str, Callable[[], Any]]:
    """``predict`` of the prior and of the planner (warm start carried as ``state``), one observation each call."""
    horizon, action_dim = model.policy.planner.horizon, model.policy.action_dim
    state = [(np.zeros((1, horizon, action_dim), np.float32),)]
    not_started = np.zeros(1, dtype=bool)

    def plan() -> None:
        _, state[0] = model.predict(observation, state[0], not_started, deterministic=True)

    return {"prior": lambda: model.policy.predict(observation, deterministic=True, use_planner=False), "planner": plan}


def exported_calls(deploy: Any, path: pathlib.Path, observation: np.ndarray, threads: int) -> Callable[[], Any]:
    """One action from an exported file, as examples/deploy_exported.py computes it (draws included)."""
    if path.suffix == ".onnx":
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
        session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        metadata = json.loads(session.get_modelmeta().custom_metadata_map[deploy.METADATA_KEY])

        def run(inputs: dict[str, np.ndarray]) -> list[np.ndarray]:
            return session.run(None, inputs)

    else:
        run, metadata = deploy.load_program(path)
    rng = np.random.default_rng(0)
    inputs = {"obs": observation}
    if metadata["what"] == "planner":
        shape = next(item["shape"] for item in metadata["inputs"] if item["name"] == "warm_start")
        inputs.update(warm_start=np.zeros(shape, np.float32), episode_start=np.zeros(1, dtype=bool))

    def act() -> None:
        if metadata["what"] == "planner":
            inputs.update(deploy.draw_inputs(metadata, rng))
            _, inputs["warm_start"] = run(inputs)
        else:
            run(inputs)

    return act


def measure(size: str, args: argparse.Namespace, deploy: Any) -> dict[str, Any]:
    env = SpacesEnv(args.obs_dim, args.action_dim)
    kwargs = SIZES[size]
    model = BOOM("MlpPolicy", env, seed=0, **kwargs)
    observation = np.random.default_rng(0).standard_normal((1, args.obs_dim)).astype(np.float32)
    row: dict[str, Any] = {
        "size": size,
        "obs_dim": args.obs_dim,
        "action_dim": args.action_dim,
        "planner": {k: getattr(model.policy.planner, k) for k in ("horizon", "iterations", "num_samples", "num_elites")},
        "parameters": sum(p.numel() for p in model.policy.parameters()),
        "latency_ms": {},
        "file_bytes": {},
        "export_s": {},
    }
    calls = {f"{what}/predict": call for what, call in predict_calls(model, observation).items()}
    folder = tempfile.TemporaryDirectory()
    for what in ("prior", "planner"):
        for fmt in ("onnx", "torchscript"):
            start = time.perf_counter()
            path = model.export(pathlib.Path(folder.name) / what, what=what, format=fmt)
            row["export_s"][f"{what}/{fmt}"] = round(time.perf_counter() - start, 2)
            row["file_bytes"][f"{what}/{fmt}"] = path.stat().st_size
            calls[f"{what}/{fmt}"] = exported_calls(deploy, path, observation, args.threads)
    if args.compile:
        compiled = BOOM("MlpPolicy", env, seed=0, compile=True, **kwargs)
        compiled.policy.load_state_dict(model.policy.state_dict())
        for what, call in predict_calls(compiled, observation).items():
            start = time.perf_counter()
            call()  # compiles
            row["export_s"][f"{what}/compile_warmup"] = round(time.perf_counter() - start, 1)
            calls[f"{what}/predict_compiled"] = call
    # Interleaved within each program (prior, planner): a planner call between two prior calls would
    # leave the prior's weights out of the caches, which a control loop running the prior alone does not do.
    for what in ("prior", "planner"):
        group = {label: call for label, call in calls.items() if label.startswith(what)}
        row["latency_ms"].update(median_ms(group, args.warmup, args.repeats))
    folder.cleanup()
    return row


def print_table(rows: list[dict[str, Any]]) -> None:
    columns = ["predict", "predict_compiled", "onnx", "torchscript"]
    print("| model | program | " + " | ".join(f"{c} (ms)" for c in columns) + " | ONNX file | TorchScript file |")
    print("|---" * (len(columns) + 4) + "|")
    for row in rows:
        for what in ("prior", "planner"):
            cells = [f"{row['latency_ms'][f'{what}/{c}']:.2f}" if f"{what}/{c}" in row["latency_ms"] else "-" for c in columns]
            files = [f"{row['file_bytes'][f'{what}/{fmt}'] / 1e6:.2f} MB" for fmt in ("onnx", "torchscript")]
            print(f"| {row['size']} | {what} | " + " | ".join(cells + files) + " |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--sizes", nargs="+", default=["cpu", "5"], choices=list(SIZES))
    parser.add_argument("--obs-dim", type=int, default=24, help="observation size (default: walker-walk's)")
    parser.add_argument("--action-dim", type=int, default=6, help="action size (default: walker-walk's)")
    parser.add_argument("--threads", type=int, default=1, help="torch and onnxruntime threads")
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--no-compile", dest="compile", action="store_false", help="skip predict with compile=True")
    parser.add_argument("--output", type=pathlib.Path, default=DEFAULT_OUTPUT)
    args = parser.parse_args()
    th.set_num_threads(args.threads)
    warnings.filterwarnings("ignore", category=DeprecationWarning)  # torch.jit's (see docs/export.md)
    deploy = _load_deploy_example()
    machine = {
        "cpu": platform.processor() or platform.machine(),
        "cpu_capability": th.backends.cpu.get_cpu_capability(),
        "threads": args.threads,
        "load_average": os.getloadavg()[0],
        "torch": th.__version__,
        "onnxruntime": onnxruntime.__version__,
    }
    rows = []
    for size in args.sizes:
        row = {**measure(size, args, deploy), **machine, "load_average_after": os.getloadavg()[0]}
        rows.append(row)
        print(json.dumps(row), file=sys.stderr)
        args.output.parent.mkdir(parents=True, exist_ok=True)
        with open(args.output, "a") as file:
            file.write(json.dumps(row) + "\n")
    print_table(rows)


if __name__ == "__main__":
    main()
