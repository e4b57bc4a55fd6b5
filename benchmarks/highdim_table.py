"""
The high-dimensional page of the benchmarks: BOOM's runs of a hard DMC task on a CPU budget (dog-stand with
the ``cpu`` preset), evaluation by evaluation, beside the published curves at the same env steps.

    python benchmarks/highdim_table.py --runs 'benchmarks/results/highdim/*.csv' --task dog-stand \\
        --out docs/highdim.md --plot docs/img/highdim/dog-stand.png

``--compare-runs`` adds the runs of a cheaper setting (``--compare-method``, made with reproduce.py's
``--preset cpu --boom-kwargs <--compare-kwargs> --name <--compare-method>``) as columns beside the preset's.

Published curves, on env steps:

- TD-MPC2 and SAC (5M model on a GPU; the TD-MPC2 repository's per-seed curves, a point every 100k env
  steps): seed mean, linearly interpolated between its points where ours fall in between (marked ``~``);
- BOOM (its repository's 3-seed mean on a nominal 100k * i axis). BOOM's trainer logs agent steps, so
  the file's step 100k is read as 200k env steps (action repeat 2), as benchmarks/plot.py reads it; the
  same file's TD-MPC2 entries sit on env steps, so the other reading (step = env steps) is shown too.
"""

import argparse
import dataclasses
import os
import pathlib
import shlex
import sys

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import EngFormatter

if __package__:  # imported as benchmarks.highdim_table
    from benchmarks import suite_table
else:  # python benchmarks/highdim_table.py: this folder is sys.path[0]
    import suite_table

REFERENCE_DIR = suite_table.BENCHMARKS_DIR / "reference"
AGENT_STEP_READING = "BOOM (published, x = agent steps)"
ENV_STEP_READING = "BOOM (published, x = env steps)"


