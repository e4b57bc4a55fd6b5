"""
The trained agents shipped in ``agents/`` (RL Zoo layout, made by benchmarks/package_agents.py): each one
loads and replays its recorded returns (seeded, one torch thread, CPU), and the packager itself works
end to end on a tiny checkpoint (``python -m rl_zoo3.enjoy`` plays what it writes).

``SB3_BOOM_AGENTS=<folder>`` checks another agents folder.
"""

import copy
import csv
import json
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest
import torch as th
import yaml

from benchmarks import package_agents
from sb3_boom import BOOM
from sb3_boom.envs import make_dmc
from sb3_boom.presets import PRESETS

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]
AGENTS_DIR = pathlib.Path(os.environ.get("SB3_BOOM_AGENTS", REPO_ROOT / "agents"))
# A replay on the recording machine gives the same returns; elsewhere float rounding can steer MPPI a
# little. Losing 10% (+ 20) is what a broken load (other weights) or a broken planner does not stay within.
RELATIVE_TOLERANCE, ABSOLUTE_TOLERANCE = 0.10, 20.0
MAX_AGENT_BYTES = 2_000_000  # the cpu preset's model is ~1.2 MB without its optimizer moments


SHIPPED = package_agents.agent_dirs(AGENTS_DIR)


def replay(agent_dir: pathlib.Path) -> tuple[dict, dict[str, list[float]]]:
    """The agent's evaluation.json and the returns of the same evaluation, replayed now."""
    evaluation = json.loads((agent_dir / package_agents.EVALUATION_FILE).read_text())
    recorded = evaluation["recorded"]
    threads = th.get_num_threads()
    th.set_num_threads(recorded["torch_threads"])
    try:
        returns = {
            policy: package_agents.evaluate_agent(agent_dir, evaluation["env_id"], policy, len(values), recorded["seed"])
            for policy, values in recorded["returns"].items()
        }
    finally:
        th.set_num_threads(threads)
    return evaluation, returns


def assert_within_tolerance(recorded: dict[str, list[float]], returns: dict[str, list[float]]) -> None:
    assert set(returns) == set(recorded) == {"planner", "prior"}
    for policy, values in recorded.items():
        expected, actual = float(np.mean(values)), float(np.mean(returns[policy]))
        tolerance = RELATIVE_TOLERANCE * abs(expected) + ABSOLUTE_TOLERANCE
        assert abs(actual - expected) <= tolerance, (
            f"{policy}: {actual:.1f} now, {expected:.1f} recorded (tolerance {tolerance:.1f})"
        )


@pytest.mark.skipif(not SHIPPED, reason=f"no packaged agents in {AGENTS_DIR} (benchmarks/package_agents.py makes them)")
@pytest.mark.parametrize("agent_dir", SHIPPED, ids=[path.name for path in SHIPPED])
def test_shipped_agent_replays_its_recorded_returns(agent_dir):
    evaluation, returns = replay(agent_dir)
    assert_within_tolerance(evaluation["recorded"]["returns"], returns)


@pytest.mark.skipif(not SHIPPED, reason=f"no packaged agents in {AGENTS_DIR}")
@pytest.mark.parametrize("agent_dir", SHIPPED, ids=[path.name for path in SHIPPED])
def test_shipped_agent_has_the_zoo_layout_and_is_small(agent_dir):
    evaluation = json.loads((agent_dir / package_agents.EVALUATION_FILE).read_text())
    name = evaluation["env_id"].replace("/", "-")
    assert agent_dir.name == f"{name}_1" and agent_dir.parent.name == "boom"
    files = {path.relative_to(agent_dir).as_posix() for path in agent_dir.rglob("*") if path.is_file()}
    assert files == {f"{name}.zip", f"{name}/config.yml", f"{name}/args.yml", package_agents.EVALUATION_FILE}
    assert sum((agent_dir / file).stat().st_size for file in files) < MAX_AGENT_BYTES
    config = yaml.unsafe_load((agent_dir / name / "config.yml").read_text())
    assert config["env_wrapper"][-1] == {"rl_zoo3.wrappers.FrameSkip": {"skip": 2}}  # the paper's action repeat
    assert yaml.unsafe_load((agent_dir / name / "args.yml").read_text())["env_kwargs"] is None  # enjoy reads this key
    assert evaluation["source"]["env_steps"] >= 100_000  # a final model, not an intermediate checkpoint


# --- the packager, on a checkpoint made here ---------------------------------------------------------

ENV_ID = "dm_control/cartpole-swingup-v0"
RUN_NAME = "boom-zoo__cartpole-swingup__seed3"


