"""
Plot the learning curves written by benchmarks/reproduce.py: per task, the mean over seeds of each
method and policy against env steps, with the spread over seeds shaded (min-max or +/- std), and the
published reference curves of benchmarks/reference/ for that task. Writes ``<task>.png`` per task and
``summary.md``: per task, method and policy, the peak of the seed-mean curve and its value at the
matched env step (the last step that every run of the task reached with all its seeds), for the
runs and the references alike.

    python benchmarks/plot.py --runs 'runs/reproduce/*.csv' --out runs/reproduce/report
    python benchmarks/plot.py --runs 'runs/a/*.csv' 'runs/b/*.csv' --spread std --no-reference
    python benchmarks/plot.py --runs 'runs/reproduce/*.csv' --compare boom authors
    python benchmarks/plot.py --runs 'runs/ablations/*.csv' --compare 'boom[alignment=rkl]' boom \
        --compare 'boom[alignment=none]' boom

``--compare A B`` (repeatable) adds, per task and policy that both methods have (or each of A's
policies against B's only one, as for BOOM against SAC's actor), a table of every
evaluation step that both reached with all their seeds: A's and B's seed means with their min-max over seeds, and a
verdict: ``above`` / ``below`` when A's mean lies outside B's min-max range (and B's outside A's),
``level`` otherwise, both seed medians, and the two-sided Mann-Whitney U test's p-value of A's seeds against B's
(``scipy.stats.mannwhitneyu``: does one side's return tend to be larger, with no assumption on the spread).

A seed-mean is only taken at the steps that all seeds of a curve have (a run still in progress
shortens its group's curve rather than mixing seed counts). With ``--hold-back-running``, a seed whose last
evaluation is behind the furthest seed of its (task, method) is left out instead, until it gets there, and
summary.md names it: for suites whose seeds run one after another (seed 1 at 10k would cut seed 0's curve there).
"""

import argparse
import glob
import pathlib
import re
from dataclasses import dataclass

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import EngFormatter
from scipy.stats import mannwhitneyu

RUN_COLUMNS = ["method", "task", "step", "reward", "seed", "policy", "wall_s"]
# reproduce.py's training CPU time; a CSV without it (a run resumed from an older checkpoint) reads as NaN.
OPTIONAL_RUN_COLUMNS = ["cpu_s"]
REFERENCE_DIR = pathlib.Path(__file__).resolve().parent / "reference"

# Step axis of each reference file (the copies in benchmarks/reference/, each with its source lines),
# as the factor that turns its `step` into env steps, per method ("*": any other method).
REFERENCE_STEP_SCALE: dict[str, dict[str, int]] = {
    # TD-MPC2 repo (tdmpc2, sac): env steps, action repeat 2 already applied (tdmpc2 issue #45).
    "tdmpc2.csv": {"*": 1},
    # TD-MPC2 repo's pixel curves (results/tdmpc2-pixels): env steps, as tdmpc2.csv.
    "tdmpc2_pixels.csv": {"*": 1},
    # BMPC repo: env steps (its sac rows equal the TD-MPC2 repo's at the same steps).
    "bmpc.csv": {"*": 1},
    # BOOM repo (only the 7 hard DMC and 7 h1hand tasks, none of which is copied here yet): a nominal
    # 100k * i axis that is AGENT steps for BOOM's own curves (its trainer logs agent steps, action
    # repeat 2) and for sac/dreamerv3 (entry i = 200k * i env steps in the TD-MPC2 repo); bmpc is
    # assumed to be the same (unverified); its tdmpc2 entries are on env steps (entry i = 100k * i).
    "boom.csv": {"tdmpc2": 1, "*": 2},
    # HumanoidBench: no action repeat, env steps = agent steps.
    "humanoidbench.csv": {"*": 1},
}


