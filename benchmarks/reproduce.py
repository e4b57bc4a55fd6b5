"""
Reproduce learning curves: train BOOM (and SAC / TQC baselines) on tasks x seeds for a budget of env
steps, evaluate at step 0 and every ``--eval-freq`` env steps, and write one long CSV per run
(method, task, seed) with the columns ``method,task,step,reward,seed,policy,wall_s,cpu_s``.

- ``step`` counts env steps = agent steps x action repeat (2 on ``dm_control/*``, as in the paper and
  in hyperparams/boom.yml; 1 elsewhere). ``--budget`` and ``--eval-freq`` are env steps too.
- ``reward`` is the mean return of ``--eval-episodes`` deterministic episodes on a separate eval env
  that is re-seeded before every evaluation (the same initial states each time). BOOM is evaluated
  twice: ``policy=planner`` (MPPI) and ``policy=prior`` (policy prior only); SAC/TQC as ``actor``.
- ``wall_s`` is training wall time so far, without evaluations and checkpoints; ``cpu_s`` the CPU time this
  process spent on the same training (``time.process_time``: all its threads). With ``--threads 1`` on a
  shared machine, ``cpu_s`` is what the training costs one core, however busy the machine was, and it
  compares runs made at different loads where ``wall_s`` does not. It is empty for a run resumed from a
  checkpoint that did not record it.
- Resumable: after every evaluation the model, its replay buffer, the CSV rows so far and the
  counters are saved to ``<checkpoint-dir>/<run name>/checkpoint``; running the same command again
  (or with a larger ``--budget``) continues from there. RNG states are not saved: a resumed run
  restarts its random streams and its training env, so it is not bitwise identical to an
  uninterrupted one, but its CSV has the same steps and no duplicated rows.

Methods: ``boom`` with ``--preset cpu|paper`` (sb3_boom.presets) or ``zoo`` (the shipped RL Zoo
hyperparameters), ablations through ``--boom-kwargs key=value ...`` (``lambda_align_scale=x`` sets
lambda_align to x times the task's default); ``sac`` and ``tqc`` with RL Zoo's hyperparameters for the
env (rl_zoo3/hyperparams/<algo>.yml, else SB3's defaults) and the same env wrappers as BOOM. The CSV's
method name encodes the variant: ``boom`` (preset cpu), ``boom-paper``, ``boom-zoo``,
``boom[alignment=rkl]``, ``sac``, ``tqc`` (``--name`` overrides it).

    python benchmarks/reproduce.py --methods boom sac --tasks dm_control/cartpole-swingup-v0 \\
        --seeds 0 1 2 --budget 100000 --eval-freq 10000 --threads 1
    python benchmarks/reproduce.py --methods boom --boom-kwargs alignment=rkl lambda_align_scale=0.1 \\
        --tasks dm_control/reacher-easy-v0 --budget 100000 --eval-freq 10000
    # smoke test (seconds):
    python benchmarks/reproduce.py --tiny --methods boom sac --tasks Pendulum-v1 --budget 200 \\
        --eval-freq 100 --eval-episodes 2

Many machines (docs/scaling.md): start the same command on each, with ``--storage`` naming one PostgreSQL
database and ``--out`` / ``--checkpoint-dir`` on storage that all of them share. The grid becomes the
enqueued trials of the study ``--study-name``; each worker claims the next waiting run, beats its heartbeat
while it trains and records the run's summary (final and peak return per policy, wall time, machine) on
its trial. The run of a worker that died is failed by the heartbeat of the others, re-enqueued, and resumed
from its checkpoint by the next worker. Workers stop when every run is complete.

    python benchmarks/reproduce.py --methods boom --tasks dm_control/cartpole-swingup-v0 --seeds 0 1 2 \\
        --storage postgresql://user:password@db-host:5432/optuna --study-name paper-table \\
        --out /shared/reproduce --checkpoint-dir /shared/reproduce/checkpoints
"""

