"""
Speed of sb3-boom side by side with the authors' BOOM code (molumitu/BOOM_MBRL) on CPU, in one
process, on the same dm_control tasks, model presets and planner settings. Prints a table and
appends one JSON row per (task, model size, side).

    python -m studies.compare_authors --authors-path /path/to/BOOM_MBRL
    python -m studies.compare_authors --authors-path /path/to/BOOM_MBRL --tasks cartpole-swingup --sizes 1 --repeats 10

Without ``--authors-path``, or when the authors' ``boom`` package does not import from it, the
script says so and exits 0. Their code is only imported, never shipped here. As published it does
not run on a machine without CUDA (its replay buffer hard-codes a CUDA device) nor with
gymnasium >= 1.0: point ``--authors-path`` at a copy made to run on CPU.

What is measured, for each task in ``--tasks`` and each model size in ``--sizes``:

- plan: one planning call on one observation, median of ``--repeats`` calls. Theirs:
  ``BOOM.act(obs)`` (encode, MPPI, back to the host). Ours: ``policy.plan`` called as
  ``BOOM._sample_action`` calls it in ``learn`` (observation to tensor, encode, MPPI with the
  warm-start mean, one transfer to the host).
- update: one gradient step with its replay sampling, median of ``--repeats`` calls. Theirs:
  ``Buffer.sample()`` then ``BOOM.update(batch)``. Ours: ``BOOM.train(gradient_steps=1)``.
- agent steps/s: plan + env step + buffer add + one update, over ``--agent-steps`` steps split into
  ``--agent-rounds`` rounds. Theirs: a loop doing what one step of their ``OnlineTrainer.train`` does
  (``act``, ``env.step``, ``to_td``, ``Buffer.add`` at episode ends, one ``sample`` and one
  ``update``). Ours: ``BOOM.learn(n, reset_num_timesteps=False)``, SB3's loop (DummyVecEnv,
  Monitor, callbacks and logger included).

The two sides alternate call by call (and round by round, in alternating order), so a busy machine
slows both alike; the speedups (theirs / ours for times, ours / theirs for steps/s) are the figures
to read. Both start from one episode of uniformly random actions in their buffer (their buffer takes
whole episodes only), skip the one-time pre-training burst that ends the warm-up, then make
``--warmup-calls`` untimed calls of each kind (their first calls also compile, see below).

Same work on both sides (checked at run time; a mismatch is printed and saved in the JSON rows):
TD-MPC2 presets 1 and 5 (enc_dim, mlp_dim, latent_dim, num_enc_layers, num_q), 101 bins, SimNorm
groups of 8 (off for 24 <= A <= 48, as in their code), dropout 0.01, reward head of 3 hidden layers;
parameter counts; horizon 3, num_samples 512, num_elites 64, num_pi_trajs 24, iterations 6 (8 when
A >= 20), batch 256, buffer capacity, one update per agent step, action repeat 2 (their dm_control
wrapper; ours rl_zoo3's ``FrameSkip(skip=2)`` on shimmy's ``dm_control/<task>-v0``), ``--threads``
torch threads for both. Remaining differences in the work done, which are part of what is compared:

- Q ensemble: in the planner's value, the TD target and the policy loss, their ``WorldModel.Q``
  evaluates all ``num_q`` heads and then keeps two random ones; ours evaluates only the two. Same
  values; for preset 5 (``num_q=5``) theirs does 5/2 of that Q work (preset 1 has ``num_q=2``).
  Their heads run through ``torch.vmap`` over a functional module, ours through batched matmuls.
- torch.compile: their ``WorldModel`` compiles its six networks as shipped (on CPU: inductor's C++
  backend; the first calls take tens of seconds). On torch 2.13 the six go through one wrapper
  function whose compiled variants (per network, input shape and requires_grad state) share
  dynamo's recompile limit of 8: it is reached in the first act and update, and later (network,
  shape) pairs run eagerly. Ours runs eagerly unless ``--compile on`` (``BOOM(compile=True)``: the
  planning call and each update loss compiled whole); that raises dynamo's recompile limit to 64
  for the whole process, so their networks are then all compiled too.
  ``--authors-recompile-limit 64`` lifts that cap; ``--authors-compile off`` asks their copy not to
  compile (through the ``BOOM_COMPILE=0`` variable that the CPU copy must honour). The JSON rows
  record whether their networks were compiled and the limit in force.
- Optimizers: theirs ``torch.optim.Adam`` with its defaults (a per-parameter loop on CPU) and the
  default ``clip_grad_norm_``; ours whatever ``WorldModelPolicy`` builds by default (recorded).
- Replay: theirs torchrl's ``SliceSampler`` over a ``LazyTensorStorage`` with ``prefetch=1`` (the next
  batch is drawn in a background thread, so part of it overlaps the update; its cost grows with the
  number of stored steps); ours index arithmetic over numpy arrays. Their trainer draws 100 batches
  every 100 steps; here one batch is drawn per update, the same amortised count.
- Per step, their loop builds a TensorDict per transition and concatenates an episode's at its end;
  ours writes numpy slots. Their updates read 9 statistics back with ``.item()``; ours one stacked
  tensor per ``train`` call, plus SB3's logging and a NaN check.
- Environments: their wrappers around ``dm_control.suite`` vs shimmy + gymnasium wrappers + SB3's
  DummyVecEnv and Monitor (same physics and action repeat; the env's share is in the agent steps).
- Their evaluation episodes (every 50k steps in their trainer) are not run.
"""

