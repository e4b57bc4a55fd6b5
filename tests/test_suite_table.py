"""benchmarks/suite_table.py on small synthetic CSVs: the numbers of the benchmark table, not its layout."""

import csv
import pathlib

import pytest

from benchmarks import plot, suite_table

COLUMNS = ["method", "task", "step", "reward", "seed", "policy", "wall_s"]


# cheetah-run: 3 BOOM seeds to 100k env steps; walker-walk: seed 1 still at 50k (a run in progress).
# (method, task, seed, policy): [(env step, return, wall_s), ...]
RUNS = {
    ("boom-zoo", "cheetah-run", 0, "planner"): [(0, 0, 0), (50_000, 500, 500), (100_000, 400, 1000)],
    ("boom-zoo", "cheetah-run", 1, "planner"): [(0, 0, 0), (50_000, 300, 600), (100_000, 600, 1200)],
    ("boom-zoo", "cheetah-run", 2, "planner"): [(0, 0, 0), (50_000, 100, 700), (100_000, 200, 1400)],
    ("boom-zoo", "cheetah-run", 0, "prior"): [(0, 0, 0), (50_000, 50, 500), (100_000, 100, 1000)],
    ("boom-zoo", "cheetah-run", 1, "prior"): [(0, 0, 0), (50_000, 60, 600), (100_000, 200, 1200)],
    ("boom-zoo", "cheetah-run", 2, "prior"): [(0, 0, 0), (50_000, 70, 700), (100_000, 300, 1400)],
    ("sac", "cheetah-run", 0, "actor"): [(0, 0, 0), (50_000, 200, 100), (100_000, 300, 200)],
    ("sac", "cheetah-run", 1, "actor"): [(0, 0, 0), (50_000, 250, 110), (100_000, 500, 220)],
    ("boom-zoo", "walker-walk", 0, "planner"): [(0, 10, 0), (50_000, 700, 400), (100_000, 900, 800)],
    ("boom-zoo", "walker-walk", 1, "planner"): [(0, 20, 0), (50_000, 500, 600)],
    ("boom-zoo", "walker-walk", 0, "prior"): [(0, 10, 0), (50_000, 600, 400), (100_000, 800, 800)],
    ("boom-zoo", "walker-walk", 1, "prior"): [(0, 20, 0), (50_000, 400, 600)],
}


@pytest.fixture
def runs_dir(tmp_path) -> pathlib.Path:
    """One CSV per run, as reproduce.py writes them."""
    runs: dict[tuple, list[list]] = {}
    for (method, task, seed, policy), points in RUNS.items():
        rows = runs.setdefault((method, task, seed), [])
        rows += [[method, task, step, reward, seed, policy, wall_s] for step, reward, wall_s in points]
    for (method, task, seed), rows in runs.items():
        with open(tmp_path / f"{method}__{task}__seed{seed}.csv", "w", newline="") as file:
            writer = csv.writer(file)
            writer.writerow(COLUMNS)
            writer.writerows(rows)
    return tmp_path


@pytest.fixture
def reference_file(tmp_path) -> pathlib.Path:
    """A TD-MPC2-repo style reference (env steps): TD-MPC2 520 and SAC 310 at 100k on cheetah-run."""
    path = tmp_path / "ref" / "tdmpc2.csv"
    path.parent.mkdir()
    rows = [["tdmpc2", "cheetah-run", 100_000, reward, seed] for seed, reward in ((1, 500), (2, 520), (3, 540))]
    rows += [["tdmpc2", "cheetah-run", 200_000, 900, seed] for seed in (1, 2, 3)]  # not the 100k figure
    rows += [["sac", "cheetah-run", 100_000, reward, seed] for seed, reward in ((1, 300), (2, 320))]
    with open(path, "w", newline="") as file:
        file.write("# a comment line, as the shipped reference files have\n")
        csv.writer(file).writerows([["method", "task", "step", "reward", "seed"], *rows])
    return path


def rows_by_task(runs_dir: pathlib.Path, reference_file: pathlib.Path) -> dict:
    shown, running = plot.hold_back_running(suite_table.read_runs([str(runs_dir / "*.csv")]))
    rows = suite_table.task_rows(shown, suite_table.read_reference(reference_file), "boom-zoo", running=running)
    return {row.task: row for row in rows}