import argparse
import ast
import copy
import csv
import dataclasses
import importlib.util
import json
import os
import pathlib
import re
import shutil
import socket
import sys
import time
from typing import TYPE_CHECKING, Any

import gymnasium as gym
import numpy as np
import torch as th
import yaml
from gymnasium.wrappers import FlattenObservation, RepeatAction
from stable_baselines3 import SAC
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.utils import LinearSchedule
from stable_baselines3.common.vec_env import VecEnv

from sb3_boom import BOOM
from sb3_boom.env_defaults import lambda_align_for
from sb3_boom.envs import make_dmc
from sb3_boom.presets import PRESETS
from sb3_boom.zoo import dmc_hyperparams, listed_in_config, shipped_hyperparams_path

if TYPE_CHECKING:
    from sb3_boom.distributed import RunQueue
    from sb3_boom.study_storage import HeartbeatSettings

CSV_COLUMNS = ("method", "task", "step", "reward", "seed", "policy", "wall_s", "cpu_s")
DEFAULT_PRESET = "cpu"
DEFAULT_CHECKPOINT_ROOT = pathlib.Path("~/.cache/sb3-boom/reproduce")
DMC_PREFIX = "dm_control/"
DMC_ACTION_REPEAT = 2
# Offset of the eval env's seed from the run's seed (its own initial states, never the training env's).
EVAL_SEED_OFFSET = 10_000

TINY_SAC: dict[str, Any] = dict(policy_kwargs=dict(net_arch=[32, 32]), batch_size=16, learning_starts=40, buffer_size=5_000)
TINY_TQC: dict[str, Any] = dict(TINY_SAC, policy_kwargs=dict(net_arch=[32, 32], n_quantiles=5))

# Keys of an RL Zoo entry that are not arguments of the algorithm.
ZOO_IGNORED_KEYS = ("n_timesteps", "env_wrapper", "normalize", "n_envs", "frame_stack", "callback", "env_kwargs")


@dataclasses.dataclass
class RunSpec:
    """One training run: a method (with its hyperparameters) on one task with one seed."""

    method: str  # name in the CSV
    algo: str  # "boom", "sac" or "tqc"
    env_id: str
    seed: int
    action_repeat: int
    hyperparams: dict[str, Any]  # as configured (YAML values, parsed --boom-kwargs): the run's fingerprint

    @property
    def task(self) -> str:
        return task_name(self.env_id)

    @property
    def name(self) -> str:
        return f"{slug(self.method)}__{slug(self.task)}__seed{self.seed}"

    @property
    def policies(self) -> tuple[str, ...]:
        return ("planner", "prior") if self.algo == "boom" else ("actor",)


def task_name(env_id: str) -> str:
    """The task as the reference curves name it: ``dm_control/walker-walk-v0`` -> ``walker-walk``; other ids unchanged."""
    if env_id.startswith(DMC_PREFIX):
        return re.sub(r"-v\d+$", "", env_id[len(DMC_PREFIX) :])
    return env_id


def slug(text: str) -> str:
    """A file-name-safe version of ``text``."""
    return re.sub(r"[^A-Za-z0-9.=+-]+", "_", text).strip("_")


def default_action_repeat(env_id: str) -> int:
    return DMC_ACTION_REPEAT if env_id.startswith(DMC_PREFIX) else 1


def make_env(env_id: str, action_repeat: int) -> gym.Env:
    """
    The env as hyperparams/boom.yml makes it, for every method: ``dm_control/*`` tasks through
    :func:`sb3_boom.envs.make_dmc` (flattened float32 observations), other ids as registered; each action
    repeated ``action_repeat`` times (rewards summed).
    """
    if env_id.startswith(DMC_PREFIX):
        return make_dmc(env_id, action_repeat=action_repeat)
    env = gym.make(env_id)
    if isinstance(env.observation_space, gym.spaces.Dict):
        env = FlattenObservation(env)
    if action_repeat > 1:
        env = RepeatAction(env, action_repeat)
    return env