import argparse
import contextlib
import importlib
import io
import json
import logging
import os
import pathlib
import platform
import statistics
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from types import ModuleType
from typing import Any
from unittest import mock

import gymnasium as gym
import numpy as np
import torch as th

from benchmarks.throughput import count_flops, cpu_description, matmul_peak_flops
from sb3_boom.envs import make_dmc

DEFAULT_OUTPUT = pathlib.Path(__file__).resolve().parents[1] / "benchmarks" / "results" / "compare_authors.jsonl"
AUTHORS_MODULES = (
    "boom.common.parser",
    "boom.common.seed",
    "boom.common.buffer",
    "boom.envs",
    "boom.boom_alg",
    "boom.trainer.online_trainer",
)
SIDES = ("authors", "sb3_boom")


@dataclass(frozen=True)
class SharedSettings:
    """Settings given to both sides."""

    num_samples: int = 512
    num_elites: int = 64
    num_pi_trajs: int = 24
    horizon: int = 3
    batch_size: int = 256
    buffer_size: int = 1_000_000
    seed: int = 0


@dataclass
class Timings:
    """Wall times of one side, in seconds."""

    plan: list[float]
    update: list[float]
    agent_rounds: list[tuple[int, float]]  # (steps, seconds) per round

    def summary(self) -> dict[str, Any]:
        steps = sum(n for n, _ in self.agent_rounds)
        seconds = sum(s for _, s in self.agent_rounds)
        return {
            "plan_ms": 1e3 * statistics.median(self.plan),
            "plan_ms_quartiles": [1e3 * float(q) for q in np.percentile(self.plan, [25, 75])],
            "update_ms": 1e3 * statistics.median(self.update),
            "update_ms_quartiles": [1e3 * float(q) for q in np.percentile(self.update, [25, 75])],
            "agent_steps_per_s": steps / seconds,
            "agent_steps_per_s_rounds": [n / s for n, s in self.agent_rounds],
            "agent_steps": steps,
        }


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """Silence the prints of the authors' code (architecture, buffer size, paths)."""
    with contextlib.redirect_stdout(io.StringIO()):
        yield


def timed(function: Callable[[], Any]) -> float:
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


def import_authors(path: pathlib.Path) -> dict[str, ModuleType]:
    """Import the authors' ``boom`` package from ``path``; raises ImportError (or anything it raised)."""
    if not (path / "boom" / "boom_alg.py").is_file():
        raise ImportError(f"{path / 'boom' / 'boom_alg.py'} not found")
    sys.path.insert(0, str(path))
    with quiet():
        modules = {name: importlib.import_module(name) for name in AUTHORS_MODULES}
    origin = pathlib.Path(modules["boom.boom_alg"].__file__ or "").resolve()
    if path.resolve() not in origin.parents:
        raise ImportError(f"'boom' was imported from {origin}, not from {path}")
    return modules


def authors_config(path: pathlib.Path, modules: dict[str, ModuleType], overrides: dict[str, Any]) -> Any:
    """Their config.yaml with ``overrides`` over it and their logging off, parsed as their train.py parses it."""
    from omegaconf import OmegaConf

    cfg = OmegaConf.load(path / "boom" / "config.yaml")
    cfg.pop("defaults", None)  # hydra's launcher override: not used here
    cfg.update(overrides)
    cfg.disable_wandb, cfg.save_csv, cfg.save_video, cfg.save_agent = True, False, False, False
    # parse_cfg applies the model preset; it also asks hydra for the launch directory (for logs).
    with mock.patch("hydra.utils.get_original_cwd", return_value=os.getcwd()):
        return modules["boom.common.parser"].parse_cfg(cfg)


