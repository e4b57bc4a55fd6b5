"""
The RL Zoo command lines of the README, run for real (``python -m rl_zoo3.<script>`` in a fresh
interpreter, as a user types them) on tiny budgets and networks.
"""

import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest
import yaml

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]
# Tiny networks and planner (as tests/conftest.py), passed through the Zoo's --hyperparams.
TINY_NETWORKS = "policy_kwargs:dict(latent_dim=16,mlp_dim=32,enc_dim=32,num_q=2,num_bins=21)"
TINY_OVERRIDES = [TINY_NETWORKS, "num_samples:32", "num_elites:4", "batch_size:16", "learning_starts:100"]


def run_zoo(script: str, *args: str, cwd: pathlib.Path, timeout: float = 300) -> str:
    # One torch thread: tiny networks gain nothing from two, and two collapse on a busy 2-core machine.
    env = {**os.environ, "MPLBACKEND": "Agg", "SDL_VIDEODRIVER": "dummy", "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        [sys.executable, "-m", f"rl_zoo3.{script}", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"rl_zoo3.{script} failed:\n{output[-4000:]}"
    return output


@pytest.fixture(scope="module")
def trained_pendulum(tmp_path_factory) -> pathlib.Path:
    """``python -m rl_zoo3.train --algo boom --env Pendulum-v1 -n ... --eval-freq ...`` in a fresh folder."""
    workdir = tmp_path_factory.mktemp("zoo")
    run_zoo(
        "train", "--algo", "boom", "--env", "Pendulum-v1", "-n", "400", "--eval-freq", "200",
        "--eval-episodes", "2", "--seed", "0", "--hyperparams", *TINY_OVERRIDES, cwd=workdir,
    )  # fmt: skip
    return workdir


def test_train_uses_the_shipped_hyperparams_and_saves_a_model(trained_pendulum):
    run_dir = trained_pendulum / "logs" / "boom" / "Pendulum-v1_1"
    assert (run_dir / "Pendulum-v1.zip").is_file() and (run_dir / "best_model.zip").is_file()
    # --eval-freq 200 over 400 steps: two evaluations of 2 episodes, on Pendulum's 200-step episodes
    evaluations = np.load(run_dir / "evaluations.npz")
    assert list(evaluations["timesteps"]) == [200, 400] and evaluations["results"].shape == (2, 2)
    # Without --conf-file the package's boom.yml is used: its Pendulum-v1 entry (CPU preset) shows up
    config = dict(yaml.unsafe_load((run_dir / "Pendulum-v1" / "config.yml").read_text()))
    shipped = yaml.safe_load((REPO_ROOT / "hyperparams" / "boom.yml").read_text())["Pendulum-v1"]
    assert (config["iterations"], config["num_pi_trajs"]) == (shipped["iterations"], shipped["num_pi_trajs"])
    assert config["num_samples"] == 32 != shipped["num_samples"]  # and the command-line overrides win


def test_enjoy_plays_the_trained_model(trained_pendulum):
    output = run_zoo(
        "enjoy", "--algo", "boom", "--env", "Pendulum-v1", "-f", "logs", "--no-render", "-n", "200",
        cwd=trained_pendulum,
    )  # fmt: skip
    assert "Episode Reward" in output


def test_record_video_writes_an_mp4(trained_pendulum):
    run_zoo("record_video", "--algo", "boom", "--env", "Pendulum-v1", "-f", "logs", "-n", "50", cwd=trained_pendulum)
    videos = list((trained_pendulum / "logs" / "boom" / "Pendulum-v1_1" / "videos").glob("*.mp4"))
    assert len(videos) == 1 and videos[0].stat().st_size > 1000


def test_optimize_runs_trials_with_the_boom_sampler(tmp_path):
    output = run_zoo(
        "train", "--algo", "boom", "--env", "Pendulum-v1", "-n", "200", "-optimize", "--n-trials", "2",
        "--n-jobs", "1", "--n-evaluations", "1", "--eval-episodes", "1", "--seed", "0",
        "--hyperparams", TINY_NETWORKS, "batch_size:16", "learning_starts:100", cwd=tmp_path,
    )  # fmt: skip
    assert output.count("finished with value") == 2
    assert "lambda_align:" in output and "lambda_align_default: 0.02" in output  # A = 1: 1/50
    assert list((tmp_path / "logs" / "boom").glob("report_Pendulum-v1_2-trials-200-*"))


def test_dm_control_dog_run_with_the_checkout_conf_file(tmp_path):
    """
    The paper's hardest DMC task through shimmy with ``--conf-file hyperparams/boom.yml``, and a named
    preset in place of the entry's 5M model, as a CPU user trains it (``preset:"'cpu'"``; tiny here).
    """
    output = run_zoo(
        "train", "--algo", "boom", "--env", "dm_control/dog-run-v0", "-n", "60", "--eval-freq", "-1",
        "--conf-file", str(REPO_ROOT / "hyperparams" / "boom.yml"), "--hyperparams", "preset:'tiny'",
        "learning_starts:50", cwd=tmp_path,
    )  # fmt: skip
    run_dir = tmp_path / "logs" / "boom" / "dm_control-dog-run-v0_1"
    assert (run_dir / "dm_control-dog-run-v0.zip").is_file(), output[-2000:]
    config = dict(yaml.unsafe_load((run_dir / "dm_control-dog-run-v0" / "config.yml").read_text()))
    assert "preset" not in config and config["learning_starts"] == 50  # the command line wins over the preset
    assert (config["num_samples"], config["iterations"], config["batch_size"]) == (32, 2, 16)  # PRESETS["tiny"]
    assert config["lambda_align"] == "auto"  # the entry's keys that no preset governs stay
    wrappers = [next(iter(w)) if isinstance(w, dict) else w for w in config["env_wrapper"]]
    assert wrappers == [
        "gymnasium.wrappers.FlattenObservation",
        "gymnasium.wrappers.DtypeObservation",
        "rl_zoo3.wrappers.FrameSkip",
    ]