@dataclass
class Curve:
    """A seed-mean curve on env steps with its spread; ``seeds`` is None for published aggregates."""

    task: str
    method: str
    policy: str
    steps: np.ndarray
    mean: np.ndarray
    low: np.ndarray
    high: np.ndarray
    seeds: int | None
    source: str  # "run" or the reference file's name

    @property
    def color_key(self) -> str:
        """Curves of the same method share a colour (a run's ``sac`` and the published ``sac``)."""
        return self.method if self.policy in ("", "actor") else f"{self.method} {self.policy}"

    @property
    def label(self) -> str:
        if self.source != "run":
            return f"{self.method} (published, {self.source})"
        name = self.method if self.policy == "actor" else f"{self.method} {self.policy}"
        return f"{name} ({self.seeds} seed{'s' * (self.seeds != 1)})"

    def value_at(self, step: int) -> tuple[float, bool]:
        """The mean at ``step`` and whether it is on the curve's grid (else linearly interpolated)."""
        exact = np.flatnonzero(self.steps == step)
        if exact.size:
            return float(self.mean[exact[0]]), True
        return float(np.interp(step, self.steps, self.mean)), False


def seed_curve(frame: pd.DataFrame, spread: str) -> tuple[np.ndarray, ...] | None:
    """Mean, low and high over seeds at the steps that every seed of ``frame`` has."""
    table = frame.pivot_table(index="step", columns="seed", values="reward", aggfunc="mean").dropna().sort_index()
    if table.empty:
        return None
    values = table.to_numpy(dtype=np.float64)
    mean = values.mean(axis=1)
    if spread == "std":
        std = values.std(axis=1)  # population std over seeds (ddof=0, as the published spreads)
        low, high = mean - std, mean + std
    else:
        low, high = values.min(axis=1), values.max(axis=1)
    return table.index.to_numpy(dtype=np.int64), mean, low, high


def read_runs(patterns: list[str]) -> pd.DataFrame:
    """All rows of the run CSVs matching ``patterns``, checked for the expected columns."""
    paths = sorted({path for pattern in patterns for path in glob.glob(pattern)})
    if not paths:
        raise SystemExit(f"no run CSV matches {patterns}")
    return pd.concat([read_run_csv(path) for path in paths], ignore_index=True)


def read_run_csv(path: str) -> pd.DataFrame:
    """One reproduce.py CSV, with ``cpu_s`` NaN where the CSV does not record it; exits naming a wrong file."""
    frame = pd.read_csv(path)
    columns = list(frame.columns)
    if columns not in (RUN_COLUMNS, RUN_COLUMNS + OPTIONAL_RUN_COLUMNS):
        raise SystemExit(
            f"{path}: columns {columns}, expected {RUN_COLUMNS} (+ {OPTIONAL_RUN_COLUMNS}): a benchmarks/reproduce.py CSV"
        )
    return frame.reindex(columns=RUN_COLUMNS + OPTIONAL_RUN_COLUMNS)


def hold_back_running(runs: pd.DataFrame) -> tuple[pd.DataFrame, dict[tuple[str, str], dict[int, int]]]:
    """
    The rows of the seeds that reached the furthest env step of their (task, method), and the others: per
    (task, method), each running seed's last env step. Averaging a seed at 10k into the others' 100k would
    pull the table back to 10k (or, curve point by curve point, mix seeds), so a running seed waits.
    """
    last = runs.groupby(["task", "method", "seed"])["step"].max()
    furthest = last.groupby(level=["task", "method"]).transform("max")
    behind = last[last < furthest]
    running: dict[tuple[str, str], dict[int, int]] = {}
    for (task, method, seed), step in behind.items():
        running.setdefault((str(task), str(method)), {})[int(seed)] = int(step)
    keep = ~pd.MultiIndex.from_frame(runs[["task", "method", "seed"]]).isin(behind.index)
    return runs[keep], running


def load_runs(runs: pd.DataFrame, spread: str) -> list[Curve]:
    """One seed-mean curve per (task, method, policy) of the rows ``runs``."""
    curves = []
    for (task, method, policy), group in runs.groupby(["task", "method", "policy"], sort=True):
        curve = seed_curve(group, spread)
        if curve is not None:
            curves.append(Curve(task, method, policy, *curve, seeds=group["seed"].nunique(), source="run"))
    return curves