def make_venv(spec: RunSpec, n_envs: int, seed: int) -> VecEnv:
    env_kwargs = dict(env_id=spec.env_id, action_repeat=spec.action_repeat)
    return make_vec_env(make_env, n_envs=n_envs, seed=seed, env_kwargs=env_kwargs)


def evaluate_returns(
    model: BaseAlgorithm, env: VecEnv, seed: int, episodes: int, policies: tuple[str, ...]
) -> dict[str, np.ndarray]:
    """
    Deterministic episode returns of each policy (BOOM: "planner" / "prior"; others: "actor"), every
    policy from the same initial states (``env`` re-seeded with ``seed`` first).
    """
    results = {}
    for policy in policies:
        if isinstance(model, BOOM):
            model.use_planner = policy == "planner"
        env.seed(seed)
        returns, _ = evaluate_policy(model, env, n_eval_episodes=episodes, deterministic=True, return_episode_rewards=True)
        results[policy] = np.asarray(returns, dtype=np.float64)
    if isinstance(model, BOOM):
        model.use_planner = True
    return results


def parse_value(text: str) -> Any:
    """A Python literal (``0.1``, ``True``, ``None``, ``{'a': 1}``), else the string itself."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def parse_kwargs(items: list[str]) -> dict[str, Any]:
    kwargs = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise argparse.ArgumentTypeError(f"expected key=value, got {item!r}")
        kwargs[key] = parse_value(value)
    return kwargs


def zoo_entry(path: pathlib.Path, env_id: str) -> dict[str, Any]:
    """
    The RL Zoo entry of ``env_id`` in ``path`` (else its ``default`` entry, else nothing), without its
    budget and env wrappers: the budget is ``--budget`` and every method gets :func:`make_env`.
    """
    with open(path) as file:
        table = yaml.safe_load(file)
    return without_budget_and_wrappers(table.get(env_id) or table.get("default") or {})


def without_budget_and_wrappers(entry: dict[str, Any]) -> dict[str, Any]:
    """An entry's algorithm arguments: the budget is ``--budget`` and every method gets :func:`make_env`."""
    return {key: value for key, value in entry.items() if key not in ("n_timesteps", "env_wrapper")}


def boom_zoo_entry(env_id: str, device: str) -> dict[str, Any]:
    """
    BOOM's RL Zoo entry for ``env_id``, as ``rl_zoo3.train --algo boom`` uses it: the shipped YAML's, or for a
    ``dm_control/*`` id it does not list, the one the zoo integration derives (not the YAML's ``default``).
    """
    config = shipped_hyperparams_path()
    if not env_id.startswith(DMC_PREFIX) or listed_in_config(str(config), env_id):
        return zoo_entry(config, env_id)
    return without_budget_and_wrappers(dmc_hyperparams(env_id, device))


def rl_zoo_hyperparams_path(algo: str) -> pathlib.Path:
    """rl_zoo3's own ``hyperparams/<algo>.yml``, found without importing rl_zoo3."""
    spec = importlib.util.find_spec("rl_zoo3")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(f"{algo} needs rl_zoo3 for its hyperparameters: pip install rl-zoo3")
    return pathlib.Path(list(spec.submodule_search_locations)[0]) / "hyperparams" / f"{algo}.yml"


def zoo_to_kwargs(entry: dict[str, Any]) -> dict[str, Any]:
    """Turn an RL Zoo entry into algorithm arguments, as rl_zoo3's ExperimentManager does."""
    kwargs = {key: value for key, value in entry.items() if key not in ZOO_IGNORED_KEYS}
    ignored = sorted(set(entry) & set(ZOO_IGNORED_KEYS))
    if ignored:
        print(f"note: ignoring RL Zoo keys {ignored} (every method gets the same single env and wrappers)")
    if isinstance(kwargs.get("learning_rate"), str):  # "lin_7.3e-4": linear decay to 0 over the budget
        kwargs["learning_rate"] = LinearSchedule(float(kwargs["learning_rate"].split("_")[1]), 0.0, 1.0)
    if isinstance(kwargs.get("train_freq"), list):
        kwargs["train_freq"] = tuple(kwargs["train_freq"])
    if isinstance(kwargs.get("policy_kwargs"), str):  # e.g. "dict(log_std_init=-3, net_arch=[400, 300])"
        kwargs["policy_kwargs"] = eval(kwargs["policy_kwargs"], {"nn": th.nn, "th": th, "dict": dict})
    if "noise_type" in kwargs:
        raise NotImplementedError("RL Zoo action noise (noise_type) is not supported here")
    return kwargs