def published_curves(task: str, reference_dir: pathlib.Path = REFERENCE_DIR) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Seed-mean curves ``name -> (env steps, return)`` of the published methods on ``task``."""
    curves = {}
    tdmpc2 = suite_table.read_reference(reference_dir / "tdmpc2.csv")
    for method, name in (("tdmpc2", "TD-MPC2 (published)"), ("sac", "SAC (published)")):
        rows = tdmpc2[(tdmpc2["task"] == task) & (tdmpc2["method"] == method)]
        if not rows.empty:
            mean = rows.groupby("step")["reward"].mean().sort_index()
            curves[name] = (mean.index.to_numpy(np.int64), mean.to_numpy(np.float64))
    # The project's reading of boom.csv's axis (benchmarks/plot.py's REFERENCE_STEP_SCALE), then the file as stored.
    for reading, frame in (
        (AGENT_STEP_READING, suite_table.read_reference(reference_dir / "boom.csv")),
        (ENV_STEP_READING, pd.read_csv(reference_dir / "boom.csv", comment="#")),
    ):
        rows = frame[(frame["task"] == task) & (frame["method"] == "boom")].sort_values("step")
        if not rows.empty:
            curves[reading] = (rows["step"].to_numpy(np.int64), rows["reward"].to_numpy(np.float64))
    return curves


def value_at(curve: tuple[np.ndarray, np.ndarray], step: int) -> str:
    """The curve at ``step``: exact on its grid, ``~`` interpolated between points, ``-`` outside it."""
    steps, values = curve
    if step < steps[0] or step > steps[-1]:
        return "-"
    exact = np.flatnonzero(steps == step)
    if exact.size:
        return f"{values[exact[0]]:.0f}"
    return f"~{np.interp(step, steps, values):.0f}"


def our_curve(runs: pd.DataFrame, method: str, task: str, policy: str) -> pd.DataFrame:
    """Per evaluation step: mean, population std and count over seeds, mean training wall and CPU time."""
    rows = runs[(runs["method"] == method) & (runs["task"] == task) & (runs["policy"] == policy)]
    return rows.groupby("step").agg(
        mean=("reward", "mean"),
        std=("reward", lambda values: float(np.std(values))),
        seeds=("seed", "nunique"),
        wall_s=("wall_s", "mean"),
        cpu_s=("cpu_s", "mean"),  # NaN where no seed recorded it
    )


def seed_cell(curve: pd.DataFrame, step: int) -> str:
    """``mean ± std (seeds)`` of ``curve`` at ``step``, ``-`` where it has no evaluation there."""
    if step not in curve.index:
        return "-"
    return f"{curve.loc[step, 'mean']:.0f} ± {curve.loc[step, 'std']:.0f} ({int(curve.loc[step, 'seeds'])})"


@dataclasses.dataclass
class Comparison:
    """A cheaper setting's runs beside the preset's: its CSV method name, its settings and its curves."""

    method: str
    kwargs: str  # reproduce.py --boom-kwargs over the cpu preset
    planner: pd.DataFrame
    prior: pd.DataFrame
    out: str  # the CSVs' folder
    note: str = ""  # what the setting saves, with the command that measured it


def plot(
    task: str,
    planner: pd.DataFrame,
    prior: pd.DataFrame,
    runs: pd.DataFrame,
    method: str,
    path: pathlib.Path,
    comparison: Comparison | None = None,
) -> None:
    """Each seed's planner curve, the seed means of planner and prior (and of the cheaper setting's planner), and
    the published curves to our last step."""
    figure = Figure(figsize=(7, 4.5), layout="constrained")
    ax = figure.subplots()
    of_task = runs[(runs["method"] == method) & (runs["task"] == task)]
    for seed, rows in of_task[of_task["policy"] == "planner"].groupby("seed"):
        rows = rows.sort_values("step")
        ax.plot(rows["step"], rows["reward"], color="C0", alpha=0.35, linewidth=1, label=f"planner, seed {seed}")
    ax.plot(planner.index, planner["mean"], color="C0", marker="o", markersize=3, label="BOOM planner (ours, seed mean)")
    ax.plot(prior.index, prior["mean"], color="C9", marker="o", markersize=3, label="BOOM prior (ours, seed mean)")
    if comparison is not None and not comparison.planner.empty:
        ax.plot(
            comparison.planner.index,
            comparison.planner["mean"],
            color="C2",
            marker="^",
            markersize=4,
            label=f"BOOM planner, cpu preset + {comparison.kwargs} (seed mean)",
        )
    last = int(planner.index.max())
    styles = {
        "TD-MPC2 (published)": ("C3", "--"),
        "SAC (published)": ("C1", "--"),
        AGENT_STEP_READING: ("C4", "--"),
        ENV_STEP_READING: ("C4", ":"),
    }
    for name, (steps, values) in published_curves(task).items():
        keep = steps <= max(last, 200_000)
        color, style = styles[name]
        ax.plot(steps[keep], values[keep], color=color, linestyle=style, marker="s", markersize=3, linewidth=1, label=name)
    ax.xaxis.set_major_formatter(EngFormatter(sep=""))
    ax.set_xlabel("env steps (agent steps x action repeat 2)")
    ax.set_ylabel("evaluation return")
    ax.set_title(f"{task}: BOOM, cpu preset, on a CPU")
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small", loc="upper left")
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)


def markdown(
    runs: pd.DataFrame,
    planner: pd.DataFrame,
    prior: pd.DataFrame,
    method: str,
    task: str,
    hardware: str,
    plot_ref: str | None,
    command: str,
    budget: int,
    comparison: Comparison | None = None,
) -> str:
    """The page: ``planner`` and ``prior`` are :func:`our_curve` of ``runs`` for ``method`` on ``task``."""
    curves = published_curves(task)
    names = list(curves)
    seeds = sorted(int(seed) for seed in runs.loc[(runs["method"] == method) & (runs["task"] == task), "seed"].unique())
    last = int(planner.index.max())
    of_run = runs[(runs["method"] == method) & (runs["task"] == task) & (runs["policy"] == "planner")]
    seeds_at_last = sorted(int(seed) for seed in of_run.loc[of_run["step"] == last, "seed"].unique())
    wall_s = float(planner.loc[last, "wall_s"])
    rate = last / suite_table.DMC_ACTION_REPEAT / wall_s
    out = str(runs.loc[runs["method"] == method, "csv_dir"].iloc[0])
    rerun = (
        f"python benchmarks/reproduce.py --methods boom --preset cpu --tasks dm_control/{task}-v0 "
        f"--seeds {' '.join(map(str, seeds))} --budget {budget} --eval-freq {suite_table.eval_freq_of(planner.reset_index())} "
        f"--eval-episodes 5 --threads 1 --out {out}"
    )
    lines = [
        "# A high-dimensional task on a CPU",
        "",
        f"BOOM on {task} with the `cpu` preset (the 1 MB model of the easy tasks, 128 samples, 3 MPPI iterations, "
        'batch 128; `sb3_boom.presets.PRESETS["cpu"]`), the paper\'s protocol (flattened float32 observations, '
        f"action repeat 2), 1 torch thread on {hardware}. Returns: mean of 5 deterministic evaluation episodes per "
        "seed; the cells give mean ± std over seeds (n). Published curves (5M models on a GPU) at the same env "
        "steps: `~` marks a value interpolated between their 100k-step points. BOOM's published curve is on a "
        "nominal axis that its trainer logs as agent steps (x2 = env steps); the same file's TD-MPC2 entries are on "
        "env steps, so both readings of BOOM's axis are shown.",
        "",
        f"Regenerate this page: `{command}`",
        "",
        "Through the RL Zoo, the same settings: "
        f"`python -m rl_zoo3.train --algo boom --env dm_control/{task}-v0 --hyperparams preset:\"'cpu'\" "
        f"n_timesteps:{budget // suite_table.DMC_ACTION_REPEAT}` ([presets](rl_zoo.md#presets)).",
        "",
        "| env steps | BOOM planner (ours) | BOOM prior (ours) | "
        + ("BOOM planner, cheaper setting (ours) | " if comparison is not None else "")
        + " | ".join(names)
        + " | wall time |",
        "|---" * (4 + len(names) + (comparison is not None)) + "|",
    ]
    for step in planner.index:
        cells = [seed_cell(planner, step), seed_cell(prior, step)]
        if comparison is not None:
            cells.append(seed_cell(comparison.planner, step))
        cells += [value_at(curves[name], int(step)) for name in names]
        lines.append(f"| {step / 1000:.0f}k | " + " | ".join(cells) + f" | {planner.loc[step, 'wall_s'] / 60:.0f} min |")
    random_return = planner["mean"].iloc[0]
    published_last = ", ".join(f"{name} {value_at(curves[name], last)}" for name in names)
    lines += [
        "",
        f"At {last // 1000}k env steps, the last evaluation: our planner {planner.loc[last, 'mean']:.0f} "
        f"({int(planner.loc[last, 'seeds'])} seeds), {random_return:.0f} untrained; "
        f"published at the same env steps: {published_last}.",
        "",
        f"Speed: {rate:.1f} agent steps/s over {last // 1000}k env steps "
        f"(training only, mean over seeds {seeds_at_last}, those that got there).",
        "",
        "The runs (reproduce.py resumes from its checkpoints; a larger `--budget` extends them):",
        "",
        "```bash",
        rerun,
        "```",
    ]
    if comparison is not None:
        lines += comparison_section(comparison, task, budget, seeds, suite_table.eval_freq_of(planner.reset_index()))
    if plot_ref is not None:
        lines += ["", f"![{task}]({plot_ref})"]
    return "\n".join(lines) + "\n"


def comparison_section(
    comparison: Comparison, task: str, budget: int, preset_seeds: list[int], preset_eval_freq: int
) -> list[str]:
    """
    The cheaper setting: what it changes, where its runs have got, their CPU time and the command that reruns them
    (at the preset's evaluation interval while its runs have only step 0).
    """
    planner, prior = comparison.planner, comparison.prior
    lines = [
        "",
        "## A cheaper setting",
        "",
        f"The `cpu` preset with `{comparison.kwargs}` (CSV method `{comparison.method}`), the table's column "
        '"BOOM planner, cheaper setting".' + (f" {comparison.note}" if comparison.note else ""),
        "",
    ]
    if planner.empty or planner.index.max() == 0:
        lines.append("Its runs have only their untrained evaluation so far.")
    else:
        last = int(planner.index.max())
        cpu_s = planner.loc[last, "cpu_s"]
        cpu = (
            f"; training CPU time {cpu_s / 60:.0f} min "
            f"({last / suite_table.DMC_ACTION_REPEAT / cpu_s:.1f} agent steps per CPU second)"
            if np.isfinite(cpu_s)
            else ""
        )
        lines.append(f"At {last // 1000}k env steps: planner {seed_cell(planner, last)}, prior {seed_cell(prior, last)}{cpu}.")
    seeds = " ".join(map(str, preset_seeds))
    lines += [
        "",
        "```bash",
        f"python benchmarks/reproduce.py --methods boom --preset cpu --boom-kwargs {comparison.kwargs} "
        f"--name {comparison.method} --tasks dm_control/{task}-v0 --seeds {seeds} --budget {budget} "
        f"--eval-freq {suite_table.eval_freq_of(planner.reset_index(), preset_eval_freq)} "
        f"--eval-episodes 5 --threads 1 --out {comparison.out}",
        "```",
    ]
    return lines


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", nargs="+", default=["benchmarks/results/highdim/*.csv"], help="reproduce.py CSVs (globs)")
    parser.add_argument("--task", default="dog-stand")
    parser.add_argument("--method", default="boom", help="the CSV method name of the runs (boom: --preset cpu)")
    parser.add_argument("--budget", type=int, default=200_000, help="the runs' env-step budget, for the rerun command")
    parser.add_argument("--out", type=pathlib.Path, default=None, help="markdown file (default: print it)")
    parser.add_argument("--plot", type=pathlib.Path, default=None, help="PNG of the curves (default: none)")
    parser.add_argument("--hardware", default=None, help="the machine the runs ran on (default: this one's CPU)")
    parser.add_argument("--compare-runs", nargs="+", default=None, help="CSVs (globs) of a cheaper setting's runs")
    parser.add_argument("--compare-method", default=None, help="their CSV method name (reproduce.py --name)")
    parser.add_argument("--compare-kwargs", default=None, help="their reproduce.py --boom-kwargs, as one string")
    parser.add_argument("--compare-note", default="", help="a sentence on what the setting saves and how it was measured")
    args = parser.parse_args(argv)
    runs = suite_table.read_runs(args.runs)
    planner, prior = (our_curve(runs, args.method, args.task, policy) for policy in ("planner", "prior"))
    if planner.empty:
        raise SystemExit(f"no planner rows of method {args.method!r} on {args.task!r} in the runs")
    comparison = None
    if args.compare_runs is not None:
        if not (args.compare_method and args.compare_kwargs):
            raise SystemExit("--compare-runs needs --compare-method (the CSV method name) and --compare-kwargs")
        others = suite_table.read_runs(args.compare_runs)
        curves = [our_curve(others, args.compare_method, args.task, policy) for policy in ("planner", "prior")]
        if curves[0].empty:
            raise SystemExit(f"no planner rows of method {args.compare_method!r} on {args.task!r} in --compare-runs")
        out = str(others.loc[others["method"] == args.compare_method, "csv_dir"].iloc[0])
        comparison = Comparison(args.compare_method, args.compare_kwargs, curves[0], curves[1], out, args.compare_note)
    plot_ref = None
    if args.plot is not None:
        plot(args.task, planner, prior, runs, args.method, args.plot, comparison)
        base = args.out.parent if args.out is not None else pathlib.Path.cwd()
        plot_ref = os.path.relpath(args.plot, base)
    command = "python benchmarks/highdim_table.py " + " ".join(
        shlex.quote(arg) for arg in (argv if argv is not None else sys.argv[1:])
    )
    hardware = args.hardware or suite_table.default_hardware()
    text = markdown(runs, planner, prior, args.method, args.task, hardware, plot_ref, command, args.budget, comparison)
    if args.out is None:
        print(text, end="")
    else:
        args.out.write_text(text)
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
