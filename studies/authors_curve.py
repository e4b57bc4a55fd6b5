"""
Learning curves of the authors' BOOM code (molumitu/BOOM_MBRL) with the same settings as one of our
presets, written in the long CSV format of ``benchmarks/reproduce.py`` so that ``benchmarks/plot.py``
draws both side by side.

    python -m studies.authors_curve --authors-path /path/to/BOOM_MBRL \
        --tasks dm_control/cartpole-swingup-v0 --seeds 0 1 2 --budget 50000 --eval-freq 10000

Without ``--authors-path``, or when the authors' ``boom`` package does not import from it, the script
says so and exits 0. Their code is only imported, never shipped here; as published it needs CUDA and
gymnasium < 1.0, so point ``--authors-path`` at a copy made to run on CPU (see compare_authors.py).

What runs: their ``OnlineTrainer.train()`` unchanged (their dm_control wrappers with action repeat 2,
their replay buffer, their seed steps ``max(1000, 5 L)`` with the pre-training burst, one update per
agent step), with their ``config.yaml`` overridden by the settings of ``--preset`` from
``sb3_boom.presets``: model widths and ensemble size, planner samples / elites / policy trajectories /
iterations, batch size. Everything else (learning rates, coefficients, lambda_align rule, discount)
is their default, which SPEC.md matches. Their ``torch.compile`` is switched off (``BOOM_COMPILE=0``,
honoured by the CPU copy): it changes speed only, and on CPU it mostly costs start-up time.

Their trainer evaluates every ``--eval-freq`` env steps (``eval_freq`` agent steps x 2): 10 episodes
with the planner, then 10 with the policy prior, on the training env, as they publish. Rows are
``method=authors`` (or ``--name``), ``policy`` planner / prior, ``step`` in env steps, ``wall_s`` the
training time so far without evaluations. Their trainer cannot resume: a killed run starts again.
"""

import argparse
import csv
import os
import pathlib
import sys
import time
from typing import Any

import torch as th

from benchmarks.reproduce import CSV_COLUMNS, DMC_ACTION_REPEAT, DMC_PREFIX, slug, task_name
from sb3_boom.presets import MODEL_SIZES, PRESETS
from studies.compare_authors import authors_config, import_authors, quiet


def preset_config(path: pathlib.Path, modules: dict[str, Any], task: str, seed: int, preset: str, steps: int, eval_freq: int):
    """Their config with our preset's settings over it."""
    settings = dict(PRESETS[preset])
    policy_kwargs = dict(settings.pop("policy_kwargs", {}))
    widths = dict(MODEL_SIZES[policy_kwargs.pop("model_size", 5)])
    widths.update({key: policy_kwargs.pop(key) for key in list(policy_kwargs) if key in widths})
    if policy_kwargs or set(settings) - {"num_samples", "num_elites", "num_pi_trajs", "iterations", "batch_size"}:
        raise ValueError(
            f"preset {preset!r} has settings with no counterpart in the authors' config: {policy_kwargs, settings}"
        )
    # No TD-MPC2 model preset: the widths are set one by one.
    overrides = dict(task=task, seed=seed, model_size=None, steps=steps, eval_freq=eval_freq, **widths, **settings)
    return authors_config(path, modules, overrides)


class CurveLogger:
    """Stands in for their ``Logger``: keeps the evaluations as CSV rows, writes them after each one."""

    def __init__(self, out: pathlib.Path, method: str, task: str, seed: int, action_repeat: int):
        self.out, self.method, self.task, self.seed, self.action_repeat = out, method, task, seed, action_repeat
        self.rows: list[dict[str, Any]] = []
        self.eval_seconds = 0.0
        self.start = time.perf_counter()

    def log(self, metrics: dict[str, Any], category: str = "train") -> None:
        if category != "eval":
            return
        step = int(metrics["step"]) * self.action_repeat
        wall_s = time.perf_counter() - self.start - self.eval_seconds
        for policy, key in (("planner", "episode_reward"), ("prior", "episode_reward_pi")):
            self.rows.append(
                dict(
                    method=self.method,
                    task=self.task,
                    step=step,
                    reward=round(float(metrics[key]), 3),
                    seed=self.seed,
                    policy=policy,
                    wall_s=round(wall_s, 1),
                )
            )
        with open(self.out, "w", newline="") as file:
            writer = csv.DictWriter(file, fieldnames=CSV_COLUMNS)
            writer.writeheader()
            writer.writerows(self.rows)
        print(
            f"[{self.method} {self.task} seed {self.seed}] step {step}: planner {metrics['episode_reward']:.1f}, "
            f"prior {metrics['episode_reward_pi']:.1f}, train {wall_s:.0f} s",
            flush=True,
        )

    def finish(self, agent: Any) -> None:
        pass


