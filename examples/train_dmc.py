"""
Train BOOM on a DeepMind Control Suite task (through shimmy), evaluate it during training with SB3's
EvalCallback, and write its learning curve: ``curve.png`` and ``curve.csv`` (columns ``step,reward``),
plus the model ``boom.zip`` and EvalCallback's ``evaluations.npz``.

Observations are flattened to one float32 vector and each action is repeated twice, as in the paper
(``sb3_boom.envs.make_dmc``; the env of ``hyperparams/boom.yml``). Steps on the command line are agent
steps (calls of the wrapped env's ``step``); the curve's x axis and the CSV's ``step`` column count env steps =
agent steps x 2.
Needs ``pip install -e ".[dmc]" matplotlib``.

The defaults (the paper's planner with the 1M model) are meant for a GPU: on a CPU core the planner takes about
0.3 s per action, i.e. hours for the 20,000 steps and the evaluations. ``--tiny`` checks the setup on a CPU.

    python examples/train_dmc.py [--env dm_control/cartpole-swingup-v0] [--steps 20000] [--eval-freq 2500]
    # smoke test with tiny networks and planner (about 20 s on 2 cores):
    python examples/train_dmc.py --tiny --steps 600 --eval-freq 200 --eval-episodes 1
"""

import argparse
import csv
import pathlib
import time
from typing import Any

import numpy as np
from matplotlib.figure import Figure
from stable_baselines3.common.callbacks import BaseCallback, EvalCallback
from stable_baselines3.common.env_util import make_vec_env

from sb3_boom import BOOM
from sb3_boom.envs import ACTION_REPEAT, make_dmc
from sb3_boom.presets import PRESETS


class PrintEvaluation(BaseCallback):
    """Child of an EvalCallback: print each evaluation in env steps."""

    parent: EvalCallback

    def _on_step(self) -> bool:
        returns = self.parent.evaluations_results[-1]
        env_steps = self.num_timesteps * ACTION_REPEAT
        print(f"  {env_steps:>8} env steps: return {np.mean(returns):7.1f} +/- {np.std(returns):5.1f}")
        return True


def save_curve(out: pathlib.Path, env_id: str, agent_steps: list[int], returns: list[list[float]]) -> None:
    """Write curve.csv (env steps, mean evaluation return) and curve.png (mean +/- std over the episodes)."""
    env_steps = np.asarray(agent_steps) * ACTION_REPEAT
    means = np.array([np.mean(r) for r in returns])
    stds = np.array([np.std(r) for r in returns])
    with open(out / "curve.csv", "w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["step", "reward"])
        writer.writerows((int(step), f"{mean:.3f}") for step, mean in zip(env_steps, means, strict=True))

    figure = Figure(figsize=(6, 4), layout="constrained")
    ax = figure.subplots()
    ax.plot(env_steps, means, marker="o", label="BOOM (MPPI planner)")
    ax.fill_between(env_steps, means - stds, means + stds, alpha=0.25)
    ax.set_xlabel(f"env steps (agent steps x {ACTION_REPEAT})")
    ax.set_ylabel("evaluation return (mean +/- std over episodes)")
    ax.set_title(env_id)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    figure.savefig(out / "curve.png", dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env", default="dm_control/cartpole-swingup-v0", help="a dm_control/<domain>-<task>-v0 id")
    parser.add_argument("--steps", type=int, default=20_000, help="agent steps to train for (env steps / 2)")
    parser.add_argument("--eval-freq", type=int, default=2_500, help="evaluate every this many agent steps")
    parser.add_argument("--eval-episodes", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--model-size", type=int, default=1, choices=[1, 5, 19, 48, 317], help="TD-MPC2 size preset")
    parser.add_argument("--out", type=pathlib.Path, default=None, help="output folder (default: runs/<task>_seed<seed>)")
    parser.add_argument("--tiny", action="store_true", help="tiny networks and planner, for smoke tests")
    args = parser.parse_args()
    if not 0 < args.eval_freq <= args.steps:
        parser.error("--eval-freq must be between 1 and --steps (the learning curve needs at least one evaluation)")

    out = args.out or pathlib.Path("runs") / f"{args.env.split('/')[-1]}_seed{args.seed}"
    out.mkdir(parents=True, exist_ok=True)
    # One float32 observation vector, each action repeated twice: BOOM's "auto" discount and warm-up count agent steps.
    env = make_vec_env(make_dmc, n_envs=1, seed=args.seed, env_kwargs=dict(env_id=args.env))
    eval_env = make_vec_env(make_dmc, n_envs=1, seed=args.seed + 1000, env_kwargs=dict(env_id=args.env))

    kwargs: dict[str, Any] = dict(PRESETS["tiny"]) if args.tiny else {}
    kwargs["policy_kwargs"] = {"model_size": args.model_size, **kwargs.get("policy_kwargs", {})}
    model = BOOM("MlpPolicy", env, seed=args.seed, verbose=0, **kwargs)
    print(
        f"BOOM on {args.env}: obs {env.observation_space.shape}, actions {env.action_space.shape}, "
        f"gamma={model.gamma:.3f}, warm-up {model.learning_starts} random steps, lambda_align={model.lambda_align:g}, "
        f"{args.steps} agent steps = {args.steps * ACTION_REPEAT} env steps"
    )

    # EvalCallback counts calls of the callback, i.e. agent steps with one env. It keeps the returns
    # (evaluations_results) only when it has a log_path, where it also writes evaluations.npz.
    evaluation = EvalCallback(
        eval_env,
        log_path=str(out),
        eval_freq=args.eval_freq,
        n_eval_episodes=args.eval_episodes,
        deterministic=True,
        callback_after_eval=PrintEvaluation(),
        verbose=0,
    )
    start = time.time()
    model.learn(args.steps, callback=evaluation)
    print(f"trained in {time.time() - start:.0f} s")
    model.save(out / "boom")
    save_curve(out, args.env, evaluation.evaluations_timesteps, evaluation.evaluations_results)
    print(f"wrote {out / 'curve.png'}, {out / 'curve.csv'} and {out / 'boom.zip'}")


if __name__ == "__main__":
    main()
