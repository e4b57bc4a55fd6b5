"""
Before/after of sb3-boom's CPU speed-ups, interleaved in one process so that a busy machine slows
both sides alike: the update with fused Adam vs. multi-tensor and per-parameter-loop Adam, and
planning and the update with sb3-boom's Mish (sigmoid form, closed-form backward) vs. ``F.mish``
and vs. its previous exp form (``--only mish-form``), with
sb3-boom's SimNorm softmax (short rows, closed-form backward) vs. ``F.softmax``, with the Q heads'
geometric-gap dropout vs. ``F.dropout``, in float32 vs. ``precision="bfloat16"`` (bf16 autocast),
bf16 with its float32 encoder and output layers (dynamics, reward, Q) vs. bf16 with a bf16 encoder
vs. bf16 throughout, planning with each
environment's start latent shared by its samples (the first layers multiply it once) vs. given
per sample (MPPI's value estimate only; the prior's proposals share it in both), planning with
the prior's proposals rolled out once per call vs. again in every MPPI iteration, the update
with the policy loss's Q input given as latent and action apart (only the action's input gradient
formed) vs. concatenated, and with ``--compile PRECISION`` eager vs. ``BOOM(compile=True)`` in that
precision (compiled before timing; compare with the eager row of the same precision), and planning and the update
with the Q heads' dropout in the training losses only (``q_dropout="train"``) vs. also in the planner
and the TD target (``q_dropout="always"``).

    python -m studies.ab_speedups --threads 2 --model-size 1
    python -m studies.ab_speedups --threads 1 --model-size cpu
    python -m studies.ab_speedups --threads 1 --model-size 1 --compile bfloat16
    python -m studies.ab_speedups --threads 1 --model-size 5 --only start-latent --repeats 30
    python -m studies.ab_speedups --threads 1 --model-size 5 --only pi-rollout --repeats 30
    python -m studies.ab_speedups --threads 1 --model-size 5 --only mish-form --repeats 20
    python -m studies.ab_speedups --threads 1 --model-size 5 --only precision --repeats 10
    python -m studies.ab_speedups --threads 1 --model-size 5 --only q-split --repeats 30
    python -m studies.ab_speedups --threads 1 --model-size cpu --only q-dropout --repeats 30

``--only start-latent`` times just the planner with and without the shared start latent,
``--only pi-rollout`` just the planner with the proposals rolled out once and in every iteration
(and prints both calls' matmul FLOPs),
``--only q-split`` just the update with the split and the concatenated Q input (and prints both
updates' matmul FLOPs), ``--only precision`` just the update and the planner in float32 and in the bf16 variants,
and ``--only q-dropout`` just the update and the planner in both dropout modes, so that many repeats fit in little time.
"""

import argparse
import statistics
import time
import types
from collections.abc import Callable

import torch as th
import torch.nn.functional as F

import sb3_boom.planner as planner_module
import sb3_boom.torch_layers as layers_module  # the layers look the CPU kernels up in this module
from benchmarks.throughput import count_flops, make_env
from sb3_boom import BOOM
from sb3_boom.planner import estimate_value
from sb3_boom.presets import PRESETS
from studies.research_switches import set_float32_encoder, set_float32_outputs

OPTIMIZERS = {
    "fused Adam": dict(fused=True),
    "multi-tensor Adam": dict(fused=False, foreach=True),
    "per-parameter Adam": dict(fused=False, foreach=False),
}


def seconds(function: Callable[[], object]) -> float:
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


def value_of_per_sample_latents(model, z: th.Tensor, actions: th.Tensor, gamma: float, rolled_out=None) -> th.Tensor:
    """The planner's value estimate with the start latent repeated for every sample (the plain path)."""
    return estimate_value(model, z.expand(-1, actions.shape[2], -1), actions, gamma, rolled_out)


