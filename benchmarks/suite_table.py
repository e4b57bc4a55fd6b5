"""
The benchmark table of a suite of benchmarks/reproduce.py runs, in the RL Zoo's benchmark style: per task,
BOOM's planner and policy prior (mean +/- std over seeds of each seed's final and peak return), SB3 SAC
and TQC (when their CSVs are there), the published TD-MPC2 and SAC figures at 100k env steps, env steps,
wall time, agent steps/s and the hardware; then the wall-clock time each method takes to first reach 90%
of TD-MPC2's published 100k figure; one plot per task (our seed mean with its min-max, the published
curves, the yardsticks) and the command that reruns each row.

    python benchmarks/suite_table.py --runs 'benchmarks/results/suite/*.csv' --out docs/benchmark_table.md \\
        --plots docs/img/suite

Definitions (all returns are reproduce.py's: the mean of its deterministic evaluation episodes):

- a seed still *running* is one whose last evaluation is behind the furthest seed of its (task, method): the
  table, the plots and the times to 90% leave it out until it gets there, and name it with its env step;
- the *matched step* of a (task, method, policy) is then the last evaluation step of its seeds; *final* is
  each seed's return there, *peak* each seed's best return up to there; the cells give mean +/- std over
  seeds (population std, ddof=0, as the published spreads);
- *wall time* is reproduce.py's ``wall_s`` (training only, no evaluations) at the matched step, mean over
  seeds; *CPU time* its ``cpu_s`` there, mean over the seeds that recorded it; *agent steps/s* = matched
  env steps / action repeat / wall time (action repeat 2 on DMC tasks);
- *published* figures are the seed means at exactly 100k env steps of the reference CSV (TD-MPC2's repo:
  its steps are env steps, action repeat applied; see benchmarks/plot.py's REFERENCE_STEP_SCALE);
- *time to 90%*: per seed, the ``wall_s`` of its first evaluation at or above 0.9 x TD-MPC2's published
  100k figure; the cell gives the mean over the seeds that got there, how many did, and the mean env step.
  A second table gives the same in ``cpu_s`` (training CPU time), which compares runs made at different loads.
"""

import argparse
import dataclasses
import glob
import os
import pathlib
import platform
import re
import shlex
import sys

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import EngFormatter

# benchmarks/plot.py: its reference step axes and curve helpers.
if __package__:  # imported as benchmarks.suite_table
    from benchmarks import plot
else:  # python benchmarks/suite_table.py: this folder is sys.path[0]
    import plot

BENCHMARKS_DIR = pathlib.Path(__file__).resolve().parent
PUBLISHED_STEP = 100_000
THRESHOLD_FRACTION = 0.9
DMC_ACTION_REPEAT = 2


@dataclasses.dataclass
class SeedStats:
    """Mean and population std over seeds of one number per seed."""

    mean: float
    std: float
    seeds: int

    @classmethod
    def of(cls, values: np.ndarray) -> "SeedStats":
        values = np.asarray(values, dtype=np.float64)
        return cls(float(values.mean()), float(values.std()), int(values.size))

    def cell(self) -> str:
        return f"{self.mean:.0f} ± {self.std:.0f}"


@dataclasses.dataclass
class PolicyResult:
    """One (task, method, policy): its final and peak returns, its matched step and its speed."""

    final: SeedStats
    peak: SeedStats
    step: int  # matched step (env steps)
    wall_s: float  # mean over seeds at the matched step
    agent_steps_per_s: float
    cpu_s: float  # mean over the seeds that recorded it at the matched step; NaN if none did
    cpu_seeds: int  # how many did
    seeds: list[int]


@dataclasses.dataclass
class TimeToThreshold:
    """When the seeds of one (task, method, policy) first reached a return."""

    threshold: float
    wall_s: list[float]  # of the seeds that reached it
    cpu_s: list[float]  # the same seeds'; NaN where a run did not record it
    steps: list[int]
    seeds: int  # all seeds
    last_step: int  # the furthest any seed got (for "never by ...")

    def cell(self, clock: str = "wall") -> str:
        """
        ``clock``: "wall" (wall_s) or "cpu" (cpu_s). In CPU time, the time and step are the means over the seeds
        that got there and recorded cpu_s; when some did not record it, the cell says of how many the time is.
        """
        reached = f"{len(self.wall_s)}/{self.seeds}"
        if not self.wall_s:
            return f"never (0/{self.seeds}, by {self.last_step / 1000:.0f}k)"
        seconds, steps = np.asarray(self.wall_s), np.asarray(self.steps)
        if clock == "cpu":
            recorded = np.isfinite(self.cpu_s)
            if not recorded.any():
                return f"not recorded ({reached})"
            if not recorded.all():
                reached += f"; CPU time of {int(recorded.sum())}"
            seconds, steps = np.asarray(self.cpu_s)[recorded], steps[recorded]
        return f"{seconds.mean() / 60:.1f} min @ {steps.mean() / 1000:.0f}k ({reached})"