def fake_run(checkpoint_dir: pathlib.Path, env_steps: int) -> pathlib.Path:
    """A reproduce.py run folder holding an untrained tiny model, as its checkpoints look."""
    env = make_dmc(ENV_ID)
    hyperparams = {"policy": "MlpPolicy", **copy.deepcopy(PRESETS["tiny"])}
    model = BOOM("MlpPolicy", env, seed=3, device="cpu", **copy.deepcopy(PRESETS["tiny"]))
    checkpoint = checkpoint_dir / RUN_NAME / "checkpoint"
    checkpoint.mkdir(parents=True)
    model.save(checkpoint / "model.zip")
    (checkpoint / "replay_buffer.pkl").write_bytes(b"not shipped")
    with open(checkpoint / "rows.csv", "w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["method", "task", "step", "reward", "seed", "policy", "wall_s"])
        writer.writerows([["boom-zoo", "cartpole-swingup", env_steps, 12.5, 3, "planner", 60.0]])
        writer.writerows([["boom-zoo", "cartpole-swingup", env_steps, 7.5, 3, "prior", 60.0]])
    state = dict(method="boom-zoo", env_id=ENV_ID, seed=3, action_repeat=2, hyperparams=hyperparams)
    state.update(num_timesteps=env_steps // 2, env_steps=env_steps, wall_s=60.0)
    (checkpoint / "state.json").write_text(json.dumps(state))
    return checkpoint_dir


@pytest.fixture(scope="module")
def packaged(tmp_path_factory) -> pathlib.Path:
    root = tmp_path_factory.mktemp("packaging")
    package_agents.main(
        ["--checkpoint-dir", str(fake_run(root / "ckpt", 100_000)), "--seed", "3", "--out", str(root / "agents")]
    )
    return root / "agents"


def test_packager_writes_the_zoo_layout_and_records_what_it_replays(packaged):
    (agent_dir,) = package_agents.agent_dirs(packaged)
    assert agent_dir == packaged / "boom" / "dm_control-cartpole-swingup-v0_1"
    evaluation, returns = replay(agent_dir)
    assert returns == evaluation["recorded"]["returns"]  # same machine, same seed: the same episodes exactly
    assert [len(values) for values in returns.values()] == [1, 3]
    assert evaluation["source"]["last_evaluation"] == {"planner": 12.5, "prior": 7.5}
    assert "dm_control/cartpole-swingup-v0" in (packaged / "README.md").read_text()
    model_file = agent_dir / "dm_control-cartpole-swingup-v0.zip"
    model = BOOM.load(model_file, device="cpu")
    assert not model.policy.optimizer.state and not model.policy.pi_optimizer.state  # no Adam moments shipped
    assert not list(agent_dir.rglob("*.pkl"))  # no replay buffer


def test_the_replay_catches_another_agent(packaged):
    (agent_dir,) = package_agents.agent_dirs(packaged)
    evaluation = json.loads((agent_dir / package_agents.EVALUATION_FILE).read_text())
    shifted = {policy: [value + 100.0 for value in values] for policy, values in evaluation["recorded"]["returns"].items()}
    with pytest.raises(AssertionError, match="recorded"):
        assert_within_tolerance(shifted, evaluation["recorded"]["returns"])


def test_enjoy_plays_the_packaged_agent(packaged):
    env = {**os.environ, "MPLBACKEND": "Agg", "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "rl_zoo3.enjoy",
            "--algo",
            "boom",
            "--env",
            ENV_ID,
            "-f",
            str(packaged),
            "--no-render",
            "-n",
            "510",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    assert "Episode Length 500" in output  # FrameSkip from config.yml: 1000 env steps in 500 actions


def test_export_replay_study_retraces_predict_with_the_same_draws(packaged):
    """``python -m studies.export_replay`` (docs/export.md) on the packaged agent: TorchScript fed torch's
    draws plays ``predict``'s episode exactly."""
    (agent_dir,) = package_agents.agent_dirs(packaged)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "studies.export_replay", str(agent_dir), "--env", ENV_ID],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]
    returns = {
        line.split("|")[1].strip(): float(line.split("|")[2])
        for line in result.stdout.splitlines()
        if line.startswith("| ") and not line.startswith(f"| {ENV_ID}")
    }
    assert len(returns) == 5 and all(np.isfinite(value) for value in returns.values()), result.stdout
    assert returns["torchscript, torch draws"] == returns["predict"]


def test_a_run_short_of_its_budget_is_not_shipped(tmp_path, capsys):
    package_agents.main(
        ["--checkpoint-dir", str(fake_run(tmp_path / "ckpt", 40_000)), "--seed", "3", "--out", str(tmp_path / "agents")]
    )
    assert "not yet 100000" in capsys.readouterr().out and not package_agents.agent_dirs(tmp_path / "agents")
    with pytest.raises(SystemExit, match="check --checkpoint-dir"):
        package_agents.main(["--checkpoint-dir", str(tmp_path / "nowhere"), "--out", str(tmp_path / "agents")])