def load_references(directory: pathlib.Path, tasks: set[str], spread: str) -> list[Curve]:
    """The reference curves of ``tasks``, converted to env steps."""
    curves = []
    for path in sorted(directory.glob("*.csv")):
        if path.name not in REFERENCE_STEP_SCALE:
            raise SystemExit(f"{path}: unknown step axis; add it to REFERENCE_STEP_SCALE")
        scales = REFERENCE_STEP_SCALE[path.name]
        frame = pd.read_csv(path, comment="#")
        frame = frame[frame["task"].isin(tasks)]
        for (task, method), group in frame.groupby(["task", "method"], sort=True):
            group = group.assign(step=group["step"] * scales.get(method, scales["*"]))
            if (group["seed"].astype(str) == "mean").all():  # published aggregate: mean and band
                group = group.sort_values("step")
                mean = group["reward"].to_numpy(dtype=np.float64)
                if "reward_lo" in group:
                    low, high = group["reward_lo"].to_numpy(np.float64), group["reward_hi"].to_numpy(np.float64)
                elif "reward_std" in group:
                    std = group["reward_std"].to_numpy(np.float64)
                    low, high = mean - std, mean + std
                else:
                    low = high = mean
                curves.append(Curve(task, method, "", group["step"].to_numpy(np.int64), mean, low, high, None, path.name))
            else:
                curve = seed_curve(group, spread)
                if curve is not None:
                    curves.append(Curve(task, method, "", *curve, seeds=group["seed"].nunique(), source=path.name))
    return curves


def clipped(curve: Curve, last_step: int) -> Curve:
    """The part of ``curve`` up to the first point at or after ``last_step`` (so lines reach the plot's edge)."""
    end = int(np.searchsorted(curve.steps, last_step, side="left")) + 1
    return Curve(
        curve.task,
        curve.method,
        curve.policy,
        curve.steps[:end],
        curve.mean[:end],
        curve.low[:end],
        curve.high[:end],
        curve.seeds,
        curve.source,
    )


def plot_task(task: str, runs: list[Curve], references: list[Curve], spread: str, path: pathlib.Path) -> None:
    last_step = max(int(curve.steps[-1]) for curve in runs)
    figure = Figure(figsize=(7, 4.5), layout="constrained")
    ax = figure.subplots()
    keys = list(dict.fromkeys(curve.color_key for curve in [*runs, *references]))
    # Past the default cycle's 10 colours (an ablation plot has 12 curves), 20 distinct ones instead of repeats.
    palette = [f"C{index}" for index in range(10)]
    if len(keys) > len(palette):
        palette = [matplotlib.colormaps["tab20"](index) for index in range(20)]
    colors = {key: palette[index % len(palette)] for index, key in enumerate(keys)}
    for curve in runs:
        color = colors[curve.color_key]
        ax.plot(curve.steps, curve.mean, color=color, marker="o", markersize=3, label=curve.label)
        ax.fill_between(curve.steps, curve.low, curve.high, color=color, alpha=0.2, linewidth=0)
    for curve in references:
        curve, color = clipped(curve, last_step), colors[curve.color_key]
        ax.plot(curve.steps, curve.mean, color=color, linestyle="--", linewidth=1.2, label=curve.label)
        ax.fill_between(curve.steps, curve.low, curve.high, color=color, alpha=0.08, linewidth=0)
    ax.set_xlim(0, max(last_step, 1))
    ax.xaxis.set_major_formatter(EngFormatter(sep=""))
    ax.set_xlabel("env steps (agent steps x action repeat)")
    spread_name = "min-max" if spread == "minmax" else "+/- std"
    ax.set_ylabel(f"evaluation return (seed mean, {spread_name} shaded)")
    ax.set_title(task)
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small", loc="best")
    figure.savefig(path, dpi=120)


