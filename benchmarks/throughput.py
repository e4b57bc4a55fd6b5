"""
Throughput of sb3-boom on one machine: planning and update latency, end-to-end agent and env
steps/s, matmul FLOPs and their share of the machine's measured fp32 matmul peak, peak memory,
and SB3's SAC on the same env as a yardstick. Prints a table and appends one JSON row per run.

    python benchmarks/throughput.py --env dm_control/cartpole-swingup-v0 --model-size 5
    python benchmarks/throughput.py --env dm_control/dog-run-v0 --model-size 1 --n-envs 4 --sac
    python benchmarks/throughput.py --preset cpu --profile        # where the time goes, by operator

Latencies are medians over ``--repeats`` calls after warm-up calls: planning is one call of
``policy.plan`` for all ``n_envs`` observations (what one agent step of ``learn`` does), an update
is one ``train(gradient_steps=1)`` (replay sampling, world-model and policy update, target update).
"""

import argparse
import contextlib
import json
import os
import pathlib
import platform
import resource
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

import torch as th
from stable_baselines3.common.env_util import make_vec_env
from torch.utils.flop_counter import FlopCounterMode

from sb3_boom import BOOM
from sb3_boom.envs import ACTION_REPEAT, DMC_PREFIX, make_dmc
from sb3_boom.precision import bfloat16_is_native
from sb3_boom.presets import PRESETS

DEFAULT_OUTPUT = pathlib.Path(__file__).parent / "results" / "throughput.jsonl"


def cpu_description() -> dict[str, Any]:
    """The CPU's model name, torch's vector capability and whether bf16 matmuls are native (rows of
    different machines differ in these, and bf16's speed depends on the last)."""
    model = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in pathlib.Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {
        "cpu_model": model,
        "cpu_capability": th.backends.cpu.get_cpu_capability(),
        "cpu_bf16_native": bfloat16_is_native("cpu"),
    }


def synchronize(device: th.device) -> None:
    if device.type == "cuda":
        th.cuda.synchronize(device)


