"""
A lower bound on the time of one planning call and of one update on this machine, from the work
they must do: their matmul FLOPs at the machine's matmul peak, plus their transcendental
elementwise operations (exp, tanh, sigmoid, log, softmax, ...) at torch's cost per element, both
measured in this run. Everything else (LayerNorm, the other elementwise passes, memory traffic,
Python) counts as free, so no implementation built on these kernels can be faster without doing
less work. Given target times (half the authors' times, from ``compare_authors.py``), it says how
much of each target the floor already takes.

    python -m studies.speed_floor --env dm_control/cartpole-swingup-v0 --model-size 1 --threads 1
    python -m studies.speed_floor --model-size 5 --threads 1 --target-plan-ms 431 --target-update-ms 338

The operations are counted on the eager path (a ``TorchDispatchMode``, as ``FlopCounterMode``
counts matmuls); a compiled program evaluates the same transcendentals once per element too. Each
operation's cost per element is the median of calls on a float32 ``[1536, 384]`` tensor (softmax
and log-softmax over rows of 101, the bins of the reward and Q heads).
"""

import argparse
import collections
import json
import pathlib
import time
from typing import Any

import torch as th
from torch.utils._python_dispatch import TorchDispatchMode

from benchmarks.throughput import count_flops, cpu_description, make_env, matmul_peak_flops, median_seconds
from sb3_boom import BOOM

DEFAULT_OUTPUT = pathlib.Path(__file__).resolve().parents[1] / "benchmarks" / "results" / "speed_floor.jsonl"
aten = th.ops.aten

# Operator -> the family it is timed as. Forward and backward passes of the same function share a family
# where their cost is of the same kind (one transcendental per element).
TRANSCENDENTALS = {
    aten.exp.default: "exp",
    aten.exp_.default: "exp",
    aten.tanh.default: "tanh",
    aten.tanh_.default: "tanh",
    aten.sigmoid.default: "sigmoid",
    aten.sigmoid_.default: "sigmoid",
    aten.log.default: "log",
    aten.log_.default: "log",
    aten.log1p.default: "log1p",
    aten.expm1.default: "expm1",
    aten.mish.default: "mish",
    aten.softplus.default: "softplus",
    aten._softmax.default: "softmax",
    aten._log_softmax.default: "log_softmax",
    aten._log_softmax_backward_data.default: "log_softmax_backward",
}


class TranscendentalCounter(TorchDispatchMode):
    """Counts the output elements of every transcendental operator called, by family."""

    def __init__(self) -> None:
        super().__init__()
        self.elements: collections.Counter[str] = collections.Counter()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
        out = func(*args, **(kwargs or {}))
        family = TRANSCENDENTALS.get(func)
        if family is not None:
            self.elements[family] += out.numel()
        return out


def seconds_per_element(family: str, repeats: int = 50) -> float:
    """Median time per element of one call of ``family`` on a float32 tensor in cache."""
    x = th.randn(1536, 384)
    rows = th.randn(5760, 101)  # about as many elements, in rows of 101 bins
    calls = {
        "exp": lambda: th.exp(x),
        "tanh": lambda: th.tanh(x),
        "sigmoid": lambda: th.sigmoid(x),
        "log": lambda: th.log(x.abs()),
        "log1p": lambda: th.log1p(x.abs()),
        "expm1": lambda: th.expm1(x),
        "mish": lambda: th.nn.functional.mish(x),
        "softplus": lambda: th.nn.functional.softplus(x),
        "softmax": lambda: th.softmax(rows, dim=-1),
        "log_softmax": lambda: th.log_softmax(rows, dim=-1),
        "log_softmax_backward": lambda: aten._log_softmax_backward_data(rows, rows, -1, th.float32),
    }
    numel = rows.numel() if family.startswith(("softmax", "log_softmax")) else x.numel()
    if family in ("log", "log1p"):  # the abs() is timed apart and subtracted
        return (median_seconds(calls[family], repeats, 5, x.device) - median_seconds(x.abs, repeats, 5, x.device)) / numel
    return median_seconds(calls[family], repeats, 5, x.device) / numel