class AuthorsSide:
    """The authors' agent, replay buffer and dm_control env, driven as their online trainer does."""

    def __init__(
        self,
        modules: dict[str, ModuleType],
        path: pathlib.Path,
        task: str,
        model_size: int,
        settings: SharedSettings,
        compile_models: bool,
    ):
        overrides = dict(task=task, model_size=model_size, seed=settings.seed)
        for key in ("num_samples", "num_elites", "num_pi_trajs", "horizon", "batch_size", "buffer_size"):
            overrides[key] = getattr(settings, key)
        cfg = authors_config(path, modules, overrides)
        os.environ["BOOM_COMPILE"] = "1" if compile_models else "0"
        with quiet():
            self.env = modules["boom.envs"].make_env(cfg)  # sets obs_shape, action_dim, episode_length
            self.agent = modules["boom.boom_alg"].BOOM(cfg)  # adds 2 iterations when A >= 20
            self.buffer = modules["boom.common.buffer"].Buffer(cfg)
            self.trainer = modules["boom.trainer.online_trainer"].OnlineTrainer(
                cfg=cfg, env=self.env, agent=self.agent, buffer=self.buffer, logger=None
            )
        self.cfg = cfg
        self.num_timesteps = 0
        self._start_episode()

    @property
    def compiled(self) -> bool:
        return hasattr(self.agent.model._dynamics, "_orig_mod")

    def _start_episode(self) -> None:
        self.obs = self.env.reset()[0]
        self.tds = [self.trainer.to_td(self.obs)]

    def _env_step(self, action: th.Tensor, mu: th.Tensor | None = None, std: th.Tensor | None = None) -> None:
        self.obs, reward, terminated, truncated, _ = self.env.step(action)
        self.tds.append(self.trainer.to_td(self.obs, action, mu, std, reward))
        self.num_timesteps += 1
        if terminated or truncated:
            with quiet():
                self.buffer.add(th.cat(self.tds))
            self._start_episode()

    def fill_buffer(self, min_steps: int) -> int:
        """Uniformly random actions until ``min_steps`` steps and a whole episode are stored."""
        while self.num_timesteps < min_steps or self.buffer.num_eps == 0:
            self._env_step(self.env.rand_act())  # to_td records mu = action, std = exp(log_std_max)
        return self.num_timesteps

    def plan(self) -> None:
        self.agent.act(self.obs, t0=len(self.tds) == 1)

    def update(self) -> None:
        self.agent.update(self.buffer.sample(), self.num_timesteps)

    def agent_steps(self, n_steps: int) -> None:
        for _ in range(n_steps):
            action, mu, std = self.agent.act(self.obs, t0=len(self.tds) == 1)
            self._env_step(action, mu, std)
            self.update()

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.agent.model.parameters())


def make_our_env(task: str) -> gym.Env:
    """``task`` (``<domain>-<task>``) as hyperparams/boom.yml makes it: flat float32 observations, action repeat 2."""
    return make_dmc(task)


class OursSide:
    """sb3-boom's BOOM on shimmy's dm_control env with action repeat 2."""

    def __init__(
        self,
        task: str,
        model_size: int,
        settings: SharedSettings,
        iterations: int,
        learning_starts: int,
        precision: str = "float32",
        compile_programs: bool = False,
    ):
        from sb3_boom import BOOM

        self.model = BOOM(
            "MlpPolicy",
            make_our_env(task),
            buffer_size=settings.buffer_size,
            learning_starts=learning_starts,
            batch_size=settings.batch_size,
            horizon=settings.horizon,
            iterations=iterations,
            num_samples=settings.num_samples,
            num_elites=settings.num_elites,
            num_pi_trajs=settings.num_pi_trajs,
            policy_kwargs=dict(model_size=model_size),
            precision=precision,
            compile=compile_programs,
            seed=settings.seed,
            device="cpu",
        )

    def fill_buffer(self, steps: int) -> None:
        """``steps`` uniformly random steps (all of them are warm-up: no update)."""
        self.model.learn(steps)
        # Skip the one-time pre-training burst (as many updates as warm-up steps) that the first
        # train() call would run: the authors' side skips theirs too.
        self.model._pretrained = True

    def plan(self) -> None:
        # As BOOM._sample_action does once learning has started.
        model = self.model
        obs_tensor, _ = model.policy.obs_to_tensor(model._last_obs)
        starts = th.as_tensor(model._episode_starts, device=model.device)
        result = model.policy.plan(model.policy.flatten_observation(obs_tensor), model._plan_mean, starts)
        model._plan_mean = result.mean
        th.cat([th.stack([result.action, result.planner_action, result.std]).flatten(), result.value]).cpu().numpy()

    def update(self) -> None:
        self.model.train(gradient_steps=1, batch_size=self.model.batch_size)

    def agent_steps(self, n_steps: int) -> None:
        self.model.learn(n_steps, reset_num_timesteps=False)

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.model.policy.parameters())