def test_final_and_peak_are_mean_and_std_over_seeds(runs_dir, reference_file):
    planner = rows_by_task(runs_dir, reference_file)["cheetah-run"].boom["planner"]
    # final: 400, 600, 200 at 100k; peak: 500, 600, 200 (seed 0 peaked at 50k)
    assert planner.step == 100_000 and planner.seeds == [0, 1, 2]
    assert planner.final.mean == pytest.approx(400) and planner.final.std == pytest.approx(163.299, abs=1e-3)
    assert planner.peak.mean == pytest.approx(433.333, abs=1e-3) and planner.peak.std == pytest.approx(169.967, abs=1e-3)
    prior = rows_by_task(runs_dir, reference_file)["cheetah-run"].boom["prior"]
    assert prior.final.mean == pytest.approx(200) and prior.peak.mean == pytest.approx(200)


def test_wall_time_and_agent_steps_per_second(runs_dir, reference_file):
    planner = rows_by_task(runs_dir, reference_file)["cheetah-run"].boom["planner"]
    assert planner.wall_s == pytest.approx(1200)  # mean of 1000, 1200, 1400
    assert planner.agent_steps_per_s == pytest.approx(100_000 / 2 / 1200)  # action repeat 2 on DMC


def test_a_seed_behind_the_others_waits_until_it_gets_there(runs_dir, reference_file, tmp_path):
    """walker-walk: seed 0 at 100k, seed 1 still at 50k. The row is seed 0's at 100k and names seed 1 as running."""
    row = rows_by_task(runs_dir, reference_file)["walker-walk"]
    planner = row.boom["planner"]
    assert planner.step == 100_000 and planner.seeds == [0] and planner.final.mean == pytest.approx(900)
    assert row.running == {"boom-zoo": {1: 50_000}}
    out, plots = tmp_path / "table.md", tmp_path / "img"
    suite_table.main(
        ["--runs", str(runs_dir / "*.csv"), "--reference", str(reference_file), "--out", str(out), "--plots", str(plots)]
    )
    line = next(line for line in out.read_text().splitlines() if line.startswith("| walker-walk |"))
    assert line.startswith("| walker-walk | 900 ± 0 | 900 ± 0 | 800 ± 0 | 800 ± 0 |")
    assert "| 100000 | 1, +1 running (at 50k) | 13 min |" in line  # seed 0's wall time, 800 s
    # seed 1 catches up: both count, at 100k
    path = runs_dir / "boom-zoo__walker-walk__seed1.csv"
    with open(path, "a", newline="") as file:
        csv.writer(file).writerows([["boom-zoo", "walker-walk", 100_000, 700, 1, p, 1000.0] for p in ("planner", "prior")])
    row = rows_by_task(runs_dir, reference_file)["walker-walk"]
    assert row.boom["planner"].seeds == [0, 1] and row.boom["planner"].final.mean == pytest.approx(800)
    assert row.running == {}


def test_a_running_seed_of_a_baseline_is_named_in_its_cell(runs_dir, reference_file, tmp_path):
    with open(runs_dir / "sac__cheetah-run__seed2.csv", "w", newline="") as file:
        csv.writer(file).writerows([COLUMNS, ["sac", "cheetah-run", 0, 1, 2, "actor", 0.0]])
    out = tmp_path / "table.md"
    suite_table.main(["--runs", str(runs_dir / "*.csv"), "--reference", str(reference_file), "--out", str(out)])
    assert "| 400 ± 100 (100k, 2 seeds, +1 running (at 0k)) |" in out.read_text()


def test_baselines_and_published_figures_at_100k(runs_dir, reference_file):
    row = rows_by_task(runs_dir, reference_file)["cheetah-run"]
    assert row.baselines["sac"].final.mean == pytest.approx(400) and row.baselines["sac"].final.seeds == 2
    assert "tqc" not in row.baselines  # no TQC CSVs
    assert row.published == {"tdmpc2": pytest.approx(520), "sac": pytest.approx(310)}
    assert rows_by_task(runs_dir, reference_file)["walker-walk"].published == {"tdmpc2": None, "sac": None}