def summary_rows(task: str, runs: list[Curve], references: list[Curve]) -> list[str]:
    """Markdown rows: peak of the seed-mean up to the matched step, and the value at that step."""
    matched = min(int(curve.steps[-1]) for curve in runs)
    rows = []
    for curve in [*runs, *references]:
        if not curve.steps[0] <= matched <= curve.steps[-1]:
            continue  # no extrapolation
        at_matched, on_grid = curve.value_at(matched)
        inside = curve.steps <= matched
        candidates = [*zip(curve.mean[inside], curve.steps[inside], strict=True), (at_matched, matched)]
        peak, peak_step = max(candidates, key=lambda item: item[0])
        mark = "" if on_grid else "~"
        peak_mark = mark if peak_step == matched else ""
        seeds = str(curve.seeds) if curve.seeds is not None else "mean"
        source = "this repo" if curve.source == "run" else f"reference/{curve.source}"
        rows.append(
            f"| {task} | {curve.method} | {curve.policy or '-'} | {seeds} | {matched} "
            f"| {peak_mark}{peak:.1f} | {int(peak_step)} | {mark}{at_matched:.1f} | {source} |"
        )
    return rows


def side_by_side(task: str, ours: Curve, theirs: Curve, ours_runs: pd.DataFrame, theirs_runs: pd.DataFrame) -> list[str]:
    """Markdown rows comparing two run curves at every step both have, with min-max and median over seeds."""
    rows = []
    policy = ours.policy if ours.policy == theirs.policy else f"{ours.policy} / {theirs.policy}"
    for step in np.intersect1d(ours.steps, theirs.steps):
        values, per_seed = [], []
        for curve, frame in ((ours, ours_runs), (theirs, theirs_runs)):
            rewards = frame[(frame["step"] == step) & (frame["policy"] == curve.policy)].groupby("seed")["reward"].mean()
            values.append((float(rewards.mean()), float(rewards.min()), float(rewards.max()), float(rewards.median())))
            per_seed.append(rewards.to_numpy())
        (mean_a, low_a, high_a, median_a), (mean_b, low_b, high_b, median_b) = values
        p_value = mannwhitneyu(*per_seed, alternative="two-sided").pvalue
        if mean_a > high_b and mean_b < low_a:
            verdict = "above"
        elif mean_a < low_b and mean_b > high_a:
            verdict = "below"
        else:
            verdict = "level"
        rows.append(
            f"| {task} | {policy} | {int(step)} | {mean_a:.1f} ({low_a:.0f}-{high_a:.0f}) "
            f"| {mean_b:.1f} ({low_b:.0f}-{high_b:.0f}) | {mean_a - mean_b:+.1f} | {verdict} "
            f"| {median_a:.1f} / {median_b:.1f} | {p_value:.2f} |"
        )
    return rows