def describe_optimizer(optimizer: th.optim.Optimizer) -> str:
    options = {key: optimizer.defaults.get(key) for key in ("foreach", "fused")}
    return f"{type(optimizer).__name__} {options}"


def compare_settings(authors: AuthorsSide, ours: OursSide) -> tuple[dict[str, Any], list[str]]:
    """The settings that set the amount of work, side by side, and the ones that differ."""
    from sb3_boom.env_defaults import simnorm_enabled

    cfg, model, policy = authors.cfg, ours.model, ours.model.policy
    action_dim = int(cfg.action_dim)
    pairs: dict[str, tuple[Any, Any]] = {
        "obs_dim": (int(cfg.obs_shape["state"][0]), policy.obs_dim),
        "action_dim": (action_dim, policy.action_dim),
        "enc_dim": (cfg.enc_dim, policy.enc_dim),
        "num_enc_layers": (cfg.num_enc_layers, policy.num_enc_layers),
        "mlp_dim": (cfg.mlp_dim, policy.mlp_dim),
        "latent_dim": (cfg.latent_dim, policy.latent_dim),
        "num_q": (cfg.num_q, policy.num_q),
        "num_bins": (cfg.num_bins, policy.num_bins),
        "simnorm_dim": (cfg.simnorm_dim, policy.simnorm_dim),
        "simnorm": (not 24 <= action_dim <= 48, simnorm_enabled(policy.simnorm, action_dim)),
        "dropout": (cfg.dropout, policy.dropout),
        "horizon": (cfg.horizon, policy.planner.horizon),
        "iterations": (cfg.iterations, policy.planner.iterations),
        "num_samples": (cfg.num_samples, policy.planner.num_samples),
        "num_elites": (cfg.num_elites, policy.planner.num_elites),
        "num_pi_trajs": (cfg.num_pi_trajs, policy.planner.num_pi_trajs),
        "batch_size": (cfg.batch_size, model.batch_size),
        "buffer_capacity": (int(authors.buffer.capacity), int(model.buffer_size)),
        "parameters": (authors.num_parameters(), ours.num_parameters()),
        "discount": (round(float(authors.agent.discount), 6), round(float(model.gamma), 6)),
    }
    settings = {key: {"authors": a, "sb3_boom": b} for key, (a, b) in pairs.items()}
    mismatches = [f"{key}: authors {a} vs sb3_boom {b}" for key, (a, b) in pairs.items() if a != b]
    settings["torch_compile"] = {"authors": authors.compiled, "sb3_boom": bool(model.compile)}
    settings["optimizer"] = {
        "authors": describe_optimizer(authors.agent.optim),
        "sb3_boom": describe_optimizer(policy.optimizer),
    }
    return settings, mismatches


