"""Smoke test of benchmarks/reproduce.py (train, evaluate, checkpoint, resume) and benchmarks/plot.py."""

import argparse
import csv
import json
import os
import pathlib
import subprocess
import sys

import pytest

from benchmarks import reproduce

ROOT = pathlib.Path(__file__).resolve().parents[1]
COLUMNS = ["method", "task", "step", "reward", "seed", "policy", "wall_s", "cpu_s"]


def run_script(script: str, *args: str) -> str:
    """Run ``benchmarks/<script>`` from the repository root; return its stdout (fail with its output otherwise)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        [sys.executable, f"benchmarks/{script}", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, f"{script} exited with {result.returncode}:\n{result.stdout}\n{result.stderr[-4000:]}"
    return result.stdout


def read_csv(path: pathlib.Path) -> list[dict[str, str]]:
    with open(path, newline="") as file:
        reader = csv.DictReader(file)
        assert reader.fieldnames == COLUMNS
        return list(reader)


def steps_of(rows: list[dict[str, str]], policy: str) -> list[int]:
    return [int(row["step"]) for row in rows if row["policy"] == policy]


def test_reproduce_resumes_and_plot_summarises(tmp_path):
    pytest.importorskip("matplotlib")
    pytest.importorskip("pandas")
    out, checkpoints, report = tmp_path / "out", tmp_path / "checkpoints", tmp_path / "report"
    common = ["--tiny", "--methods", "boom", "sac", "--tasks", "Pendulum-v1", "--seeds", "0", "--eval-freq", "100"]
    common += ["--eval-episodes", "2", "--threads", "1", "--out", str(out), "--checkpoint-dir", str(checkpoints)]
    boom_csv, sac_csv = out / "boom__Pendulum-v1__seed0.csv", out / "sac__Pendulum-v1__seed0.csv"

    run_script("reproduce.py", *common, "--budget", "200")
    first = read_csv(boom_csv)
    assert steps_of(first, "planner") == steps_of(first, "prior") == [0, 100, 200]
    assert steps_of(read_csv(sac_csv), "actor") == [0, 100, 200]
    assert {row["method"] for row in first} == {"boom"} and {row["task"] for row in first} == {"Pendulum-v1"}
    assert (checkpoints / "boom__Pendulum-v1__seed0" / "checkpoint" / "replay_buffer.pkl").is_file()

    # The SAC run's checkpoint as one written before cpu_s was recorded: no cpu_s in its state or rows.
    sac_checkpoint = checkpoints / "sac__Pendulum-v1__seed0" / "checkpoint"
    state = json.loads((sac_checkpoint / "state.json").read_text())
    del state["cpu_s"]
    (sac_checkpoint / "state.json").write_text(json.dumps(state))
    old_rows = [{key: value for key, value in row.items() if key != "cpu_s"} for row in read_csv(sac_csv)]
    with open(sac_checkpoint / "rows.csv", "w", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=COLUMNS[:-1])
        writer.writeheader()
        writer.writerows(old_rows)

    # A larger budget continues from the checkpoint at 200 env steps: the rows so far are kept as they were.
    stdout = run_script("reproduce.py", *common, "--budget", "300")
    assert stdout.count("resuming from 200 env steps") == 2, stdout
    boom_rows, sac_rows = read_csv(boom_csv), read_csv(sac_csv)
    assert boom_rows[: len(first)] == first
    for rows, policies in ((boom_rows, ("planner", "prior")), (sac_rows, ("actor",))):
        for policy in policies:
            assert steps_of(rows, policy) == [0, 100, 200, 300]  # starts at 0, no duplicated step
        walls = [float(row["wall_s"]) for row in rows]
        assert walls == sorted(walls) and walls[0] == 0.0
        assert all(-2000.0 <= float(row["reward"]) <= 0.0 for row in rows)  # Pendulum-v1 returns over 200 steps
    # cpu_s: the training's CPU time, from 0, growing, within what the machine's cores could give it
    cpu = [float(row["cpu_s"]) for row in boom_rows]
    assert cpu == sorted(cpu) and cpu[0] == 0.0 and cpu[-1] > 0.0
    assert all(c <= float(row["wall_s"]) * os.cpu_count() + 0.5 for c, row in zip(cpu, boom_rows, strict=True))
    # a run resumed without it leaves it empty rather than counting from the resume
    assert [row["cpu_s"] for row in sac_rows] == [""] * len(sac_rows)

    run_script("plot.py", "--runs", str(out / "*.csv"), "--out", str(report))
    png = (report / "Pendulum-v1.png").read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 10_000
    table = (report / "summary.md").read_text()
    for method, policy in (("boom", "planner"), ("boom", "prior"), ("sac", "actor")):
        assert f"| Pendulum-v1 | {method} | {policy} | 1 | 300 |" in table, table


def write_rows(path: pathlib.Path, method: str, rewards_by_seed: dict[int, list[float]], policy: str = "planner") -> None:
    with open(path, "w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(COLUMNS)
        for seed, rewards in rewards_by_seed.items():
            for index, reward in enumerate(rewards):
                writer.writerow([method, "cartpole-swingup", 10_000 * index, reward, seed, policy, float(index)])


def test_plot_compare_gives_a_verdict_per_step(tmp_path):
    pytest.importorskip("matplotlib")
    pytest.importorskip("pandas")
    # Step 0: level (overlapping seeds); 10k: A clearly above; 20k: A clearly below. The last column is the
    # two-sided Mann-Whitney p: 1.0 for interleaved seeds; 0.1 (= 2 / C(6, 3)) for 3 vs 3 fully separated ones.
    write_rows(tmp_path / "a.csv", "boom", {0: [60, 500, 100], 1: [70, 520, 110], 2: [65, 510, 120]})
    write_rows(tmp_path / "b.csv", "authors", {0: [62, 300, 400], 1: [68, 310, 420], 2: [66, 320, 410]})
    report = tmp_path / "report"
    run_script(
        "plot.py", "--runs", str(tmp_path / "*.csv"), "--out", str(report), "--no-reference", "--compare", "boom", "authors"
    )
    table = (report / "summary.md").read_text()
    assert "## boom vs authors, step by step" in table
    assert "| cartpole-swingup | planner | 0 | 65.0 (60-70) | 65.3 (62-68) | -0.3 | level | 65.0 / 66.0 | 1.00 |" in table, (
        table
    )
    assert (
        "| cartpole-swingup | planner | 10000 | 510.0 (500-520) | 310.0 (300-320) | +200.0 | above"
        " | 510.0 / 310.0 | 0.10 |" in table
    ), table
    assert (
        "| cartpole-swingup | planner | 20000 | 110.0 (100-120) | 410.0 (400-420) | -300.0 | below"
        " | 110.0 / 410.0 | 0.10 |" in table
    ), table
    assert "| cartpole-swingup | authors | 2 | 20000 | 2 | 10000.0 |" in table, table  # wall time of each run

    # Repeated --compare: one table per pair, in the order given.
    write_rows(tmp_path / "c.csv", "boom[alignment=rkl]", {0: [60, 100, 100], 1: [70, 110, 110]})
    run_script(
        "plot.py", "--runs", str(tmp_path / "*.csv"), "--out", str(report), "--no-reference",
        "--compare", "boom[alignment=rkl]", "boom", "--compare", "boom", "authors",
    )  # fmt: skip
    table = (report / "summary.md").read_text()
    first, second = (
        table.index("## boom[alignment=rkl] vs boom, step by step"),
        table.index("## boom vs authors, step by step"),
    )
    assert first < second
    assert (
        "| cartpole-swingup | planner | 10000 | 105.0 (100-110) | 510.0 (500-520) | -405.0 | below"
        " | 105.0 / 510.0 | 0.20 |" in table
    ), table

    # A method with a single policy (SB3's actor) is set against each of BOOM's policies.
    write_rows(tmp_path / "d.csv", "sac", {0: [50, 200, 300], 1: [60, 220, 320]}, policy="actor")
    run_script(
        "plot.py", "--runs", str(tmp_path / "*.csv"), "--out", str(report), "--no-reference", "--compare", "boom", "sac"
    )
    table = (report / "summary.md").read_text()
    assert (
        "| cartpole-swingup | planner / actor | 10000 | 510.0 (500-520) | 210.0 (200-220) | +300.0 | above"
        " | 510.0 / 210.0 | 0.20 |" in table
    ), table


def test_plot_holds_back_a_seed_behind_the_others(tmp_path):
    pytest.importorskip("matplotlib")
    # seed 0 at 20k; seed 1 has only its step-0 evaluation (it started after seed 0 finished)
    write_rows(tmp_path / "a.csv", "boom-pixels", {0: [10, 300, 600]})
    write_rows(tmp_path / "b.csv", "boom-pixels", {1: [20]})
    report = tmp_path / "report"
    run_script("plot.py", "--runs", str(tmp_path / "*.csv"), "--out", str(report), "--no-reference")
    assert (
        "| cartpole-swingup | boom-pixels | planner | 2 | 0 | 15.0 | 0 | 15.0 | this repo |"
        in (report / "summary.md").read_text()
    )
    run_script("plot.py", "--runs", str(tmp_path / "*.csv"), "--out", str(report), "--no-reference", "--hold-back-running")
    table = (report / "summary.md").read_text()
    assert "| cartpole-swingup | boom-pixels | planner | 1 | 20000 | 600.0 | 20000 | 600.0 | this repo |" in table
    assert "Left out while they catch up (`--hold-back-running`): cartpole-swingup boom-pixels seed 1 at 0." in table


def test_ablations_expand_to_the_papers_variants(monkeypatch):
    started = []
    monkeypatch.setattr(
        reproduce, "Run", lambda spec, args: type("FakeRun", (), {"train": lambda self: started.append(spec)})()
    )
    reproduce.main(["--methods", "boom", "sac", "--ablations", "--boom-kwargs", "batch_size=64", "--seeds", "0", "1"])
    boom = [spec for spec in started if spec.algo == "boom"]
    assert len(boom) == 12 and len([spec for spec in started if spec.algo == "sac"]) == 2
    methods = list(dict.fromkeys(spec.method for spec in boom))
    assert methods == [
        "boom[batch_size=64]",
        "boom[batch_size=64,alignment=rkl]",
        "boom[batch_size=64,alignment=none]",
        "boom[batch_size=64,align_weighting=uniform]",
        "boom[batch_size=64,lambda_align_scale=0.1]",
        "boom[batch_size=64,lambda_align_scale=10]",
    ]
    assert all(spec.hyperparams["batch_size"] == 64 for spec in boom)
    assert [spec.hyperparams.get("alignment") for spec in boom[2:6]] == ["rkl"] * 2 + ["none"] * 2
    assert len({spec.name for spec in started}) == len(started)  # one CSV and checkpoint folder per run


def test_zoo_preset_gives_unlisted_dm_control_ids_the_derived_entry(monkeypatch):
    from sb3_boom.presets import PRESETS
    from sb3_boom.zoo import dmc_hyperparams

    # The parsed command line boom_spec reads (reproduce.py builds its parser inside main()).
    args = argparse.Namespace(boom_kwargs=[], preset="zoo", tiny=False, name=None, action_repeat=None, device="cpu")
    unlisted = reproduce.boom_spec(args, "dm_control/hopper-stand-v0", seed=0)
    derived = dmc_hyperparams("dm_control/hopper-stand-v0", "cpu")
    assert unlisted.hyperparams["policy"] == "MlpPolicy"  # not the YAML's default entry
    assert unlisted.hyperparams["policy_kwargs"] == derived["policy_kwargs"] == PRESETS["cpu"]["policy_kwargs"]
    assert unlisted.action_repeat == 2
    listed = reproduce.boom_spec(args, "dm_control/walker-walk-v0", seed=0)
    assert listed.hyperparams["num_samples"] == 128