def merge(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``base`` updated with ``overrides``; ``policy_kwargs`` dicts are merged key by key."""
    merged = {**base, **overrides}
    if isinstance(base.get("policy_kwargs"), dict) and isinstance(overrides.get("policy_kwargs"), dict):
        merged["policy_kwargs"] = {**base["policy_kwargs"], **overrides["policy_kwargs"]}
    return copy.deepcopy(merged)


# The paper's ablation study (its Fig. 5-6): BOOM, reverse KL and no alignment, uniform instead of
# soft-Q weighting, lambda_align at 0.1x and 10x the task's default.
PAPER_ABLATIONS: tuple[tuple[str, ...], ...] = (
    (),
    ("alignment=rkl",),
    ("alignment=none",),
    ("align_weighting=uniform",),
    ("lambda_align_scale=0.1",),
    ("lambda_align_scale=10",),
)


def boom_spec(args: argparse.Namespace, env_id: str, seed: int, variant: tuple[str, ...] = ()) -> RunSpec:
    items = [*args.boom_kwargs, *variant]
    overrides = parse_kwargs(items)
    if args.preset == "zoo":
        base = boom_zoo_entry(env_id, args.device)
    else:
        base = dict(PRESETS[args.preset])
    if args.tiny:
        base = merge(base, PRESETS["tiny"])
    method = args.name or "boom" + ("" if args.preset == DEFAULT_PRESET else f"-{args.preset}")
    if overrides and not args.name:
        method += "[" + ",".join(items) + "]"
    return RunSpec(method, "boom", env_id, seed, args.action_repeat or default_action_repeat(env_id), merge(base, overrides))


def baseline_spec(args: argparse.Namespace, algo: str, env_id: str, seed: int) -> RunSpec:
    hyperparams = zoo_entry(rl_zoo_hyperparams_path(algo), env_id)
    if args.tiny:
        hyperparams = merge(hyperparams, TINY_SAC if algo == "sac" else TINY_TQC)
    return RunSpec(algo, algo, env_id, seed, args.action_repeat or default_action_repeat(env_id), hyperparams)


def build_model(spec: RunSpec, env: VecEnv, device: str) -> BaseAlgorithm:
    """A fresh model of the run's method on ``env``."""
    # A deep copy: SB3 writes into policy_kwargs (use_sde), and spec.hyperparams is the run's fingerprint.
    kwargs = zoo_to_kwargs(copy.deepcopy(spec.hyperparams))
    policy = kwargs.pop("policy", "MlpPolicy")
    if spec.algo == "boom":
        scale = kwargs.pop("lambda_align_scale", None)
        if scale is not None:
            setting = kwargs.get("lambda_align", "auto")
            base = lambda_align_for(int(np.prod(env.action_space.shape))) if setting == "auto" else float(setting)
            kwargs["lambda_align"] = float(scale) * base
        return algo_class("boom", kwargs)(policy, env, seed=spec.seed, device=device, **kwargs)
    if spec.algo == "sac":
        return SAC(policy, env, seed=spec.seed, device=device, **kwargs)
    from sb3_contrib import TQC

    return TQC(policy, env, seed=spec.seed, device=device, **kwargs)


def algo_class(algo: str, hyperparams: dict[str, Any] | None = None) -> type[BaseAlgorithm]:
    if algo == "boom":
        if (hyperparams or {}).get("authors_quirks"):
            # The authors' training schedule: a study class, importable from the repository root.
            sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
            from studies.research_switches import AuthorsScheduleBOOM

            return AuthorsScheduleBOOM
        return BOOM
    if algo == "sac":
        return SAC
    from sb3_contrib import TQC

    return TQC


# --- checkpoints -----------------------------------------------------------------------------------


def write_rows(path: pathlib.Path, rows: list[dict[str, str]]) -> None:
    """Write the CSV atomically (a temporary file renamed over ``path``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=CSV_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    os.replace(tmp, path)


def read_rows(path: pathlib.Path) -> list[dict[str, str]]:
    with open(path, newline="") as file:
        return list(csv.DictReader(file))


def save_checkpoint(run_dir: pathlib.Path, model: BaseAlgorithm, rows: list[dict[str, str]], state: dict[str, Any]) -> None:
    """Write a complete checkpoint next to the last one, then swap them (a crash leaves one intact)."""
    tmp, final, old = run_dir / "checkpoint.tmp", run_dir / "checkpoint", run_dir / "checkpoint.old"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    model.save(tmp / "model.zip")
    model.save_replay_buffer(tmp / "replay_buffer.pkl")
    write_rows(tmp / "rows.csv", rows)
    (tmp / "state.json").write_text(json.dumps(state, indent=2) + "\n")
    if final.exists():
        shutil.rmtree(old, ignore_errors=True)
        final.rename(old)
    tmp.rename(final)
    shutil.rmtree(old, ignore_errors=True)


def latest_checkpoint(run_dir: pathlib.Path) -> pathlib.Path | None:
    for candidate in (run_dir / "checkpoint", run_dir / "checkpoint.old"):
        if (candidate / "state.json").is_file():
            return candidate
    return None


def fingerprint(spec: RunSpec, args: argparse.Namespace) -> dict[str, Any]:
    """What must not change when a run is resumed (the budget may grow)."""
    return json.loads(
        json.dumps(
            {
                "method": spec.method,
                "env_id": spec.env_id,
                "seed": spec.seed,
                "action_repeat": spec.action_repeat,
                "eval_freq": args.eval_freq,
                "eval_episodes": args.eval_episodes,
                "hyperparams": spec.hyperparams,
            },
            sort_keys=True,
            default=str,
        )
    )


# --- training --------------------------------------------------------------------------------------


class EvaluateAndCheckpoint(BaseCallback):
    """
    Evaluate every ``eval_interval`` agent steps, then save a checkpoint and the CSV.

    It evaluates at the start of a rollout, i.e. after the previous step's transition was stored and
    its updates were made (with ``train_freq=1``, exactly on the grid); :meth:`maybe_evaluate` is
    called once more after ``learn`` for the last step.
    """

    def __init__(
        self,
        run: "Run",
        next_eval: int,
        wall_s: float,
        cpu_s: float | None,
    ):
        super().__init__()
        self.run = run
        self.next_eval = next_eval  # agent steps
        self.wall_s = wall_s
        self.cpu_s = cpu_s  # None: not known for this run (resumed from a checkpoint without it)
        self._start_timing()

    def _start_timing(self) -> None:
        self._mark, self._cpu_mark = time.perf_counter(), time.process_time()

    def _on_training_start(self) -> None:
        self._start_timing()

    def _on_rollout_start(self) -> None:
        self.maybe_evaluate()

    def _on_step(self) -> bool:
        return True

    def maybe_evaluate(self) -> None:
        if self.model.num_timesteps < self.next_eval:
            return
        self.wall_s += time.perf_counter() - self._mark
        if self.cpu_s is not None:
            self.cpu_s += time.process_time() - self._cpu_mark
        self.run.evaluate_and_save(self.model, self.wall_s, self.cpu_s)
        self.next_eval = self.model.num_timesteps + self.run.eval_interval
        self._start_timing()


class Run:
    """Training, evaluation and checkpoints of one :class:`RunSpec`."""

    def __init__(self, spec: RunSpec, args: argparse.Namespace):
        self.spec = spec
        self.args = args
        self.out_csv = args.out / f"{spec.name}.csv"
        self.run_dir = args.checkpoint_dir.expanduser() / spec.name
        self.eval_interval = args.eval_freq // spec.action_repeat
        self.agent_budget = args.budget // spec.action_repeat
        self.rows: list[dict[str, str]] = []
        self.eval_env = make_venv(spec, args.eval_envs or args.eval_episodes, spec.seed + EVAL_SEED_OFFSET)

    def evaluate(self, model: BaseAlgorithm) -> dict[str, np.ndarray]:
        """Deterministic returns of each policy, on the same initial states every time."""
        seed = self.spec.seed + EVAL_SEED_OFFSET
        return evaluate_returns(model, self.eval_env, seed, self.args.eval_episodes, self.spec.policies)

    def evaluate_and_save(self, model: BaseAlgorithm, wall_s: float, cpu_s: float | None) -> None:
        results = self.evaluate(model)
        step = model.num_timesteps * self.spec.action_repeat
        for policy, returns in results.items():
            self.rows.append(
                dict(
                    method=self.spec.method,
                    task=self.spec.task,
                    step=str(step),
                    reward=f"{returns.mean():.3f}",
                    seed=str(self.spec.seed),
                    policy=policy,
                    wall_s=f"{wall_s:.1f}",
                    cpu_s="" if cpu_s is None else f"{cpu_s:.1f}",
                )
            )
        state = dict(
            fingerprint(self.spec, self.args), num_timesteps=model.num_timesteps, env_steps=step, wall_s=wall_s, cpu_s=cpu_s
        )
        save_checkpoint(self.run_dir, model, self.rows, state)
        write_rows(self.out_csv, self.rows)
        scores = "  ".join(f"{policy} {r.mean():8.1f} +/- {r.std():6.1f}" for policy, r in results.items())
        print(f"[{self.spec.name}] {step:>9d} env steps  {scores}  wall {wall_s:8.1f} s", flush=True)

    def resume(self, env: VecEnv) -> tuple[BaseAlgorithm, dict[str, Any]] | None:
        """The model and state of the last checkpoint, or None to start afresh."""
        checkpoint = latest_checkpoint(self.run_dir)
        if checkpoint is None:
            if self.out_csv.exists():
                print(f"[{self.spec.name}] no checkpoint in {self.run_dir}: starting afresh ({self.out_csv} is overwritten)")
            return None
        state = json.loads((checkpoint / "state.json").read_text())
        expected = fingerprint(self.spec, self.args)
        changed = sorted(key for key in expected if state.get(key) != expected[key])
        if changed:
            details = "; ".join(f"{key}: {state.get(key)!r} -> {expected[key]!r}" for key in changed)
            raise SystemExit(
                f"[{self.spec.name}] the checkpoint in {self.run_dir} was made with other settings ({details}). "
                "Use another --checkpoint-dir, or delete that folder to start afresh."
            )
        model_class = algo_class(self.spec.algo, self.spec.hyperparams)
        model = model_class.load(checkpoint / "model.zip", env=env, device=self.args.device)
        model.load_replay_buffer(checkpoint / "replay_buffer.pkl")
        self.rows = read_rows(checkpoint / "rows.csv")
        write_rows(self.out_csv, self.rows)  # in case the CSV was lost or is behind the checkpoint
        return model, state

    def train(self) -> None:
        spec = self.spec
        env = make_venv(spec, 1, spec.seed)
        resumed = self.resume(env)
        if resumed is None:
            model = build_model(spec, env, self.args.device)
            callback = EvaluateAndCheckpoint(self, next_eval=0, wall_s=0.0, cpu_s=0.0)
            print(
                f"[{spec.name}] {type(model).__name__} on {spec.env_id}: {self.agent_budget} agent steps = "
                f"{self.args.budget} env steps (action repeat {spec.action_repeat}), seed {spec.seed}, "
                f"settings {json.dumps(spec.hyperparams, default=str)}",
                flush=True,
            )
        else:
            model, state = resumed
            callback = EvaluateAndCheckpoint(
                self, next_eval=model.num_timesteps + self.eval_interval, wall_s=state["wall_s"], cpu_s=state.get("cpu_s")
            )
            print(f"[{spec.name}] resuming from {state['env_steps']} env steps ({self.run_dir})", flush=True)
        remaining = self.agent_budget - model.num_timesteps
        if remaining > 0:
            model.learn(remaining, callback=callback, reset_num_timesteps=resumed is None)
            callback.maybe_evaluate()
        else:
            print(f"[{spec.name}] done: the checkpoint is at {model.num_timesteps * spec.action_repeat} env steps")
        env.close()
        self.eval_env.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--methods", nargs="+", default=["boom"], choices=["boom", "sac", "tqc"])
    parser.add_argument("--tasks", nargs="+", default=["dm_control/cartpole-swingup-v0"], help="env ids")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument("--budget", type=int, default=100_000, help="env steps per run (agent steps x action repeat)")
    parser.add_argument("--eval-freq", type=int, default=10_000, help="evaluate every this many env steps")
    parser.add_argument("--eval-episodes", type=int, default=10, help="deterministic episodes per evaluation and policy")
    parser.add_argument("--eval-envs", type=int, default=None, help="parallel eval envs (default: --eval-episodes)")
    parser.add_argument("--preset", default=DEFAULT_PRESET, choices=[*sorted(PRESETS), "zoo"], help="BOOM's settings")
    parser.add_argument("--boom-kwargs", nargs="*", default=[], metavar="KEY=VALUE", help="BOOM arguments over the preset")
    parser.add_argument("--name", default=None, help="method name in the CSV for boom (default: from preset and kwargs)")
    parser.add_argument(
        "--ablations", action="store_true", help="run boom as each variant of the paper's ablation study (over --boom-kwargs)"
    )
    parser.add_argument("--action-repeat", type=int, default=None, help="default: 2 for dm_control/* ids, else 1")
    parser.add_argument("--out", type=pathlib.Path, default=pathlib.Path("runs/reproduce"), help="CSV folder")
    parser.add_argument("--checkpoint-dir", type=pathlib.Path, default=DEFAULT_CHECKPOINT_ROOT, help="a folder per run in it")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--tiny", action="store_true", help="tiny networks and planner, for smoke tests")
    distributed = parser.add_argument_group("many machines (one database; --out and --checkpoint-dir on shared storage)")
    distributed.add_argument(
        "--storage", default=None, help="database URL of the grid's study, e.g. postgresql://u:p@host/optuna"
    )
    distributed.add_argument("--study-name", default="reproduce", help="the grid's study (every worker: same arguments)")
    distributed.add_argument("--heartbeat-s", type=int, default=60, help="seconds between heartbeats of a run")
    distributed.add_argument("--grace-s", type=int, default=None, help="a run silent this long is retried (default 3 beats)")
    distributed.add_argument("--max-retry", type=int, default=3, help="times the run of a dead worker is retried")
    distributed.add_argument("--reconnect-s", type=float, default=120.0, help="how long to wait for a database that is away")
    args = parser.parse_args(argv)
    args.boom_kwargs = [item for item in args.boom_kwargs if item]
    try:
        parse_kwargs(args.boom_kwargs)
    except argparse.ArgumentTypeError as error:
        parser.error(f"--boom-kwargs: {error}")
    if args.eval_freq <= 0 or args.budget % args.eval_freq:
        parser.error("--budget must be a multiple of --eval-freq")
    if args.ablations and args.name:
        parser.error("--name would give every ablation variant the same method name")
    if args.threads is not None:
        th.set_num_threads(args.threads)

    specs = run_specs(args)
    for spec in specs:
        if args.eval_freq % spec.action_repeat:
            parser.error(f"--eval-freq must be a multiple of the action repeat of {spec.env_id} ({spec.action_repeat})")
    if args.storage:
        if len({spec.name for spec in specs}) != len(specs):
            parser.error("two runs of the grid have the same name: give each --methods / --boom-kwargs variant its own")
        from sb3_boom.study_storage import HeartbeatSettings, is_rdb_url

        if not is_rdb_url(args.storage):
            parser.error(
                f"--storage {args.storage!r} is not a database URL: use e.g. postgresql://user:password@host:5432/optuna"
            )
        try:
            settings = HeartbeatSettings(
                heartbeat_s=args.heartbeat_s, grace_s=args.grace_s, max_retry=args.max_retry, reconnect_s=args.reconnect_s
            )
        except ValueError as error:
            parser.error(str(error))
        raise SystemExit(run_distributed(args, specs, settings))
    for spec in specs:
        Run(spec, args).train()


def run_summary(run: Run) -> tuple[float, dict[str, Any]]:
    """
    The trial value (final return of the run's first policy: BOOM's planner, else the actor) and the summary
    recorded on the trial: final and peak return per policy, env steps, training wall and CPU time, machine, CSV.
    """
    summary: dict[str, Any] = {}
    for policy in run.spec.policies:
        rewards = [float(row["reward"]) for row in run.rows if row["policy"] == policy]
        summary[f"final_{policy}"] = rewards[-1]
        summary[f"peak_{policy}"] = max(rewards)
    last = run.rows[-1]
    summary.update(
        env_steps=int(last["step"]),
        wall_s=float(last["wall_s"]),
        cpu_s=float(last["cpu_s"]) if last.get("cpu_s") else None,
        machine=f"{socket.gethostname()}:{os.getpid()}",
        csv=str(run.out_csv),
    )
    return summary[f"final_{run.spec.policies[0]}"], summary


def run_distributed(args: argparse.Namespace, specs: list[RunSpec], settings: "HeartbeatSettings") -> int:
    """Claim and train the grid's runs until none is left; the exit status: 1 if some run failed for good."""
    from sb3_boom.distributed import RunQueue, StudyMismatchError
    from sb3_boom.study_storage import explain_database_error, make_storage

    by_name = {spec.name: spec for spec in specs}
    grid = {spec.name: dict(fingerprint(spec, args), budget=args.budget) for spec in specs}
    try:
        queue = RunQueue(make_storage(args.storage, settings), args.study_name, grid)
        return _work_through(args, queue, by_name)
    except StudyMismatchError as error:
        raise SystemExit(f"error: {error}") from error
    except Exception as error:
        # A run finished while the database was away stays running there: the heartbeat of the other workers
        # retries it, and its checkpoint at the budget makes that retry only record the summary.
        message = explain_database_error(error, args.storage, settings.reconnect_s)
        if message is None:
            raise
        raise SystemExit(f"error: {message}") from error


def _work_through(args: argparse.Namespace, queue: "RunQueue", by_name: dict[str, RunSpec]) -> int:
    queue.open()
    print(f"worker {socket.gethostname()}:{os.getpid()} on study {args.study_name!r}: {len(by_name)} runs", flush=True)
    while (claimed := queue.claim()) is not None:
        trial, name = claimed
        print(f"[{name}] claimed as trial {trial.number}", flush=True)
        try:
            with queue.heartbeat(trial):
                run = Run(by_name[name], args)
                run.train()
        except BaseException as error:  # Ctrl+C too: the run is re-enqueued when a worker starts again
            queue.fail(trial, error)
            raise
        value, summary = run_summary(run)
        queue.complete(trial, value, summary)
    counts = queue.counts()
    incomplete = queue.pending_or_failed()
    print(f"grid {args.study_name!r}: {json.dumps(counts)}; runs not complete: {incomplete}", flush=True)
    return 1 if incomplete else 0


def run_specs(args: argparse.Namespace) -> list[RunSpec]:
    """Every run of the command, in order: per task, per method (per ablation variant), per seed."""
    variants = PAPER_ABLATIONS if args.ablations else ((),)
    specs = []
    for env_id in args.tasks:
        for method in args.methods:
            if method == "boom":
                specs += [boom_spec(args, env_id, seed, variant) for variant in variants for seed in args.seeds]
            else:
                specs += [baseline_spec(args, method, env_id, seed) for seed in args.seeds]
    return specs


if __name__ == "__main__":
    main()