def compare_table(runs: list[Curve], frame: pd.DataFrame, method_a: str, method_b: str) -> list[str]:
    """The ``--compare`` section of summary.md."""
    table = [
        f"## {method_a} vs {method_b}, step by step",
        "",
        "Seed mean (min-max over seeds). *verdict*: `above` / `below` when each mean lies outside the other's",
        "min-max range, else `level`. The seed medians, which one outlying seed moves less than the means,",
        "are in their own column; *p*: the two-sided Mann-Whitney U test of A's seeds against B's.",
        "",
        f"| task | policy | env steps | {method_a} | {method_b} | difference | verdict | medians | p |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    by_key = {(curve.task, curve.method, curve.policy): curve for curve in runs}
    for (task, method, policy), ours in sorted(by_key.items()):
        if method != method_a:
            continue
        theirs = by_key.get((task, method_b, policy))
        if theirs is None:
            # A method with one policy (SAC's or TQC's actor) is set against each of A's policies.
            single = [curve for (other_task, other, _), curve in by_key.items() if (other_task, other) == (task, method_b)]
            theirs = single[0] if len(single) == 1 else None
        if theirs is None:
            continue
        table += side_by_side(
            task,
            ours,
            theirs,
            frame[(frame["task"] == task) & (frame["method"] == method_a)],
            frame[(frame["task"] == task) & (frame["method"] == method_b)],
        )
    return table


def wall_time_table(frame: pd.DataFrame) -> list[str]:
    """Markdown rows: per run (method, task, seed), its last env step and training wall time there."""
    table = [
        "## Wall time of each run",
        "",
        "Training time up to the run's last evaluation, without evaluations and checkpoints (`wall_s`).",
        "",
        "| task | method | seed | env steps | wall time (s) | env steps/s |",
        "|---|---|---|---|---|---|",
    ]
    last = frame.sort_values("step").groupby(["task", "method", "seed"], sort=True).tail(1)
    for row in last.sort_values(["task", "method", "seed"]).itertuples():
        rate = f"{row.step / row.wall_s:.1f}" if row.wall_s > 0 else "-"
        table.append(f"| {row.task} | {row.method} | {row.seed} | {row.step} | {row.wall_s:.0f} | {rate} |")
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", nargs="+", default=["runs/reproduce/*.csv"], help="glob patterns of run CSVs")
    parser.add_argument("--out", type=pathlib.Path, default=pathlib.Path("runs/reproduce/report"), help="output folder")
    parser.add_argument("--spread", choices=["minmax", "std"], default="minmax", help="shaded spread over seeds")
    parser.add_argument("--reference", type=pathlib.Path, default=REFERENCE_DIR, help="folder of reference CSVs")
    parser.add_argument("--no-reference", action="store_true", help="plot the runs only")
    parser.add_argument(
        "--compare",
        nargs=2,
        action="append",
        metavar=("A", "B"),
        help="add a step-by-step table of method A vs method B (repeatable: one table per pair)",
    )
    parser.add_argument(
        "--hold-back-running",
        action="store_true",
        help="leave out the seeds behind the furthest of their (task, method) until they get there",
    )
    args = parser.parse_args()

    frame = read_runs(args.runs)
    running: dict[tuple[str, str], dict[int, int]] = {}
    if args.hold_back_running:
        frame, running = hold_back_running(frame)
    runs = load_runs(frame, args.spread)
    tasks = sorted({curve.task for curve in runs})
    references = [] if args.no_reference else load_references(args.reference, set(tasks), args.spread)
    args.out.mkdir(parents=True, exist_ok=True)
    table = [
        "| task | method | policy | seeds | matched env steps | peak of mean | peak at step | at matched steps | source |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for task in tasks:
        task_runs = [curve for curve in runs if curve.task == task]
        task_references = [curve for curve in references if curve.task == task]
        path = args.out / f"{re.sub(r'[^A-Za-z0-9.=+-]+', '_', task)}.png"
        plot_task(task, task_runs, task_references, args.spread, path)
        table += summary_rows(task, task_runs, task_references)
        print(f"wrote {path}")
    notes = [
        "# Learning curves: summary",
        "",
        "Steps are env steps (agent steps x action repeat). Per task, *matched env steps* is the last step that every",
        "run of the task reached with all its seeds; *peak of mean* is the maximum of the seed-mean curve up to it",
        "(the paper's tables report this peak, over its whole budget), *at matched steps* the seed-mean there",
        "(`~`: linearly interpolated between the curve's evaluation points). *seeds* `mean`: a published aggregate.",
        "",
    ]
    for method_a, method_b in args.compare or []:
        table += ["", *compare_table(runs, frame, method_a, method_b)]
    if running:
        table += [
            "",
            "Left out while they catch up (`--hold-back-running`): "
            + "; ".join(
                f"{task} {method} seed {seed} at {step}"
                for (task, method), seeds in sorted(running.items())
                for seed, step in sorted(seeds.items())
            )
            + ".",
        ]
    table += ["", *wall_time_table(frame)]
    summary = args.out / "summary.md"
    summary.write_text("\n".join(notes + table) + "\n")
    print(f"wrote {summary}")


if __name__ == "__main__":
    main()