def run(path: pathlib.Path, modules: dict[str, Any], env_id: str, seed: int, args: argparse.Namespace) -> pathlib.Path:
    if not env_id.startswith(DMC_PREFIX):
        raise ValueError(f"the authors' single-task trainer runs dm_control tasks only, got {env_id}")
    task = task_name(env_id)
    out = args.out / f"{slug(args.name)}__{slug(task)}__seed{seed}.csv"
    cfg = preset_config(
        path, modules, task, seed, args.preset, args.budget // DMC_ACTION_REPEAT, args.eval_freq // DMC_ACTION_REPEAT
    )
    modules["boom.common.seed"].set_seed(seed)
    logger = CurveLogger(out, args.name, task, seed, DMC_ACTION_REPEAT)
    with quiet():
        trainer = modules["boom.trainer.online_trainer"].OnlineTrainer(
            cfg=cfg,
            env=modules["boom.envs"].make_env(cfg),
            agent=modules["boom.boom_alg"].BOOM(cfg),
            buffer=modules["boom.common.buffer"].Buffer(cfg),
            logger=logger,
        )
    evaluate = trainer.eval

    def timed_eval() -> dict[str, Any]:
        start = time.perf_counter()
        metrics = evaluate()
        logger.eval_seconds += time.perf_counter() - start
        return metrics

    trainer.eval = timed_eval
    logger.start = time.perf_counter()
    trainer.train()
    if args.save_dir is not None:
        # Their own checkpoint format (BOOM.save: the model's state dict), for later inspection.
        args.save_dir.mkdir(parents=True, exist_ok=True)
        trainer.agent.save(args.save_dir / f"{out.stem}.pt")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--authors-path", type=pathlib.Path, help="local copy of molumitu/BOOM_MBRL that runs on this machine")
    parser.add_argument("--tasks", nargs="+", default=["dm_control/cartpole-swingup-v0"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--budget", type=int, default=50_000, help="env steps per run (agent steps x 2)")
    parser.add_argument("--eval-freq", type=int, default=10_000, help="env steps between evaluations")
    parser.add_argument(
        "--preset", choices=["cpu", "paper"], default="cpu", help="sb3_boom preset whose settings both sides use"
    )
    parser.add_argument("--name", default="authors", help="method name in the CSV")
    parser.add_argument(
        "--out", type=pathlib.Path, default=pathlib.Path("runs/reproduce"), help="CSV folder (as reproduce.py)"
    )
    parser.add_argument("--threads", type=int, default=1, help="torch threads (their train.py uses 1)")
    parser.add_argument(
        "--save-dir", type=pathlib.Path, default=None, help="also save their final weights there (<run name>.pt)"
    )
    args = parser.parse_args()

    if args.authors_path is None:
        print("No --authors-path given: nothing to run (the authors' code is not shipped with sb3-boom).")
        return
    try:
        modules = import_authors(args.authors_path)
    except Exception as error:  # their package, or one of its dependencies, is missing
        print(f"The authors' code does not import from {args.authors_path}: {error!r}. Nothing to run.")
        return
    os.environ["BOOM_COMPILE"] = "0"
    th.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    for env_id in args.tasks:
        for seed in args.seeds:
            print(f"wrote {run(args.authors_path, modules, env_id, seed, args)}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