def plan_rolling_out_proposals_every_iteration(policy, obs: th.Tensor) -> None:
    """One planning call with the prior's proposals rolled out again in every MPPI iteration, with the
    sampled sequences (the plain path), instead of once per call."""
    original_rollout, proposals = planner_module.rollout, []

    def capture_proposals(model, z: th.Tensor, actions: th.Tensor, gamma: float) -> tuple[th.Tensor, th.Tensor]:
        # The planner's first rollout is the proposals': keep their actions and skip it.
        planner_module.rollout = original_rollout
        proposals.append(actions)
        batch = actions.shape[1:-1]
        return th.zeros(batch), th.zeros(*batch, policy.latent_dim)

    def value(model, z: th.Tensor, sampled: th.Tensor, gamma: float, rolled_out=None) -> th.Tensor:
        return estimate_value(model, z, th.cat([proposals[0], sampled], dim=2), gamma)

    planner_module.rollout, policy._value_program = capture_proposals, value
    try:
        policy.plan(obs)
    finally:
        planner_module.rollout, policy._value_program = original_rollout, estimate_value


class _ExpFormMish(th.autograd.Function):
    """sb3-boom's Mish before the sigmoid form: ``x n / (n + 2)`` with ``n = e^x (e^x + 2)``, and the
    closed-form derivative through ``sigmoid``."""

    @staticmethod
    def forward(ctx, x: th.Tensor) -> th.Tensor:
        e = x.clamp(max=20.0).exp_()
        n = e.add(2.0).mul_(e)
        t = n.div_(n + 2.0)
        ctx.save_for_backward(x, t)
        return x * t

    @staticmethod
    def backward(ctx, grad_output: th.Tensor) -> th.Tensor:
        x, t = ctx.saved_tensors
        return grad_output * (t + x * th.sigmoid(x) * (1.0 - t * t))


def exp_form_mish(x: th.Tensor) -> th.Tensor:
    if x.numel() < 8192:
        return F.mish(x)
    if x.requires_grad and th.is_grad_enabled():
        return _ExpFormMish.apply(x)
    e = x.clamp(max=20.0).exp_()
    n = e.add(2.0).mul_(e)
    return x * n.div_(n + 2.0)


def concatenated_q_logits(self, z: th.Tensor, action: th.Tensor, heads=None, target: bool = False) -> th.Tensor:
    """Q logits of the concatenated input, also in the policy loss (the plain path)."""
    ensemble = self.q_target if target else self.q_ensemble
    return self._forward(ensemble, th.cat([z, action], dim=-1), heads)


# Precision variants: (precision, float32 encoder, float32 output layers); the first two as shipped.
PRECISION_VARIANTS = {
    "float32": ("float32", True, True),
    "bfloat16": ("bfloat16", True, True),
    "bfloat16, bf16 encoder": ("bfloat16", False, True),
    "bfloat16 throughout": ("bfloat16", False, False),
}