def count_transcendentals(function: Any) -> collections.Counter[str]:
    with th.compiler.set_stance("force_eager"), TranscendentalCounter() as counter:
        function()
    return counter.elements


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env", default="dm_control/cartpole-swingup-v0")
    parser.add_argument("--model-size", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--compile", action="store_true", help="time BOOM(compile=True) (the floor is the same)")
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--target-plan-ms", type=float, default=None, help="e.g. half the authors' planning time")
    parser.add_argument("--target-update-ms", type=float, default=None, help="e.g. half the authors' update time")
    parser.add_argument("--output", type=pathlib.Path, default=DEFAULT_OUTPUT)
    args = parser.parse_args()
    if args.threads is not None:
        th.set_num_threads(args.threads)

    env, _ = make_env(args.env, 1, 0)
    model = BOOM(
        "MlpPolicy",
        env,
        policy_kwargs=dict(model_size=args.model_size),
        learning_starts=300,
        buffer_size=2000,
        seed=0,
        compile=args.compile,
    )
    model.learn(310)  # random warm-up, its pre-training burst, then planned steps
    policy = model.policy
    policy.set_training_mode(False)
    obs = policy.flatten_observation(th.as_tensor(env.reset()))
    calls = {
        "plan": lambda: policy.plan(obs),
        "update": lambda: model.train(gradient_steps=1, batch_size=model.batch_size),
    }
    measured = {kind: median_seconds(call, args.repeats, warmup=3, device=obs.device) for kind, call in calls.items()}
    peak = matmul_peak_flops(obs.device)
    targets = {"plan": args.target_plan_ms, "update": args.target_update_ms}

    rows = []
    print(f"{args.env}, model size {args.model_size}, {th.get_num_threads()} threads, compile {args.compile}")
    print(f"matmul peak {peak / 1e9:.1f} GFLOP/s")
    cost = {}
    for kind, call in calls.items():
        flops = count_flops(call)
        elements = count_transcendentals(call)
        for family in elements:
            if family not in cost:
                cost[family] = seconds_per_element(family)
        matmul_ms = 1e3 * flops / peak
        transcendental_ms = {family: 1e3 * n * cost[family] for family, n in elements.items()}
        floor_ms = matmul_ms + sum(transcendental_ms.values())
        row: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S"),
            "env": args.env,
            "model_size": args.model_size,
            "threads": th.get_num_threads(),
            "compile": args.compile,
            "call": kind,
            "measured_ms": 1e3 * measured[kind],
            "matmul_gflop": flops / 1e9,
            "matmul_peak_gflops": peak / 1e9,
            "matmul_floor_ms": matmul_ms,
            "transcendental_elements": dict(elements),
            "ns_per_element": {family: 1e9 * cost[family] for family in elements},
            "transcendental_ms": transcendental_ms,
            "floor_ms": floor_ms,
            "target_ms": targets[kind],
            "torch": th.__version__,
            **cpu_description(),
        }
        rows.append(row)
        print(f"\n{kind}: measured {row['measured_ms']:.1f} ms; floor {floor_ms:.1f} ms")
        print(f"  matmuls            {flops / 1e9:8.2f} GFLOP at the peak   {matmul_ms:8.1f} ms")
        for family, n in sorted(elements.items(), key=lambda item: -transcendental_ms[item[0]]):
            per_element = f"{n / 1e6:8.2f} M elements x {1e9 * cost[family]:.2f} ns"
            print(f"  {family:20s} {per_element}   {transcendental_ms[family]:8.1f} ms")
        if targets[kind] is not None:
            share = 100 * floor_ms / targets[kind]
            print(f"  target {targets[kind]:.1f} ms: the floor is {share:.0f}% of it, {targets[kind] - floor_ms:+.1f} ms left")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    with args.output.open("a") as file:
        for row in rows:
            file.write(json.dumps(row) + "\n")
    print(f"\nRows appended to {args.output}")


if __name__ == "__main__":
    main()