def action_repeat(task: str) -> int:
    """2 on dm_control tasks (named ``cheetah-run``), 1 on Gymnasium ids (``Pendulum-v1``)."""
    return 1 if re.search(r"-v\d+$", task) else DMC_ACTION_REPEAT


def read_runs(patterns: list[str]) -> pd.DataFrame:
    """The rows of every CSV matching ``patterns`` (reproduce.py's columns, plus ``csv_dir``: the CSV's folder)."""
    paths = sorted({path for pattern in patterns for path in glob.glob(pattern)})
    if not paths:
        raise SystemExit(
            f"no run CSV matches {patterns}: pass --runs with reproduce.py's --out, e.g. 'benchmarks/results/suite/*.csv'"
        )
    frames = []
    for path in paths:
        # csv_dir: the --out of the reruns
        frames.append(plot.read_run_csv(path).assign(csv_dir=os.path.dirname(path) or ".", csv_path=path))
    runs = pd.concat(frames, ignore_index=True)
    # One run in two CSVs (e.g. an older --out and the suite's) would be averaged into one curve: refuse it.
    sources = runs.groupby(["method", "task", "seed"])["csv_path"].unique()
    doubled = sources[sources.map(len) > 1]
    if not doubled.empty:
        (method, task, seed), paths = next(iter(doubled.items()))
        raise SystemExit(
            f"run {method} / {task} / seed {seed} is in {len(paths)} CSVs ({', '.join(paths)}): pass --runs patterns "
            "that match one of them"
        )
    return runs.drop(columns="csv_path")


def policy_result(group: pd.DataFrame) -> PolicyResult | None:
    """Final, peak, matched step and speed of the rows of one (task, method, policy); None without rows."""
    rewards = group.pivot_table(index="step", columns="seed", values="reward", aggfunc="mean").dropna().sort_index()
    if rewards.empty:
        return None
    walls = group.pivot_table(index="step", columns="seed", values="wall_s", aggfunc="mean").loc[rewards.index]
    step = int(rewards.index[-1])
    wall_s = float(walls.loc[step].mean())
    task = str(group["task"].iloc[0])
    rate = step / action_repeat(task) / wall_s if wall_s > 0 else float("nan")
    cpus = group[group["step"] == step].groupby("seed")["cpu_s"].mean().reindex(rewards.columns).dropna()
    return PolicyResult(
        final=SeedStats.of(rewards.loc[step].to_numpy()),
        peak=SeedStats.of(rewards.max(axis=0).to_numpy()),
        step=step,
        wall_s=wall_s,
        agent_steps_per_s=rate,
        cpu_s=float(cpus.mean()) if not cpus.empty else float("nan"),
        cpu_seeds=int(cpus.size),
        seeds=sorted(int(seed) for seed in rewards.columns),
    )


def time_to_threshold(group: pd.DataFrame, threshold: float) -> TimeToThreshold:
    """Per seed, the wall time, CPU time and env step of its first evaluation at or above ``threshold``."""
    walls, cpus, steps = [], [], []
    for _, rows in group.sort_values("step").groupby("seed"):
        reached = rows[rows["reward"] >= threshold]
        if not reached.empty:
            walls.append(float(reached["wall_s"].iloc[0]))
            cpus.append(float(reached["cpu_s"].iloc[0]))
            steps.append(int(reached["step"].iloc[0]))
    return TimeToThreshold(threshold, walls, cpus, steps, int(group["seed"].nunique()), int(group["step"].max()))