def run_pair(
    modules: dict[str, ModuleType], args: argparse.Namespace, task: str, model_size: int, settings: SharedSettings
) -> list[dict[str, Any]]:
    th.manual_seed(settings.seed)
    np.random.seed(settings.seed)
    load_start = os.getloadavg()
    authors = AuthorsSide(modules, args.authors_path, task, model_size, settings, args.authors_compile == "on")
    warmup_steps = authors.fill_buffer(args.warmup_steps)
    ours = OursSide(
        task, model_size, settings, int(authors.cfg.iterations), warmup_steps, args.precision, args.compile == "on"
    )
    ours.fill_buffer(warmup_steps)
    settings_table, mismatches = compare_settings(authors, ours)
    for line in mismatches:
        print(f"  WARNING: not the same work: {line}")
    sides = {"authors": authors, "sb3_boom": ours}

    start = time.perf_counter()
    for side in sides.values():  # compiles the authors' networks (and ours with --compile on) on the first calls
        for _ in range(args.warmup_calls):
            side.plan()
            side.update()
        side.agent_steps(args.warmup_calls)
    print(f"  warm-up calls: {time.perf_counter() - start:.1f} s")

    timings = {name: Timings([], [], []) for name in SIDES}
    for i in range(args.repeats):
        order = SIDES if i % 2 == 0 else SIDES[::-1]
        for name in order:
            timings[name].plan.append(timed(sides[name].plan))
        for name in order:
            timings[name].update.append(timed(sides[name].update))
    rounds = max(1, min(args.agent_rounds, args.agent_steps))
    for i in range(rounds):
        n_steps = args.agent_steps // rounds + int(i < args.agent_steps % rounds)
        for name in SIDES if i % 2 == 0 else SIDES[::-1]:
            timings[name].agent_rounds.append((n_steps, timed(lambda name=name, n=n_steps: sides[name].agent_steps(n))))

    summaries = {name: timings[name].summary() for name in SIDES}
    # After every timing: counting runs the calls eagerly (see throughput.count_flops).
    peak = matmul_peak_flops(th.device("cpu"), dtype=th.bfloat16 if args.precision == "bfloat16" else th.float32)
    for name, side in sides.items():
        summaries[name].update(arithmetic(side, summaries[name], peak))
    theirs, ours_summary = summaries["authors"], summaries["sb3_boom"]
    speedup = {
        "plan": theirs["plan_ms"] / ours_summary["plan_ms"],
        "update": theirs["update_ms"] / ours_summary["update_ms"],
        "agent_steps": ours_summary["agent_steps_per_s"] / theirs["agent_steps_per_s"],
    }
    # The share of the matmul peak that our calls, with their own FLOPs, would need to take half their time.
    two_x_needs = {
        kind: 100 * ours_summary[f"{kind}_gflop"] * 1e9 / (theirs[f"{kind}_ms"] / 2e3) / peak for kind in ("plan", "update")
    }
    common = {
        "time": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "task": task,
        "model_size": model_size,
        "threads": th.get_num_threads(),
        "repeats": args.repeats,
        "warmup_steps": warmup_steps,
        "warmup_calls": args.warmup_calls,
        "authors_compile": args.authors_compile,
        "sb3_boom_compile": args.compile,
        "precision": args.precision,
        "dynamo_recompile_limit": th._dynamo.config.recompile_limit,
        "shared_settings": asdict(settings),
        "settings": settings_table,
        "mismatches": mismatches,
        "matmul_peak_gflops": peak / 1e9,
        "loadavg_start": load_start,
        "loadavg_end": os.getloadavg(),
        "torch": th.__version__,
        "python": platform.python_version(),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
        **cpu_description(),
    }
    ours_only = {"speedup_vs_authors": speedup, "two_x_needs_pct_peak": two_x_needs}
    return [{**common, "side": name, **summaries[name], **(ours_only if name == "sb3_boom" else {})} for name in SIDES]


def arithmetic(side: "AuthorsSide | OursSide", summary: dict[str, Any], peak: float) -> dict[str, float]:
    """Matmul GFLOP of one planning call and of one update, and the share of ``peak`` (FLOP/s) they reach."""
    figures: dict[str, float] = {}
    for kind, call in (("plan", side.plan), ("update", side.update)):
        flops = count_flops(call)
        figures[f"{kind}_gflop"] = flops / 1e9
        figures[f"{kind}_pct_peak"] = 100 * flops / (summary[f"{kind}_ms"] / 1e3) / peak
    return figures