def median_seconds(function: Callable[[], Any], repeats: int, warmup: int, device: th.device) -> float:
    """Median wall time of ``function`` over ``repeats`` calls, after ``warmup`` calls."""
    for _ in range(warmup):
        function()
    synchronize(device)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        synchronize(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def matmul_peak_flops(device: th.device, size: int = 2048, repeats: int = 10, dtype: th.dtype = th.float32) -> float:
    """The machine's matmul throughput (FLOP/s) in ``dtype``: best of ``repeats`` square matmuls."""
    a = th.randn(size, size, device=device, dtype=dtype)
    b = th.randn(size, size, device=device, dtype=dtype)
    best = float("inf")
    for _ in range(repeats + 2):
        synchronize(device)
        start = time.perf_counter()
        a @ b
        synchronize(device)
        best = min(best, time.perf_counter() - start)
    return 2 * size**3 / best


def count_flops(function: Callable[[], Any]) -> int:
    """Matmul FLOPs of one call. Run eagerly: a compiled function called under FlopCounterMode falls
    back to eager for the rest of the process (torch 2.13), which made the later timings eager."""
    with th.compiler.set_stance("force_eager"), FlopCounterMode(display=False) as counter:
        function()
    return counter.get_total_flops()


def make_env(env_id: str, n_envs: int, seed: int) -> tuple[Any, int]:
    """A VecEnv of ``env_id``; DMC tasks as in hyperparams/boom.yml (flat float32, action repeat 2)."""
    if env_id.startswith(DMC_PREFIX):
        return make_vec_env(make_dmc, n_envs=n_envs, seed=seed, env_kwargs=dict(env_id=env_id)), ACTION_REPEAT
    return make_vec_env(env_id, n_envs=n_envs, seed=seed), 1


def profile_table(function: Callable[[], Any], calls: int, label: str) -> str:
    """Self time per operator over ``calls`` calls of ``function`` (torch.profiler), as a table."""
    with th.profiler.profile(activities=[th.profiler.ProfilerActivity.CPU]) as profiler:
        for _ in range(calls):
            function()
    table = profiler.key_averages().table(sort_by="self_cpu_time_total", row_limit=15)
    return f"--- {label}: {calls} calls, self time by operator ---\n{table}"


def measure_boom(args: argparse.Namespace, device: th.device) -> dict[str, Any]:
    env, action_repeat = make_env(args.env, args.n_envs, args.seed)
    kwargs: dict[str, Any] = dict(PRESETS[args.preset]) if args.preset else {}
    policy_kwargs = dict(kwargs.pop("policy_kwargs", {}))
    if args.model_size is not None:
        policy_kwargs["model_size"] = args.model_size
    kwargs.update(
        learning_starts=args.warmup_steps,
        batch_size=args.batch_size or kwargs.get("batch_size", 256),
        buffer_size=args.warmup_steps + args.agent_steps + 1000,
        policy_kwargs=policy_kwargs,
        seed=args.seed,
        device=device,
        compile=args.compile,
        precision=args.precision,
    )
    model = BOOM("MlpPolicy", env, **kwargs)
    # Random warm-up plus its pre-training burst; then a few planned steps so every path is warm.
    model.learn(args.warmup_steps + 10)
    policy = model.policy
    policy.set_training_mode(False)
    obs = th.as_tensor(env.reset(), device=device)
    obs = policy.flatten_observation(obs)
    mean = None

    def plan_once() -> None:
        nonlocal mean
        mean = policy.plan(obs, mean).mean

    def update_once() -> None:
        model.train(gradient_steps=1, batch_size=model.batch_size)

    plan_s = median_seconds(plan_once, args.repeats, warmup=5, device=device)
    update_s = median_seconds(update_once, args.repeats, warmup=5, device=device)
    plan_flops = count_flops(plan_once)
    update_flops = count_flops(update_once)
    if args.profile:
        print(profile_table(plan_once, args.repeats, "planning"))
        print(profile_table(update_once, args.repeats, "update"))

    start, steps_before = time.perf_counter(), model.num_timesteps
    model.learn(args.agent_steps, reset_num_timesteps=False)
    synchronize(device)
    elapsed = time.perf_counter() - start
    agent_steps = (model.num_timesteps - steps_before) / args.n_envs  # per env, as a user counts them
    return {
        "plan_ms": 1e3 * plan_s,
        "update_ms": 1e3 * update_s,
        "plan_gflop": plan_flops / 1e9,
        "update_gflop": update_flops / 1e9,
        "plan_gflops": plan_flops / plan_s / 1e9,
        "update_gflops": update_flops / update_s / 1e9,
        "agent_steps_per_s": agent_steps / elapsed,
        "env_steps_per_s": agent_steps * action_repeat * args.n_envs / elapsed,
        "parameters": sum(p.numel() for p in policy.parameters()),
        "replay_bytes_per_transition": model.replay_buffer.bytes_per_slot,
        "action_repeat": action_repeat,
        "settings": {
            "num_samples": model.num_samples,
            "num_elites": model.num_elites,
            "num_pi_trajs": model.num_pi_trajs,
            "iterations": model.iterations,
            "horizon": model.horizon,
            "batch_size": model.batch_size,
            "policy_kwargs": {k: getattr(policy, k) for k in ("latent_dim", "mlp_dim", "enc_dim", "num_q")},
        },
    }


def measure_sac(args: argparse.Namespace, device: th.device) -> float:
    """SB3 SAC (default arguments) agent steps/s on the same env, after its warm-up."""
    from stable_baselines3 import SAC

    env, _ = make_env(args.env, args.n_envs, args.seed)
    model = SAC("MlpPolicy", env, learning_starts=100, seed=args.seed, device=device)
    model.learn(200)
    start, steps_before = time.perf_counter(), model.num_timesteps
    model.learn(args.sac_steps, reset_num_timesteps=False)
    return (model.num_timesteps - steps_before) / args.n_envs / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env", default="dm_control/cartpole-swingup-v0")
    parser.add_argument("--model-size", type=int, default=None, help="policy_kwargs model_size (default: 5, or the preset's)")
    parser.add_argument("--preset", choices=sorted(PRESETS), default=None, help="a named preset of sb3_boom.presets")
    parser.add_argument("--n-envs", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--compile", action="store_true", help="BOOM(compile=True)")
    parser.add_argument(
        "--precision",
        choices=["float32", "bfloat16"],
        default="float32",
        help="BOOM(precision=...); the peak is then measured in that dtype too",
    )
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--warmup-steps", type=int, default=100)
    parser.add_argument("--agent-steps", type=int, default=50, help="learn() steps timed end to end")
    parser.add_argument("--sac", action="store_true", help="also time SB3's SAC on the same env")
    parser.add_argument("--sac-steps", type=int, default=500)
    parser.add_argument("--profile", action="store_true", help="print torch.profiler tables")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", type=pathlib.Path, default=DEFAULT_OUTPUT, help="JSON-lines file to append to")
    args = parser.parse_args()

    if args.threads is not None:
        th.set_num_threads(args.threads)
    device = th.device(args.device)
    peak = matmul_peak_flops(device, dtype=getattr(th, args.precision))
    row: dict[str, Any] = {
        "time": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "env": args.env,
        "model_size": args.model_size,
        "preset": args.preset,
        "n_envs": args.n_envs,
        "device": str(device),
        "compile": args.compile,
        "precision": args.precision,
        "torch_threads": th.get_num_threads(),
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cpus",
        **cpu_description(),
        "torch": th.__version__,
        "matmul_peak_gflops": peak / 1e9,
        **measure_boom(args, device),
    }
    row["plan_peak_pct"] = 100 * row["plan_gflops"] / row["matmul_peak_gflops"]
    row["update_peak_pct"] = 100 * row["update_gflops"] / row["matmul_peak_gflops"]
    row["peak_host_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    if device.type == "cuda":
        row["peak_device_mb"] = th.cuda.max_memory_allocated(device) / 2**20
    if args.sac:
        row["sac_agent_steps_per_s"] = measure_sac(args, device)

    print(f"{args.env}  size {args.model_size}  preset {args.preset}  n_envs {args.n_envs}  {device}  "
          f"compile {args.compile}  {args.precision}  threads {row['torch_threads']}  settings {row['settings']}")  # fmt: skip
    print(f"{'':22s}{'ms':>10s}{'GFLOP':>10s}{'GFLOP/s':>10s}{'% peak':>8s}")
    for name in ("plan", "update"):
        print(f"{name:22s}{row[name + '_ms']:10.2f}{row[name + '_gflop']:10.3f}"
              f"{row[name + '_gflops']:10.1f}{row[name + '_peak_pct']:8.1f}")  # fmt: skip
    print(f"{'matmul peak':22s}{'':20s}{row['matmul_peak_gflops']:10.1f}")
    print(f"agent steps/s {row['agent_steps_per_s']:.2f}   env steps/s {row['env_steps_per_s']:.2f}")
    print(f"peak host memory {row['peak_host_mb']:.0f} MB   replay {row['replay_bytes_per_transition']} B/transition")
    if args.sac:
        print(f"SB3 SAC agent steps/s {row['sac_agent_steps_per_s']:.2f}")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    with args.output.open("a") as file:
        file.write(json.dumps(row) + "\n")
    print(f"appended to {args.output}", file=sys.stderr)


if __name__ == "__main__":
    main()