def read_reference(path: pathlib.Path) -> pd.DataFrame:
    """A reference CSV on env steps (the step axis of benchmarks/plot.py's REFERENCE_STEP_SCALE for its name)."""
    if path.name not in plot.REFERENCE_STEP_SCALE:
        raise SystemExit(f"{path}: unknown step axis; add its file name to REFERENCE_STEP_SCALE in benchmarks/plot.py")
    scales = plot.REFERENCE_STEP_SCALE[path.name]
    frame = pd.read_csv(path, comment="#")
    factors = frame["method"].map(lambda method: scales.get(method, scales["*"]))
    return frame.assign(step=frame["step"] * factors)


def published_at(reference: pd.DataFrame, method: str, task: str, step: int = PUBLISHED_STEP) -> float | None:
    """The seed mean of ``method`` on ``task`` at exactly ``step`` env steps, or None when it has no such point."""
    rows = reference[(reference["method"] == method) & (reference["task"] == task) & (reference["step"] == step)]
    return float(rows["reward"].mean()) if not rows.empty else None


@dataclasses.dataclass
class TaskRow:
    task: str
    boom: dict[str, PolicyResult]  # "planner", "prior"
    baselines: dict[str, PolicyResult]  # "sac", "tqc"
    published: dict[str, float | None]  # "tdmpc2", "sac" at 100k env steps
    to_threshold: dict[str, TimeToThreshold]  # "BOOM planner", "BOOM prior", "SAC", "TQC"
    running: dict[str, dict[int, int]] = dataclasses.field(default_factory=dict)  # method: {seed: env step}


def task_rows(
    runs: pd.DataFrame,
    reference: pd.DataFrame,
    boom_method: str,
    baselines: tuple[str, ...] = ("sac", "tqc"),
    tasks: list[str] | None = None,
    running: dict[tuple[str, str], dict[int, int]] | None = None,
) -> list[TaskRow]:
    """
    One row per task: ``tasks`` (those without runs yet get empty cells), else every task that ``boom_method``
    or a baseline ran on. ``runs``: without the running seeds (``plot.hold_back_running``), which ``running`` names.
    """
    running = running or {}
    if tasks is None:
        tasks = sorted(runs.loc[runs["method"].isin([boom_method, *baselines]), "task"].unique())
    rows = []
    for task in tasks:
        of_task = runs[runs["task"] == task]
        groups = {}
        for policy in ("planner", "prior"):
            groups[f"BOOM {policy}"] = of_task[(of_task["method"] == boom_method) & (of_task["policy"] == policy)]
        for method in baselines:
            groups[method.upper()] = of_task[of_task["method"] == method]
        results = {name: policy_result(group) for name, group in groups.items() if not group.empty}
        published = {method: published_at(reference, method, task) for method in ("tdmpc2", "sac")}
        to_threshold = {}
        if published["tdmpc2"] is not None:
            threshold = THRESHOLD_FRACTION * published["tdmpc2"]
            to_threshold = {name: time_to_threshold(group, threshold) for name, group in groups.items() if not group.empty}
        rows.append(
            TaskRow(
                task=task,
                boom={policy: results[f"BOOM {policy}"] for policy in ("planner", "prior") if results.get(f"BOOM {policy}")},
                baselines={method: results[method.upper()] for method in baselines if results.get(method.upper())},
                published=published,
                to_threshold=to_threshold,
                running={method: seeds for (of, method), seeds in running.items() if of == task},
            )
        )
    return rows


def default_hardware() -> str:
    """CPU model and core count of this machine (where the table is made: run it where the runs ran)."""
    model = platform.processor() or platform.machine()
    try:
        for line in pathlib.Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{model}, {os.cpu_count()} cores, no GPU, 1 torch thread"


# The suite's evaluation interval, for the rerun command of a run that has only its step-0 evaluation yet.
SUITE_EVAL_FREQ = 10_000


def rerun_command(method: str, task: str, seeds: list[int], budget: int, eval_freq: int, out: str) -> str:
    """The reproduce.py command line that reruns one method's runs of a task."""
    if method in ("sac", "tqc"):
        selection = f"--methods {method}"
    elif method.startswith("boom-") and method[5:] in ("zoo", "paper", "tiny"):
        selection = f"--methods boom --preset {method[5:]}"
    elif method == "boom":
        selection = "--methods boom"
    else:
        selection = f"--methods boom --name '{method}'  # plus the --boom-kwargs it was run with"
    env_id = task if action_repeat(task) == 1 else f"dm_control/{task}-v0"
    return (
        f"python benchmarks/reproduce.py {selection} --tasks {env_id} --seeds {' '.join(map(str, seeds))} "
        f"--budget {budget} --eval-freq {eval_freq} --eval-episodes 10 --threads 1 --out {out}"
    )