def print_table(rows: list[dict[str, Any]]) -> None:
    header = f"{'task':18s} {'size':>4s} {'side':9s} {'plan ms':>9s} {'update ms':>10s} {'steps/s':>8s}"
    header += "   speedup (plan, update, steps/s)"
    print(header)
    print("-" * len(header))
    for row in rows:
        speedup = row.get("speedup_vs_authors")
        ratios = f"x{speedup['plan']:.2f}  x{speedup['update']:.2f}  x{speedup['agent_steps']:.2f}" if speedup else ""
        print(
            f"{row['task']:18s} {row['model_size']:>4d} {row['side']:9s} {row['plan_ms']:9.1f} {row['update_ms']:10.1f} "
            f"{row['agent_steps_per_s']:8.2f}   {ratios}"
        )
    print()
    header = f"{'task':18s} {'size':>4s} {'side':9s} {'plan GFLOP':>10s} {'% peak':>7s} {'update GFLOP':>12s} {'% peak':>7s}"
    header += "   2x needs % peak (plan, update)"
    print(header)
    print("-" * len(header))
    for row in rows:
        needs = row.get("two_x_needs_pct_peak")
        print(
            f"{row['task']:18s} {row['model_size']:>4d} {row['side']:9s} {row['plan_gflop']:10.2f} "
            f"{row['plan_pct_peak']:7.1f} {row['update_gflop']:12.2f} {row['update_pct_peak']:7.1f}   "
            + (f"{needs['plan']:.1f}  {needs['update']:.1f}" if needs else "")
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--authors-path", type=pathlib.Path, default=None, help="folder holding the authors' 'boom' package")
    parser.add_argument("--tasks", nargs="+", default=["cartpole-swingup", "dog-run"], help="dm_control tasks, domain-task")
    parser.add_argument("--sizes", nargs="+", type=int, default=[1, 5], choices=[1, 5], help="TD-MPC2 model presets")
    parser.add_argument("--repeats", type=int, default=30, help="timed plan and update calls per side")
    parser.add_argument("--agent-steps", type=int, default=100, help="timed agent steps per side")
    parser.add_argument("--agent-rounds", type=int, default=4, help="interleaved rounds the agent steps are split into")
    parser.add_argument("--warmup-steps", type=int, default=500, help="random steps in the buffers (at least one episode)")
    parser.add_argument("--warmup-calls", type=int, default=3, help="untimed calls of each kind before timing")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (both sides)")
    parser.add_argument("--authors-compile", choices=["on", "off"], default="on", help="torch.compile in the authors' model")
    parser.add_argument(
        "--authors-recompile-limit",
        type=int,
        default=None,
        help="torch._dynamo recompile limit (default: torch's); their compiled networks share one limit",
    )
    parser.add_argument(
        "--precision",
        choices=["float32", "bfloat16"],
        default="float32",
        help="sb3-boom's BOOM(precision=...); the authors' code runs in float32 (a different numeric setting, say so)",
    )
    parser.add_argument(
        "--compile",
        choices=["on", "off"],
        default="off",
        help="sb3-boom's BOOM(compile=True): planning and the update's losses compiled (raises dynamo's "
        "recompile limit to 64, for both sides)",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", type=pathlib.Path, default=DEFAULT_OUTPUT, help="JSON lines file to append to")
    args = parser.parse_args()

    os.environ.setdefault("MUJOCO_GL", "disable")  # no rendering here
    warnings.filterwarnings("ignore", message=".*functorch.combine_state_for_ensemble.* is deprecated")
    if args.authors_path is None:
        print("No --authors-path given: nothing to compare against. Pass the folder of a CPU-runnable copy of")
        print("the authors' code (molumitu/BOOM_MBRL, the folder that holds 'boom/'), e.g. --authors-path ../BOOM_MBRL")
        return
    try:
        modules = import_authors(args.authors_path)
    except Exception as error:  # any failure of their imports: missing deps, wrong folder, ...
        print(f"The authors' code does not import from {args.authors_path}: {type(error).__name__}: {error}")
        print("Nothing compared. Check the folder (it must hold 'boom/boom_alg.py') and their dependencies")
        print("(torchrl, tensordict, hydra-core, termcolor, dm_control).")
        return

    th.set_num_threads(args.threads)
    if args.authors_recompile_limit is not None:  # with --compile on, ours raises it to at least 64
        th._dynamo.config.recompile_limit = args.authors_recompile_limit
    logging.getLogger("torchrl").setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", module="gymnasium")
    settings = SharedSettings(seed=args.seed)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    print(f"authors' code: {args.authors_path.resolve()}   torch {th.__version__}, {th.get_num_threads()} threads, "
          f"authors' torch.compile {args.authors_compile}, ours in {args.precision} with torch.compile {args.compile}, "
          f"load average {os.getloadavg()[0]:.2f}")  # fmt: skip

    all_rows = []
    for task in args.tasks:
        for model_size in args.sizes:
            print(f"{task}, model size {model_size}:")
            rows = run_pair(modules, args, task, model_size, settings)
            with args.output.open("a") as file:
                for row in rows:
                    file.write(json.dumps(row) + "\n")
            all_rows.extend(rows)
    print()
    print_table(all_rows)
    print("\nspeedup: authors' time / ours (plan, update), ours / authors' (steps/s). % peak: matmul FLOPs per second")
    print("over the machine's matmul peak, measured in this run. 2x needs: the share of that peak at which our")
    print(f"call, with its own matmul FLOPs, would take half the authors' time. Rows appended to {args.output}")


if __name__ == "__main__":
    main()
