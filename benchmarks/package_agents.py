"""
Package trained BOOM agents in the RL Baselines3 Zoo's layout, from the checkpoints that
benchmarks/reproduce.py writes, so that the Zoo's scripts run them as shipped:

    python -m rl_zoo3.enjoy --algo boom --env dm_control/cheetah-run-v0 -f agents --no-render
    python -m rl_zoo3.record_video --algo boom --env dm_control/cheetah-run-v0 -f agents -n 1000

For each task, the final checkpoint of one seed (``<checkpoint-dir>/<method>__<task>__seed<k>/checkpoint``,
only when it reached ``--min-env-steps``) becomes::

    <out>/boom/<env name>_1/<env name>.zip          the model: no replay buffer, no optimizer moments
    <out>/boom/<env name>_1/<env name>/config.yml   the run's hyperparameters as rl_zoo3 saves them
                                                      (with the YAML's env_wrapper: enjoy rebuilds the env from it)
    <out>/boom/<env name>_1/<env name>/args.yml     the arguments enjoy reads (env_kwargs)
    <out>/boom/<env name>_1/evaluation.json         where it came from, and its recorded returns

(``<env name>`` is the id with "/" as "-": ``dm_control-cheetah-run-v0``; there is no vecnormalize.pkl,
BOOM runs on raw observations.) The recorded returns are seeded, deterministic episodes of the planner
and of the policy prior on the env that rl_zoo3 builds from config.yml (:func:`evaluate_agent`);
tests/test_trained_agents.py replays them. ``<out>/README.md`` lists every agent in ``<out>``.

    python benchmarks/package_agents.py --checkpoint-dir /work/suite_ckpt --method boom-zoo --seed 0 --out agents
"""

import argparse
import collections
import json
import os
import pathlib
import platform
import shutil
import tempfile
from typing import Any

import gymnasium as gym
import numpy as np
import torch as th
import yaml
from stable_baselines3.common.utils import set_random_seed

import sb3_boom
from sb3_boom import BOOM
from sb3_boom.zoo import DMC_ENV_WRAPPER, DMC_PREFIX

ALGO = "boom"
EVALUATION_FILE = "evaluation.json"
# The recorded figure is replayed with the same settings: one torch thread (the sums' order, hence the
# plans, may depend on the thread count), the CPU, these seeds and episode counts.
EVAL_SEED = 0
EVAL_EPISODES = {"planner": 1, "prior": 3}


def env_name(env_id: str) -> str:
    """The folder and file name rl_zoo3 gives ``env_id`` (``rl_zoo3.utils.EnvironmentName``): "/" -> "-"."""
    return env_id.replace("/", "-")


def final_checkpoint(run_dir: pathlib.Path) -> pathlib.Path | None:
    """The run's checkpoint folder (``checkpoint``, else ``checkpoint.old`` during a swap), or None."""
    for candidate in (run_dir / "checkpoint", run_dir / "checkpoint.old"):
        if (candidate / "state.json").is_file() and (candidate / "model.zip").is_file():
            return candidate
    return None


def zoo_config(state: dict[str, Any]) -> dict[str, Any]:
    """
    What ``rl_zoo3.train`` would have saved as config.yml for this run: its hyperparameters, its budget and
    the YAML's env wrappers (reproduce.py applies the same protocol with its own wrappers).
    """
    hyperparams = dict(state["hyperparams"])
    hyperparams["n_timesteps"] = float(state["num_timesteps"])
    if state["env_id"].startswith(DMC_PREFIX):
        if state.get("action_repeat", 2) != 2:
            raise ValueError(f"{state['env_id']}: action repeat {state['action_repeat']}, the Zoo's dm_control entries use 2")
        hyperparams["env_wrapper"] = [dict(item) if isinstance(item, dict) else item for item in DMC_ENV_WRAPPER]
    return collections.OrderedDict((key, hyperparams[key]) for key in sorted(hyperparams))


def strip_model(source: pathlib.Path, destination: pathlib.Path) -> None:
    """Save the checkpoint's model without the Adam moments (half the file; enjoy never needs them)."""
    model = BOOM.load(source, device="cpu")
    for optimizer in (model.policy.optimizer, model.policy.pi_optimizer):
        optimizer.state.clear()  # an empty state loads back into Adam: training on restarts its moments
    model.save(destination)


def _registered(env_id: str) -> None:
    if env_id.startswith(DMC_PREFIX):
        import shimmy

        gym.register_envs(shimmy)


