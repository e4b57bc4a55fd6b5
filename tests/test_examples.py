"""Smoke tests of the example scripts: each runs as a user would run it, with --tiny, and writes or prints real results."""

import csv
import os
import pathlib
import re
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
NUMBER = r"(-?\d+(?:\.\d+)?(?:e-?\d+)?)"


def run_example(script: str, *args: str) -> str:
    """Run ``examples/<script>`` from the repository root; return its stdout (fail with its output otherwise)."""
    # One torch thread: tiny networks gain nothing from more, and on a busy 2-core machine two threads
    # per process make the runs up to 10x slower.
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        [sys.executable, f"examples/{script}", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, f"{script} exited with {result.returncode}:\n{result.stdout}\n{result.stderr[-4000:]}"
    return result.stdout


def test_train_dmc_writes_the_learning_curve(tmp_path):
    pytest.importorskip("shimmy")
    pytest.importorskip("matplotlib")
    out = tmp_path / "run"
    args = ["--tiny", "--steps", "200", "--eval-freq", "100", "--eval-episodes", "1", "--out", str(out)]
    stdout = run_example("train_dmc.py", *args)

    with open(out / "curve.csv", newline="") as file:
        rows = list(csv.reader(file))
    assert rows[0] == ["step", "reward"]
    # Evaluations at 100 and 200 agent steps = 200 and 400 env steps (action repeat 2).
    assert [int(step) for step, _ in rows[1:]] == [200, 400]
    # A cartpole-swingup episode (500 agent steps) earns between 0 and 1 per env step.
    assert all(0.0 <= float(reward) <= 1000.0 for _, reward in rows[1:])
    png = (out / "curve.png").read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 10_000
    assert (out / "boom.zip").is_file() and (out / "evaluations.npz").is_file()
    assert "gamma=0.990" in stdout  # the action repeat is seen: 500-step episodes, not 1000


def test_planner_vs_prior_prints_both_results(tmp_path):
    stdout = run_example("planner_vs_prior.py", "--tiny", "--steps", "200", "--episodes", "2")
    for name in ("MPPI planner", "policy prior"):
        match = re.search(rf"^{name}: return\s+{NUMBER} \+/-\s+{NUMBER},\s+{NUMBER} ms per action$", stdout, flags=re.M)
        assert match, f"no result line for the {name} in:\n{stdout}"
        mean, std, ms = (float(value) for value in match.groups())
        assert -2000.0 <= mean <= 0.0 and std >= 0.0 and ms > 0.0  # Pendulum-v1 returns over 200 steps


def test_tune_lambda_align_reports_a_best_value_in_range(tmp_path):
    pytest.importorskip("optuna")
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    args = ["--tiny", "--trials", "3", "--steps", "120", "--eval-freq", "60", "--eval-episodes", "1", "--storage", storage]
    stdout = run_example("tune_lambda_align.py", *args)
    low, high = (float(value) for value in re.search(rf"search range \[{NUMBER}, {NUMBER}\]", stdout).groups())
    assert (low, high) == pytest.approx((0.002, 0.2))  # Pendulum-v1: 1 action dimension, default 1/50
    finished, pruned = (int(value) for value in re.search(r"(\d+) finished, (\d+) pruned", stdout).groups())
    assert finished + pruned >= 2
    best = float(re.search(rf"best lambda_align: {NUMBER}", stdout).group(1))
    assert low <= best <= high
    assert (tmp_path / "study.db").is_file()
