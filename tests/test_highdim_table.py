"""benchmarks/highdim_table.py: our runs of a hard task beside the published curves at the same env steps."""

import csv
import pathlib

import numpy as np
import pytest

from benchmarks import highdim_table

COLUMNS = ["method", "task", "step", "reward", "seed", "policy", "wall_s"]
# two seeds of dog-stand, evaluated every 50k env steps; seed 1 is still at 50k
POINTS = {
    (0, "planner"): [(0, 20, 0), (50_000, 200, 1000), (100_000, 400, 2000)],
    (1, "planner"): [(0, 30, 0), (50_000, 100, 1500)],
    (0, "prior"): [(0, 10, 0), (50_000, 50, 1000), (100_000, 150, 2000)],
    (1, "prior"): [(0, 10, 0), (50_000, 70, 1500)],
}


@pytest.fixture
def runs_dir(tmp_path) -> pathlib.Path:
    for seed in (0, 1):
        with open(tmp_path / f"boom__dog-stand__seed{seed}.csv", "w", newline="") as file:
            writer = csv.writer(file)
            writer.writerow(COLUMNS)
            for (run_seed, policy), points in POINTS.items():
                if run_seed == seed:
                    writer.writerows(["boom", "dog-stand", step, reward, seed, policy, wall] for step, reward, wall in points)
    return tmp_path


def test_published_curves_are_on_env_steps_with_both_readings_of_booms_axis():
    curves = highdim_table.published_curves("dog-stand")
    steps, values = curves["TD-MPC2 (published)"]
    assert steps[1] == 100_000 and values[1] == pytest.approx(np.mean([274.0, 48.3, 117.1]), abs=0.1)
    agent_steps, _ = curves[highdim_table.AGENT_STEP_READING]
    env_steps, boom = curves[highdim_table.ENV_STEP_READING]
    assert agent_steps[1] == 200_000 and env_steps[1] == 100_000 and boom[1] == 524.1  # nominal 100k point


def test_values_are_exact_on_the_grid_interpolated_between_and_absent_outside():
    curve = (np.array([0, 100_000, 200_000]), np.array([0.0, 100.0, 300.0]))
    assert highdim_table.value_at(curve, 100_000) == "100"
    assert highdim_table.value_at(curve, 150_000) == "~200"
    assert highdim_table.value_at(curve, 250_000) == "-"


def test_the_page_has_seed_statistics_speed_and_the_rerun_command(runs_dir, tmp_path):
    out, png = tmp_path / "highdim.md", tmp_path / "img" / "dog-stand.png"
    highdim_table.main(["--runs", str(runs_dir / "*.csv"), "--out", str(out), "--plot", str(png), "--hardware", "test box"])
    text = out.read_text()
    assert "| 50k | 150 ± 50 (2) | 60 ± 10 (2) | ~" in text  # both seeds; TD-MPC2 interpolated at 50k
    assert "| 100k | 400 ± 0 (1) | 150 ± 0 (1) | 147 |" in text  # seed 1 not there yet; TD-MPC2 exact at 100k
    # 100k env steps / 2 / 2000 s, from the one seed that got there
    assert "Speed: 25.0 agent steps/s over 100k env steps (training only, mean over seeds [0]" in text
    assert "At 100k env steps, the last evaluation: our planner 400 (1 seeds), 25 untrained" in text
    assert "--preset cpu --tasks dm_control/dog-stand-v0 --seeds 0 1 --budget 200000 --eval-freq 50000" in text
    assert "preset:\"'cpu'\" n_timesteps:100000" in text and "![dog-stand](img/dog-stand.png)" in text
    assert png.stat().st_size > 10_000


def test_a_cheaper_setting_sits_beside_the_preset(runs_dir, tmp_path):
    cheaper = tmp_path / "cheaper"
    cheaper.mkdir()
    with open(cheaper / "boom-cpu-b64c__dog-stand__seed0.csv", "w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow([*COLUMNS, "cpu_s"])
        for step, planner, prior, seconds in ((0, 25, 12, 0.0), (50_000, 180, 40, 500.0)):
            writer.writerow(["boom-cpu-b64c", "dog-stand", step, planner, 0, "planner", 2 * seconds, seconds])
            writer.writerow(["boom-cpu-b64c", "dog-stand", step, prior, 0, "prior", 2 * seconds, seconds])
    out = tmp_path / "highdim.md"
    arguments = ["--runs", str(runs_dir / "*.csv"), "--out", str(out), "--compare-runs", str(cheaper / "*.csv")]
    with pytest.raises(SystemExit, match="needs --compare-method"):
        highdim_table.main(arguments)
    highdim_table.main([*arguments, "--compare-method", "boom-cpu-b64c", "--compare-kwargs", "batch_size=64 compile=True"])
    text = out.read_text()
    assert "| env steps | BOOM planner (ours) | BOOM prior (ours) | BOOM planner, cheaper setting (ours) |" in text
    assert "| 50k | 150 ± 50 (2) | 60 ± 10 (2) | 180 ± 0 (1) | ~" in text
    assert "| 100k | 400 ± 0 (1) | 150 ± 0 (1) | - | 147 |" in text  # the cheaper runs have not got there
    # 50k env steps = 25k agent steps in 500 CPU seconds
    assert "At 50k env steps: planner 180 ± 0 (1), prior 40 ± 0 (1); training CPU time 8 min (50.0 agent steps" in text
    assert "--boom-kwargs batch_size=64 compile=True --name boom-cpu-b64c --tasks dm_control/dog-stand-v0 --seeds 0 1" in text