def test_wall_clock_to_90_percent_of_tdmpc2(runs_dir, reference_file):
    row = rows_by_task(runs_dir, reference_file)["cheetah-run"]
    planner = row.to_threshold["BOOM planner"]
    assert planner.threshold == pytest.approx(0.9 * 520)
    # seed 0 first at 50k (500 >= 468, 500 s), seed 1 at 100k (600, 1200 s), seed 2 never (max 200)
    assert planner.wall_s == [500, 1200] and planner.steps == [50_000, 100_000] and planner.seeds == 3
    assert row.to_threshold["BOOM prior"].wall_s == [] and row.to_threshold["BOOM prior"].last_step == 100_000
    assert row.to_threshold["SAC"].wall_s == [220] and row.to_threshold["SAC"].steps == [100_000]  # seed 1's 500
    assert not rows_by_task(runs_dir, reference_file)["walker-walk"].to_threshold  # no published figure: no target


def test_reference_step_axes_are_converted_to_env_steps(tmp_path):
    # boom.csv's sac rows sit on a 200k-per-entry axis (its README): entry 50k is 100k env steps
    path = tmp_path / "boom.csv"
    path.write_text("method,task,step,reward,seed\nsac,dog-run,50000,42.0,mean\ntdmpc2,dog-run,100000,7.0,mean\n")
    reference = suite_table.read_reference(path)
    assert suite_table.published_at(reference, "sac", "dog-run") == pytest.approx(42.0)
    assert suite_table.published_at(reference, "tdmpc2", "dog-run") == pytest.approx(7.0)
    with pytest.raises(SystemExit, match="REFERENCE_STEP_SCALE"):
        suite_table.read_reference(tmp_path.joinpath("mine.csv"))


def test_main_writes_the_doc_and_one_plot_per_task(runs_dir, reference_file, tmp_path):
    out, plots = tmp_path / "docs" / "table.md", tmp_path / "docs" / "img"
    suite_table.main(
        ["--runs", str(runs_dir / "*.csv"), "--reference", str(reference_file), "--out", str(out), "--plots", str(plots)]
    )
    text = out.read_text()
    assert "| cheetah-run | 400 ± 163 | 433 ± 170 | 200 ± 82 | 200 ± 82 |" in text
    assert "8.3 min @ 75k (2/3)" not in text and "14.2 min @ 75k (2/3)" in text  # (500 + 1200) / 2 s
    assert "--tasks dm_control/cheetah-run-v0 --seeds 0 1 2 --budget 100000 --eval-freq 50000" in text
    assert sorted(path.name for path in plots.glob("*.png")) == ["cheetah-run.png", "walker-walk.png"]


def test_bad_input_names_the_fix(runs_dir, reference_file, tmp_path):
    with pytest.raises(SystemExit, match="pass --boom-method"):
        suite_table.main(["--runs", str(runs_dir / "*.csv"), "--reference", str(reference_file), "--boom-method", "boom"])
    with pytest.raises(SystemExit, match="pass --runs"):
        suite_table.main(["--runs", str(tmp_path / "none" / "*.csv")])
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "x.csv").write_text("task,reward\ncheetah-run,1\n")
    with pytest.raises(SystemExit, match="reproduce.py CSV"):
        suite_table.main(["--runs", str(tmp_path / "bad" / "*.csv")])


def test_named_tasks_without_runs_get_empty_cells_and_the_published_figures(runs_dir, reference_file):
    runs = suite_table.read_runs([str(runs_dir / "*.csv")])
    reference = suite_table.read_reference(reference_file)
    reference.loc[len(reference)] = ["tdmpc2", "finger-spin", 100_000, 948.0, 1]
    rows = suite_table.task_rows(runs, reference, "boom-zoo", tasks=["finger-spin", "cheetah-run"])
    assert [row.task for row in rows] == ["finger-spin", "cheetah-run"]
    assert rows[0].boom == {} and rows[0].baselines == {} and rows[0].published["tdmpc2"] == pytest.approx(948.0)
    assert rows[0].to_threshold == {}  # nothing ran: no time to report, not "never"