def eval_freq_of(group: pd.DataFrame, fallback: int = SUITE_EVAL_FREQ) -> int:
    """The runs' evaluation interval; ``fallback`` while they have no evaluation after step 0."""
    steps = np.unique(group["step"].to_numpy())
    return int(np.diff(steps).min()) if steps.size > 1 else fallback


def plot_task(row: TaskRow, runs: pd.DataFrame, reference: pd.DataFrame, boom_method: str, path: pathlib.Path) -> None:
    """Our seed means with their min-max, the published curves (dashed) and the yardsticks (dotted)."""
    of_task = runs[runs["task"] == row.task]
    curves = [curve for curve in plot.load_runs(of_task, "minmax") if curve.method in (boom_method, "sac", "tqc")]
    last_step = max((int(curve.steps[-1]) for curve in curves), default=0)
    figure = Figure(figsize=(7, 4.5), layout="constrained")
    ax = figure.subplots()
    colors = {f"{boom_method} planner": "C0", f"{boom_method} prior": "C9", "sac": "C1", "tqc": "C2", "tdmpc2": "C3"}
    for curve in curves:
        color = colors.get(curve.color_key, "C7")
        ax.plot(curve.steps, curve.mean, color=color, marker="o", markersize=3, label=curve.label)
        ax.fill_between(curve.steps, curve.low, curve.high, color=color, alpha=0.2, linewidth=0)
    for method in ("tdmpc2", "sac"):
        rows = reference[(reference["task"] == row.task) & (reference["method"] == method)]
        curve = plot.seed_curve(rows, "minmax") if not rows.empty else None
        if curve is None:
            continue
        steps, mean, low, high = curve
        end = int(np.searchsorted(steps, max(last_step, PUBLISHED_STEP), side="left")) + 1  # to the right edge
        spacing = f", a point every {int(np.diff(steps).min()) // 1000}k" if steps.size > 1 else ""
        label = f"{'TD-MPC2' if method == 'tdmpc2' else 'SAC'} (published{spacing})"
        ax.plot(steps[:end], mean[:end], color=colors[method], linestyle="--", linewidth=1, marker="s", label=label)
        ax.fill_between(steps[:end], low[:end], high[:end], color=colors[method], alpha=0.08, linewidth=0)
    tdmpc2 = row.published["tdmpc2"]
    if tdmpc2 is not None:
        ax.axhline(tdmpc2, color=colors["tdmpc2"], linestyle=":", linewidth=1, label=f"TD-MPC2 at 100k: {tdmpc2:.0f}")
        ax.axhline(
            THRESHOLD_FRACTION * tdmpc2, color="0.4", linestyle=":", linewidth=1, label=f"90% of it: {0.9 * tdmpc2:.0f}"
        )
    if row.published["sac"] is not None:
        ax.axhline(
            row.published["sac"],
            color=colors["sac"],
            linestyle=":",
            linewidth=1,
            label=f"SAC at 100k: {row.published['sac']:.0f}",
        )
    ax.set_xlim(0, 1.03 * max(last_step, PUBLISHED_STEP))  # the yardsticks are 100k figures
    ax.xaxis.set_major_formatter(EngFormatter(sep=""))
    ax.set_xlabel("env steps (agent steps x action repeat)")
    ax.set_ylabel("evaluation return (seed mean, min-max shaded)")
    ax.set_title(row.task)
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small", loc="best")
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)


def _threshold_table(rows: list[TaskRow], clock: str) -> list[str]:
    """The time-to-90% table in ``clock`` time ("wall" or "cpu")."""
    lines = ["| task | 90% of TD-MPC2 100k | BOOM planner | BOOM prior | SAC | TQC |", "|---|---|---|---|---|---|"]
    for row in rows:
        if not row.to_threshold:
            continue
        threshold = next(iter(row.to_threshold.values())).threshold
        cells = [
            row.to_threshold[name].cell(clock) if name in row.to_threshold else "-"
            for name in ("BOOM planner", "BOOM prior", "SAC", "TQC")
        ]
        lines.append(f"| {row.task} | {threshold:.0f} | " + " | ".join(cells) + " |")
    return lines