def evaluate_agent(run_dir: pathlib.Path, env_id: str, policy: str, episodes: int, seed: int = EVAL_SEED) -> list[float]:
    """
    Returns of ``episodes`` deterministic episodes of a packaged agent, played as ``rl_zoo3.enjoy`` does:
    the env from its config.yml (``create_test_env``, seeded with ``seed``), the model from its zip, the
    planner's warm start carried from step to step. Torch's RNG (the planner's samples) is seeded too.

    :param run_dir: ``<out>/boom/<env name>_1``
    :param env_id: the env id
    :param policy: "planner" (MPPI) or "prior" (the policy prior alone)
    :param episodes: number of episodes
    :param seed: seed of the env and of torch
    :return: the episode returns
    """
    from rl_zoo3.utils import create_test_env, get_saved_hyperparams

    if policy not in EVAL_EPISODES:
        raise ValueError(f"policy must be one of {list(EVAL_EPISODES)}, got {policy!r}")
    _registered(env_id)
    name = env_name(env_id)
    hyperparams, stats_path = get_saved_hyperparams(str(run_dir / name), test_mode=True)
    if not hyperparams:
        raise FileNotFoundError(
            f"{run_dir / name / 'config.yml'} is missing: package the agent with benchmarks/package_agents.py"
        )
    env = create_test_env(env_id, n_envs=1, stats_path=stats_path, seed=seed, should_render=False, hyperparams=hyperparams)
    set_random_seed(seed)
    model = BOOM.load(run_dir / f"{name}.zip", device="cpu", use_planner=policy == "planner")
    returns: list[float] = []
    obs, state, total = env.reset(), None, 0.0
    episode_start = np.ones((1,), dtype=bool)
    while len(returns) < episodes:
        action, state = model.predict(obs, state=state, episode_start=episode_start, deterministic=True)  # type: ignore[arg-type]
        obs, reward, done, _ = env.step(action)
        total += float(reward[0])
        episode_start = done
        if done[0]:
            returns.append(total)
            total = 0.0
    env.close()
    return returns


def recorded_figures(run_dir: pathlib.Path, env_id: str) -> dict[str, Any]:
    """The evaluation that tests/test_trained_agents.py replays, with the machine it was recorded on."""
    threads = th.get_num_threads()
    th.set_num_threads(1)
    try:
        returns = {policy: evaluate_agent(run_dir, env_id, policy, episodes) for policy, episodes in EVAL_EPISODES.items()}
    finally:
        th.set_num_threads(threads)
    return dict(
        seed=EVAL_SEED,
        torch_threads=1,
        device="cpu",
        returns=returns,
        mean={policy: float(np.mean(values)) for policy, values in returns.items()},
        machine=f"{platform.processor() or platform.machine()}, torch {th.__version__}",
    )


def last_csv_figures(checkpoint: pathlib.Path) -> dict[str, float]:
    """The run's own last evaluation (reproduce.py's rows: mean of its eval episodes) per policy."""
    import csv

    with open(checkpoint / "rows.csv", newline="") as file:
        rows = list(csv.DictReader(file))
    last = max(int(row["step"]) for row in rows)
    return {row["policy"]: float(row["reward"]) for row in rows if int(row["step"]) == last}