def test_a_run_with_only_its_untrained_evaluation_has_no_speed_yet(runs_dir, reference_file, tmp_path):
    with open(runs_dir / "boom-zoo__pendulum-swingup__seed0.csv", "w", newline="") as file:
        rows = [["boom-zoo", "pendulum-swingup", 0, 8, 0, policy, 0.0] for policy in ("planner", "prior")]
        csv.writer(file).writerows([COLUMNS, *rows])
    out = tmp_path / "table.md"
    suite_table.main(["--runs", str(runs_dir / "*.csv"), "--reference", str(reference_file), "--out", str(out)])
    row = next(line for line in out.read_text().splitlines() if line.startswith("| pendulum-swingup |"))
    assert "| 0 | 1 | 0 min | not recorded | - |" in row and "nan" not in row
    # its rerun command evaluates at the suite's interval, not every 0 steps
    assert "--tasks dm_control/pendulum-swingup-v0 --seeds 0 --budget 100000 --eval-freq 10000 " in out.read_text()


def test_a_run_found_in_two_csvs_is_refused(runs_dir, tmp_path):
    other = tmp_path / "older"
    other.mkdir()
    (other / "sac__cheetah-run__seed0.csv").write_text((runs_dir / "sac__cheetah-run__seed0.csv").read_text())
    with pytest.raises(SystemExit, match=r"run sac / cheetah-run / seed 0 is in 2 CSVs .* pass --runs patterns"):
        suite_table.read_runs([str(runs_dir / "*.csv"), str(other / "*.csv")])


def record_cpu_time(path: pathlib.Path, cpu_per_50k: float | None) -> None:
    """Add reproduce.py's cpu_s column to a CSV: ``cpu_per_50k`` seconds per 50k env steps, or empty (None)."""
    with open(path, newline="") as file:
        rows = list(csv.DictReader(file))
    with open(path, "w", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=[*COLUMNS, "cpu_s"])
        writer.writeheader()
        writer.writerows(
            {**row, "cpu_s": "" if cpu_per_50k is None else cpu_per_50k * int(row["step"]) / 50_000} for row in rows
        )


def test_cpu_time_to_90_percent_where_the_runs_recorded_it(runs_dir, reference_file, tmp_path):
    """
    Seeds 0 and 1 of BOOM record cpu_s, seed 2 does not; SAC's CSVs have none. The CPU-time cells give the mean
    over the seeds that recorded it and say so; SAC's say "not recorded" with how many got there (seed 1, at 100k).
    """
    for seed, cpu in ((0, 240.0), (1, 600.0), (2, None)):  # seed 2 never reaches 468 (0.9 x 520)
        record_cpu_time(runs_dir / f"boom-zoo__cheetah-run__seed{seed}.csv", cpu)
    out = tmp_path / "table.md"
    suite_table.main(["--runs", str(runs_dir / "*.csv"), "--reference", str(reference_file), "--out", str(out)])
    table, cpu = out.read_text().split("### CPU time to 90%")
    # seed 0 reached 500 at 50k (wall 500 s, cpu 240 s); seed 1 600 at 100k (wall 1200 s, cpu 1200 s)
    assert "| cheetah-run | 468 | 14.2 min @ 75k (2/3) |" in table
    assert "| cheetah-run | 468 | 12.0 min @ 75k (2/3) | never (0/3, by 100k) | not recorded (1/2) | - |" in cpu
    # at 100k: cpu 480 s and 1200 s for seeds 0 and 1 (mean 14 min), none for seed 2
    cheetah = next(line for line in table.splitlines() if line.startswith("| cheetah-run | 400 ± 163"))
    assert "| 100000 | 3 | 20 min | 14 min (2 of 3 seeds) | " in cheetah


def test_cpu_time_of_the_seeds_that_recorded_it(runs_dir, reference_file):
    """Of two seeds that reached the threshold, only seed 1 recorded cpu_s: the cell is seed 1's time and step."""
    for seed, cpu in ((0, None), (1, 600.0)):
        record_cpu_time(runs_dir / f"boom-zoo__cheetah-run__seed{seed}.csv", cpu)
    row = rows_by_task(runs_dir, reference_file)["cheetah-run"]
    assert row.to_threshold["BOOM planner"].cell("cpu") == "20.0 min @ 100k (2/3; CPU time of 1)"
    assert row.to_threshold["BOOM planner"].cell("wall") == "14.2 min @ 75k (2/3)"
    assert row.boom["planner"].cpu_seeds == 1 and row.boom["planner"].cpu_s == pytest.approx(1200)