def _cell(result: PolicyResult | None, what: str) -> str:
    return "-" if result is None else getattr(result, what).cell()


def _seeds(count: int) -> str:
    return f"{count} seed" if count == 1 else f"{count} seeds"


def _running(seeds: dict[int, int] | None) -> str:
    """The seeds left out while they catch up, as ', +1 running (at 20k)'; empty when none are."""
    if not seeds:
        return ""
    return f", +{len(seeds)} running (at {', '.join(f'{step / 1000:.0f}k' for step in sorted(seeds.values()))})"


def _cpu_time(result: PolicyResult) -> str:
    """Mean training CPU time at the matched step; of how many seeds, when not all recorded it."""
    if result.cpu_seeds == 0:
        return "not recorded"
    partial = "" if result.cpu_seeds == result.final.seeds else f" ({result.cpu_seeds} of {_seeds(result.final.seeds)})"
    return f"{result.cpu_s / 60:.0f} min{partial}"


def _baseline_cell(row: TaskRow, method: str) -> str:
    result = row.baselines.get(method)
    if result is None:
        return "-"
    return (
        f"{result.final.cell()} ({result.step / 1000:.0f}k, {_seeds(result.final.seeds)}{_running(row.running.get(method))})"
    )


def _published(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}"


def markdown(
    rows: list[TaskRow],
    runs: pd.DataFrame,
    boom_method: str,
    hardware: str,
    plot_dir: str | None,
    suite_budget: int = PUBLISHED_STEP,
    command: str | None = None,
) -> str:
    """The table, the time-to-90% table, the plots and the commands, as markdown (``command``: the one that made it)."""
    lines = [
        "# Benchmark table: BOOM through the RL Zoo on DMC",
        "",
        f"Made by `python benchmarks/suite_table.py` from the CSVs of benchmarks/reproduce.py (BOOM: method `{boom_method}`, "
        "the shipped hyperparams/boom.yml entries; SAC/TQC: the RL Zoo's hyperparameters, same env wrappers), on "
        f"{hardware}. Returns: mean of 10 deterministic evaluation episodes; final: each seed's return at the last "
        "evaluation (env steps column), peak: each seed's best return up to there, both as mean ± std "
        "over seeds (population std); SAC/TQC: final (their env steps, seeds). Published: the TD-MPC2 repository's "
        "curves, seed mean at exactly 100k env steps (action repeat 2 applied). Wall time: training only (no "
        "evaluations), mean over seeds; CPU time: the training process's CPU time (`cpu_s`, one torch thread), which, "
        "unlike wall time, does not grow when other work shares the cores; agent steps/s = env steps / 2 / wall time. "
        "Runs in progress: a seed behind the others of its task and method is left out of the table, the plots and "
        "the times to 90% until it gets there (seeds: +n running, at its env step). Trained agents (the final model "
        "of one seed per task, RL Zoo layout): `agents/`, "
        "made by benchmarks/package_agents.py. Where a task falls short, and why: "
        "[Validation](validation.md#where-the-easy-suite-falls-short).",
        "",
        *([f"Regenerate this page: `{command}`", ""] if command else []),
        "| task | BOOM planner final | BOOM planner peak | BOOM prior final | BOOM prior peak | SAC | TQC "
        "| TD-MPC2 100k (published) | SAC 100k (published) | env steps | seeds | wall time | CPU time | agent steps/s "
        "| hardware |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        planner, prior = row.boom.get("planner"), row.boom.get("prior")
        lead = planner or prior
        baselines = [_baseline_cell(row, method) for method in ("sac", "tqc")]
        seeds = "-" if lead is None else f"{lead.final.seeds}{_running(row.running.get(boom_method))}"
        speed = ["-"] * 5 if lead is None else [str(lead.step), seeds, f"{lead.wall_s / 60:.0f} min"]
        if lead is not None:  # a run with only its untrained evaluation (step 0) has no speed yet
            speed.append(_cpu_time(lead))
            speed.append(f"{lead.agent_steps_per_s:.1f}" if np.isfinite(lead.agent_steps_per_s) else "-")
        lines.append(
            f"| {row.task} | {_cell(planner, 'final')} | {_cell(planner, 'peak')} "
            f"| {_cell(prior, 'final')} | {_cell(prior, 'peak')} "
            f"| {baselines[0]} | {baselines[1]} | {_published(row.published['tdmpc2'])} | {_published(row.published['sac'])} "
            f"| {' | '.join(speed)} | {hardware} |"
        )
    lines += [
        "",
        "### Wall-clock time to 90% of TD-MPC2's published 100k figure",
        "",
        "Training wall time (mean over the seeds that got there, n/N seeds, mean env step) to the first evaluation at or "
        "above 0.9 x TD-MPC2's published return at 100k env steps; never: no seed got there within its run.",
        "",
        *_threshold_table(rows, "wall"),
        "",
        "### CPU time to 90% of TD-MPC2's published 100k figure",
        "",
        "The same, in training CPU time (reproduce.py's `cpu_s`: the CPU time of the training process, one torch thread). "
        "Wall time grows when other work shares the cores; CPU time does not, so this table compares runs made at "
        "different loads. Not recorded: runs whose CSVs have no `cpu_s` (resumed from a checkpoint written without it); "
        "CPU time of k: the time and env step are the means over the k seeds that recorded it.",
        "",
        *_threshold_table(rows, "cpu"),
    ]
    lines += [
        "",
        "### Commands",
        "",
        "Each row's runs (reproduce.py resumes from its checkpoints: a larger `--budget` extends a run):",
        "",
        "```bash",
    ]
    for row in rows:
        of_task = runs[runs["task"] == row.task]
        for method in [boom_method, "sac", "tqc"]:
            group = of_task[of_task["method"] == method]
            if group.empty:
                continue
            budget = int(group["step"].max())
            seeds = sorted(int(seed) for seed in group["seed"].unique())
            out = str(group["csv_dir"].iloc[0])
            # a BOOM run in progress gets the suite's budget (reproduce.py resumes it); a finished run its own
            budget = max(budget, suite_budget) if method == boom_method else budget
            lines.append(rerun_command(method, row.task, seeds, budget, eval_freq_of(group), out))
    lines.append("```")
    if plot_dir is not None:
        lines += ["", "### Learning curves", ""]
        lines += [f"![{row.task}]({plot_dir}/{row.task}.png)" for row in rows]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", nargs="+", default=["benchmarks/results/suite/*.csv"], help="reproduce.py CSVs (globs)")
    parser.add_argument("--boom-method", default="boom-zoo", help="the CSV method name of the BOOM runs")
    parser.add_argument("--tasks", nargs="+", default=None, help="rows, in order (default: the tasks in the runs)")
    parser.add_argument("--reference", type=pathlib.Path, default=BENCHMARKS_DIR / "reference" / "tdmpc2.csv")
    parser.add_argument("--out", type=pathlib.Path, default=None, help="markdown file (default: print it)")
    parser.add_argument("--plots", type=pathlib.Path, default=None, help="folder for <task>.png (default: no plots)")
    parser.add_argument("--hardware", default=None, help="the machine the runs ran on (default: this one's CPU)")
    args = parser.parse_args(argv)

    runs = read_runs(args.runs)
    if not (runs["method"] == args.boom_method).any():
        found = sorted(runs["method"].unique())
        raise SystemExit(f"no rows of method {args.boom_method!r} in the runs (methods: {found}): pass --boom-method")
    reference = read_reference(args.reference)
    shown, running = plot.hold_back_running(runs)
    rows = task_rows(shown, reference, args.boom_method, tasks=args.tasks, running=running)
    plot_ref = None
    if args.plots is not None:
        for row in rows:
            plot_task(row, shown, reference, args.boom_method, args.plots / f"{row.task}.png")
        base = args.out.parent if args.out is not None else pathlib.Path.cwd()
        plot_ref = os.path.relpath(args.plots, base)
    command = "python benchmarks/suite_table.py " + " ".join(
        shlex.quote(arg) for arg in (argv if argv is not None else sys.argv[1:])
    )
    text = markdown(rows, runs, args.boom_method, args.hardware or default_hardware(), plot_ref, command=command)
    if args.out is None:
        print(text, end="")
    else:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)
        print(f"wrote {args.out} ({len(rows)} tasks)" + (f" and {len(rows)} plots in {args.plots}" if args.plots else ""))


if __name__ == "__main__":
    main()