def package_run(run_dir: pathlib.Path, out: pathlib.Path, min_env_steps: int) -> pathlib.Path | None:
    """
    Package one reproduce.py run; None (with the reason printed) when it has no final checkpoint yet.

    :param run_dir: ``<checkpoint-dir>/<run name>``
    :param out: the agents folder
    :param min_env_steps: the env steps a checkpoint needs to count as the run's final model
    :return: the agent's folder
    """
    checkpoint = final_checkpoint(run_dir)
    if checkpoint is None:
        print(f"skip {run_dir.name}: no checkpoint")
        return None
    state = json.loads((checkpoint / "state.json").read_text())
    if state["env_steps"] < min_env_steps:
        print(f"skip {run_dir.name}: at {state['env_steps']} env steps, not yet {min_env_steps}")
        return None
    env_id, name = state["env_id"], env_name(state["env_id"])
    agent_dir = out / ALGO / f"{name}_1"
    # Build next to the destination, then swap: a failed packaging leaves the previous agent intact.
    out.joinpath(ALGO).mkdir(parents=True, exist_ok=True)
    staging = pathlib.Path(tempfile.mkdtemp(prefix=f".{name}_", dir=out / ALGO))
    staging.chmod(0o755)  # mkdtemp makes it private
    try:
        (staging / name).mkdir()
        strip_model(checkpoint / "model.zip", staging / f"{name}.zip")
        with open(staging / name / "config.yml", "w") as file:
            yaml.dump(zoo_config(state), file)
        args = dict(algo=ALGO, env=env_id, env_kwargs=None, seed=state["seed"], n_timesteps=state["num_timesteps"])
        with open(staging / name / "args.yml", "w") as file:
            yaml.dump(collections.OrderedDict(sorted(args.items())), file)
        evaluation = dict(
            env_id=env_id,
            source=dict(
                run=run_dir.name,
                method=state["method"],
                seed=state["seed"],
                env_steps=state["env_steps"],
                agent_steps=state["num_timesteps"],
                wall_s=round(float(state["wall_s"]), 1),
                last_evaluation=last_csv_figures(checkpoint),
                eval_episodes=state.get("eval_episodes"),
                sb3_boom=sb3_boom.__version__,
            ),
            recorded=recorded_figures(staging, env_id),
        )
        (staging / EVALUATION_FILE).write_text(json.dumps(evaluation, indent=2) + "\n")
        if agent_dir.exists():
            shutil.rmtree(agent_dir)
        os.replace(staging, agent_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    size = sum(path.stat().st_size for path in agent_dir.rglob("*") if path.is_file())
    means = "  ".join(f"{policy} {value:.1f}" for policy, value in evaluation["recorded"]["mean"].items())
    print(f"packaged {run_dir.name} -> {agent_dir} ({size / 1e6:.2f} MB): recorded {means}")
    return agent_dir


def agent_dirs(out: pathlib.Path) -> list[pathlib.Path]:
    """The packaged agents in ``out`` (folders with an evaluation.json), sorted."""
    return sorted(path.parent for path in (out / ALGO).glob(f"*_[0-9]*/{EVALUATION_FILE}"))


def write_readme(out: pathlib.Path) -> None:
    """``<out>/README.md``: one row per agent, with the command that plays it."""
    lines = [
        "# Trained BOOM agents (RL Baselines3 Zoo layout)",
        "",
        "Final models of benchmarks/reproduce.py runs, packaged by `benchmarks/package_agents.py`: no replay buffer,",
        "no optimizer moments. Each one's `config.yml` holds its settings; the run's name says which: `boom-zoo__...`:",
        "`--preset zoo` (the shipped hyperparams/boom.yml entry), `boom__...`: `--preset cpu`. Play one with",
        "",
        "```bash",
        "python -m rl_zoo3.enjoy --algo boom --env <env id> -f agents --no-render",
        "```",
        "",
        f"Recorded: deterministic returns on the env rl_zoo3 builds from `config.yml`, seed {EVAL_SEED}, one torch "
        "thread, CPU (planner: MPPI; prior: the policy alone); `tests/test_trained_agents.py` replays them. "
        "Last eval: the run's own last evaluation (its eval env, mean of its eval episodes).",
        "",
        "| env id | run | env steps | training wall time | planner (recorded) | prior (recorded) "
        "| last eval planner / prior | size |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for agent_dir in agent_dirs(out):
        evaluation = json.loads((agent_dir / EVALUATION_FILE).read_text())
        source, recorded = evaluation["source"], evaluation["recorded"]
        size = sum(path.stat().st_size for path in agent_dir.rglob("*") if path.is_file())
        cells = {policy: " / ".join(f"{value:.1f}" for value in values) for policy, values in recorded["returns"].items()}
        last = source["last_evaluation"]
        lines.append(
            f"| `{evaluation['env_id']}` | {source['run']} | {source['env_steps']} | {source['wall_s'] / 60:.0f} min "
            f"| {cells['planner']} | {cells['prior']} | {last.get('planner', float('nan')):.1f} / "
            f"{last.get('prior', float('nan')):.1f} | {size / 1e6:.2f} MB |"
        )
    out.mkdir(parents=True, exist_ok=True)
    (out / "README.md").write_text("\n".join(lines) + "\n")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint-dir", type=pathlib.Path, required=True, help="reproduce.py's --checkpoint-dir")
    parser.add_argument("--method", default="boom-zoo", help="the method name in the run folders (reproduce.py's CSV name)")
    parser.add_argument("--seed", type=int, default=0, help="the seed to ship per task")
    parser.add_argument("--tasks", nargs="*", default=None, help="tasks (cheetah-run ...); default: every task found")
    parser.add_argument("--min-env-steps", type=int, default=100_000, help="a checkpoint short of this is not final")
    parser.add_argument("--out", type=pathlib.Path, default=pathlib.Path("agents"))
    args = parser.parse_args(argv)

    pattern = f"{args.method}__*__seed{args.seed}"
    runs = sorted(path for path in args.checkpoint_dir.expanduser().glob(pattern) if path.is_dir())
    if args.tasks is not None:
        runs = [path for path in runs if path.name.split("__")[1] in args.tasks]
    if not runs:
        raise SystemExit(f"no run folder {pattern} in {args.checkpoint_dir} (check --checkpoint-dir, --method, --seed)")
    packaged = [agent for agent in (package_run(run, args.out, args.min_env_steps) for run in runs) if agent is not None]
    write_readme(args.out)
    print(f"{len(packaged)} of {len(runs)} runs packaged into {args.out}; {len(agent_dirs(args.out))} agents in all")


if __name__ == "__main__":
    main()
