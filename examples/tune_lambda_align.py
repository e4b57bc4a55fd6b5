"""
Tune BOOM's alignment weight ``lambda_align`` with Optuna, directly on ``sb3_boom.BOOM`` (no RL Zoo).

Each trial trains BOOM with ``lambda_align`` drawn log-uniformly from 0.1x to 10x the task's default
(the "auto" rule, ``A / 50`` or ``A / 1000`` for ``A`` action dimensions), evaluates it every
``--eval-freq`` steps, and reports each evaluation to Optuna, whose median pruner stops the trials
that fall behind. The objective is the last evaluation's mean return. All trials use the same seed,
so that they differ by ``lambda_align`` only. Any gymnasium id with Box observations and actions works.
On Pendulum-v1 a trial of 4000 steps takes about 4 minutes on 2 cores; pruned trials stop early.

    python examples/tune_lambda_align.py [--env Pendulum-v1] [--trials 10] [--steps 4000] [--eval-freq 1000]
    # keep the study in a database (resumable; run the command in several shells to tune in parallel):
    python examples/tune_lambda_align.py --storage sqlite:///boom_lambda_align.db
    # smoke test with tiny networks and planner:
    python examples/tune_lambda_align.py --tiny --trials 3 --steps 120 --eval-freq 60 --eval-episodes 1
"""

import argparse
import time

import numpy as np
import optuna
from stable_baselines3.common.callbacks import EvalCallback
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.vec_env import VecEnv

from sb3_boom import BOOM
from sb3_boom.env_defaults import lambda_align_for
from sb3_boom.presets import PRESETS


class TrialEvalCallback(EvalCallback):
    """EvalCallback that reports each evaluation to an Optuna trial and stops training when it should be pruned."""

    def __init__(self, eval_env: VecEnv, trial: optuna.Trial, eval_freq: int, n_eval_episodes: int):
        super().__init__(eval_env, eval_freq=eval_freq, n_eval_episodes=n_eval_episodes, deterministic=True, verbose=0)
        self.trial = trial
        self.is_pruned = False

    def _on_step(self) -> bool:
        continue_training = super()._on_step()
        if self.eval_freq > 0 and self.n_calls % self.eval_freq == 0:  # an evaluation just ran
            self.trial.report(self.last_mean_reward, step=self.num_timesteps)
            if self.trial.should_prune():
                self.is_pruned = True
                return False
        return continue_training


def objective(trial: optuna.Trial, args: argparse.Namespace, default: float) -> float:
    """Train with a sampled lambda_align; return the last evaluation's mean return (or prune)."""
    lambda_align = trial.suggest_float("lambda_align", 0.1 * default, 10.0 * default, log=True)
    env = make_vec_env(args.env, n_envs=1, seed=args.seed)
    eval_env = make_vec_env(args.env, n_envs=1, seed=args.seed + 1000)
    kwargs = PRESETS["tiny"] if args.tiny else PRESETS["cpu"]
    model = BOOM("MlpPolicy", env, lambda_align=lambda_align, seed=args.seed, **kwargs)
    callback = TrialEvalCallback(eval_env, trial, args.eval_freq, args.eval_episodes)
    try:
        model.learn(args.steps, callback=callback)
    finally:
        env.close()
        eval_env.close()
    if callback.is_pruned:
        raise optuna.TrialPruned(f"pruned at {model.num_timesteps} steps")
    return callback.last_mean_reward


def print_summary(study: optuna.Study, default: float) -> None:
    """One line per trial, the counts of each state, and the best lambda_align."""
    print(f"\n{'trial':>5}  {'lambda_align':>12}  {'state':>8}  {'last eval':>9}  {'steps':>6}")
    for trial in study.trials:
        value = trial.value if trial.value is not None else trial.intermediate_values.get(trial.last_step or 0, np.nan)
        steps = trial.last_step if trial.last_step is not None else 0
        lambda_align = trial.params.get("lambda_align", np.nan)
        print(f"{trial.number:>5}  {lambda_align:>12.4g}  {trial.state.name:>8}  {value:>9.1f}  {steps:>6}")
    counts = {state: len(study.get_trials(deepcopy=False, states=(state,))) for state in optuna.trial.TrialState}
    print(
        f"study {study.study_name!r}: {len(study.trials)} trials, {counts[optuna.trial.TrialState.COMPLETE]} finished, "
        f"{counts[optuna.trial.TrialState.PRUNED]} pruned, {counts[optuna.trial.TrialState.FAIL]} failed"
    )
    if counts[optuna.trial.TrialState.COMPLETE] == 0:
        print("no trial finished: no best lambda_align")
        return
    best = study.best_trial
    print(
        f"best lambda_align: {best.params['lambda_align']:.6g} ({best.params['lambda_align'] / default:.2f}x the default), "
        f"trial {best.number}, last eval return {best.value:.1f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env", default="Pendulum-v1", help="gymnasium id (Box observations and actions)")
    parser.add_argument("--trials", type=int, default=10, help="trials to run (in this process)")
    parser.add_argument("--steps", type=int, default=4_000, help="training steps per trial")
    parser.add_argument("--eval-freq", type=int, default=1_000, help="evaluate and report to Optuna every this many steps")
    parser.add_argument("--eval-episodes", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0, help="seed of every trial's training, and of the sampler")
    parser.add_argument("--storage", default=None, help="Optuna storage URL, e.g. sqlite:///boom.db (default: in memory)")
    parser.add_argument("--study-name", default=None, help="default: boom-lambda_align-<env>")
    parser.add_argument("--tiny", action="store_true", help="tiny networks and planner, for smoke tests")
    args = parser.parse_args()
    if not 0 < args.eval_freq <= args.steps:
        parser.error("--eval-freq must be between 1 and --steps: the objective is the last evaluation")

    n_actions = int(np.prod(make_vec_env(args.env, n_envs=1).action_space.shape))
    default = lambda_align_for(n_actions)
    print(
        f"tuning lambda_align of BOOM on {args.env} ({n_actions} action dims): default {default:g}, "
        f"search range [{0.1 * default:g}, {10 * default:g}] (log-uniform), {args.trials} trials of {args.steps} steps"
    )
    study = optuna.create_study(
        storage=args.storage,
        study_name=args.study_name or f"boom-lambda_align-{args.env}",
        load_if_exists=True,
        direction="maximize",
        sampler=optuna.samplers.TPESampler(seed=args.seed),
        # Prune from a third of the training on, once two trials have finished.
        pruner=optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=args.steps // 3),
    )
    start = time.time()
    # A lambda_align so large that training diverges fails its trial (FloatingPointError), not the study.
    study.optimize(lambda trial: objective(trial, args, default), n_trials=args.trials, catch=(FloatingPointError,))
    print(f"tuned in {time.time() - start:.0f} s")
    print_summary(study, default)


if __name__ == "__main__":
    main()