def set_precision_variant(policy, name: str) -> None:
    precision, float32_encoder, float32_outputs = PRECISION_VARIANTS[name]
    policy.precision = precision
    set_float32_encoder(policy, float32_encoder)
    set_float32_outputs(policy, float32_outputs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env", default="dm_control/cartpole-swingup-v0")
    parser.add_argument("--model-size", type=lambda text: text if text == "cpu" else int(text), default=1)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument(
        "--compile",
        choices=["off", "float32", "bfloat16"],
        default="off",
        help="also time BOOM(compile=True) in this precision",
    )
    parser.add_argument(
        "--only",
        choices=["start-latent", "pi-rollout", "mish-form", "q-split", "precision", "q-dropout"],
        default=None,
        help="time only this comparison",
    )
    args = parser.parse_args()

    th.set_num_threads(args.threads)
    env, _ = make_env(args.env, 1, 0)
    # "cpu": the cpu preset's planner and batch too; TD-MPC2 sizes: BOOM's defaults.
    settings = (
        {key: value for key, value in PRESETS["cpu"].items() if key != "policy_kwargs"} if args.model_size == "cpu" else {}
    )
    models = {}
    for name, optimizer_kwargs in OPTIMIZERS.items():
        policy_kwargs = dict(model_size=args.model_size, optimizer_kwargs=optimizer_kwargs)
        models[name] = BOOM(
            "MlpPolicy", env, policy_kwargs=policy_kwargs, learning_starts=100, buffer_size=2000, seed=0, **settings
        )
        models[name].learn(110)
    policy = models["fused Adam"].policy
    compiled = None
    if args.compile != "off":
        compiled = BOOM(
            "MlpPolicy",
            env,
            policy_kwargs=dict(model_size=args.model_size),
            learning_starts=100,
            buffer_size=2000,
            seed=0,
            precision=args.compile,
            compile=True,
            **settings,
        )
        compiled.learn(110)  # compiles the update's losses and the planner's value estimate
    obs = policy.flatten_observation(th.as_tensor(env.reset()))
    ours = (layers_module.mish, layers_module.short_row_softmax, layers_module.dropout)
    # Each variant swaps one of sb3-boom's CPU kernels back to torch's own.
    kernel_variants = {
        "sb3-boom kernels": ours,
        "F.mish": (F.mish, ours[1], ours[2]),
        "F.softmax": (ours[0], lambda x: F.softmax(x, dim=-1), ours[2]),
        "F.dropout": (ours[0], ours[1], lambda x, p, training: F.dropout(x, p, training=training)),
    }

    def plan_seconds(value_program: Callable[..., th.Tensor]) -> float:
        """One planning call with ``value_program`` as the planner's value estimate."""
        policy._value_program = value_program
        try:
            return seconds(lambda: policy.plan(obs))
        finally:
            policy._value_program = estimate_value

    def update_seconds(concatenated: bool) -> float:
        """One update of the fused-Adam model, its policy loss's Q input split or concatenated."""
        if concatenated:
            policy.q_logits = types.MethodType(concatenated_q_logits, policy)
        try:
            return seconds(lambda: fused.train(1, batch_size=fused.batch_size))
        finally:
            policy.__dict__.pop("q_logits", None)

    everything = args.only is None
    times: dict[str, list[float]] = {}
    if everything:
        times.update({f"update, {name}": [] for name in OPTIMIZERS})
        times.update({f"update, fused Adam, {name}": [] for name in kernel_variants})
        times.update({f"plan, {name}": [] for name in kernel_variants})
        times["plan, start latent per sample"] = []
        times["update, Q input concatenated"] = []
    if everything or args.only == "precision":
        times.update({f"{kind}, {name}": [] for name in PRECISION_VARIANTS for kind in ("update", "plan")})
    if args.only == "start-latent":
        times = {"plan, sb3-boom kernels": [], "plan, start latent per sample": []}
    if args.only == "pi-rollout":
        times = {"plan, proposals rolled out once": [], "plan, proposals rolled out every iteration": []}
    if args.only == "mish-form":
        times = {f"{kind}, Mish {form} form": [] for form in ("exp", "sigmoid") for kind in ("update", "plan")}
    if args.only == "q-split":
        times = {"update, fused Adam, sb3-boom kernels": [], "update, Q input concatenated": []}
    if args.only == "q-dropout":
        times = {f"{kind}, q_dropout={mode}": [] for mode in ("train", "always") for kind in ("update", "plan")}
    if compiled is not None:
        times.update({f"{kind}, compile=True, {args.compile}": [] for kind in ("update", "plan")})
    fused = models["fused Adam"]
    for _ in range(args.repeats + 3):  # the first 3 rounds warm up and are dropped
        if compiled is not None:  # timed with sb3-boom's kernels in place, which it was compiled with
            times[f"update, compile=True, {args.compile}"].append(
                seconds(lambda: compiled.train(1, batch_size=compiled.batch_size))  # type: ignore[union-attr]
            )
            times[f"plan, compile=True, {args.compile}"].append(seconds(lambda: compiled.policy.plan(obs)))  # type: ignore[union-attr]
        if args.only == "start-latent":
            times["plan, start latent per sample"].append(plan_seconds(value_of_per_sample_latents))
            times["plan, sb3-boom kernels"].append(plan_seconds(estimate_value))
            continue
        if args.only == "pi-rollout":
            times["plan, proposals rolled out every iteration"].append(
                seconds(lambda: plan_rolling_out_proposals_every_iteration(policy, obs))
            )
            times["plan, proposals rolled out once"].append(seconds(lambda: policy.plan(obs)))
            continue
        if args.only == "mish-form":
            for form, function in (("exp", exp_form_mish), ("sigmoid", ours[0])):
                layers_module.mish = function
                times[f"update, Mish {form} form"].append(seconds(lambda: fused.train(1, batch_size=fused.batch_size)))
                times[f"plan, Mish {form} form"].append(seconds(lambda: policy.plan(obs)))
            layers_module.mish = ours[0]
            continue
        if args.only == "q-split":
            times["update, Q input concatenated"].append(update_seconds(concatenated=True))
            times["update, fused Adam, sb3-boom kernels"].append(update_seconds(concatenated=False))
            continue
        if args.only == "q-dropout":
            for mode in ("train", "always"):
                policy.set_q_dropout(mode)
                times[f"update, q_dropout={mode}"].append(seconds(lambda: fused.train(1, batch_size=fused.batch_size)))
                times[f"plan, q_dropout={mode}"].append(seconds(lambda: policy.plan(obs)))
            continue
        if everything or args.only == "precision":
            for name in PRECISION_VARIANTS:
                set_precision_variant(policy, name)
                times[f"update, {name}"].append(seconds(lambda: fused.train(1, batch_size=fused.batch_size)))
                times[f"plan, {name}"].append(seconds(lambda: policy.plan(obs)))
            set_precision_variant(policy, "float32")
        if not everything:
            continue
        for name, model in models.items():
            times[f"update, {name}"].append(seconds(lambda model=model: model.train(1, batch_size=model.batch_size)))
        for name, kernels in kernel_variants.items():
            layers_module.mish, layers_module.short_row_softmax, layers_module.dropout = kernels
            times[f"update, fused Adam, {name}"].append(seconds(lambda: fused.train(1, batch_size=fused.batch_size)))
            times[f"plan, {name}"].append(seconds(lambda: policy.plan(obs)))
        layers_module.mish, layers_module.short_row_softmax, layers_module.dropout = ours
        times["plan, start latent per sample"].append(plan_seconds(value_of_per_sample_latents))
        times["update, Q input concatenated"].append(update_seconds(concatenated=True))
    print(f"{args.env}, model size {args.model_size}, {args.threads} threads, median of {args.repeats}")
    if args.only == "start-latent":
        for label, value_program in (("shared", estimate_value), ("per sample", value_of_per_sample_latents)):
            policy._value_program = value_program
            flops = count_flops(lambda: policy.plan(obs))
            print(f"  plan matmul GFLOP, start latent {label}: {flops / 1e9:.2f}")
        policy._value_program = estimate_value
    if args.only == "pi-rollout":
        for label, call in (
            ("once", lambda: policy.plan(obs)),
            ("every iteration", lambda: plan_rolling_out_proposals_every_iteration(policy, obs)),
        ):
            print(f"  plan matmul GFLOP, proposals rolled out {label}: {count_flops(call) / 1e9:.2f}")
    if args.only == "q-split":
        for label, concatenated in (("split", False), ("concatenated", True)):
            flops = count_flops(lambda concatenated=concatenated: update_seconds(concatenated))
            print(f"  update matmul GFLOP, policy loss's Q input {label}: {flops / 1e9:.2f}")
    for label, values in times.items():
        print(f"  {label:36s} {1e3 * statistics.median(values[3:]):8.1f} ms")


if __name__ == "__main__":
    main()
