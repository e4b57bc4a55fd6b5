"""
Every ``dm_control/*`` id through the RL Zoo: the entry that sb3_boom.zoo derives for ids that
hyperparams/boom.yml does not list (the paper's env protocol; CPU preset or the paper's 5M model by
device), and real ``python -m rl_zoo3.train`` / ``enjoy`` command lines on such ids.
"""

import os
import pathlib
import subprocess
import sys

import gymnasium as gym
import numpy as np
import pytest
import torch as th
import yaml
from rl_zoo3.utils import get_wrapper_class

from sb3_boom import BOOM
from sb3_boom.presets import PRESETS
from sb3_boom.zoo import DMC_ENV_WRAPPER, dmc_hyperparams, listed_in_config, shipped_hyperparams_path

# Ids that the shipped YAML does not name (checked below): they would get its `default:` entry.
UNLISTED = ["dm_control/hopper-stand-v0", "dm_control/acrobot-swingup-v0", "dm_control/point_mass-easy-v0"]
WRAPPER_NAMES = ["gymnasium.wrappers.FlattenObservation", "gymnasium.wrappers.DtypeObservation", "rl_zoo3.wrappers.FrameSkip"]


def run_zoo(script: str, *args: str, cwd: pathlib.Path) -> str:
    """``python -m rl_zoo3.<script> ...`` in a fresh interpreter (the start-up hook as for a user); its output."""
    env = {**os.environ, "MPLBACKEND": "Agg", "OMP_NUM_THREADS": "1"}  # one thread: tiny networks, a busy 2-core box
    result = subprocess.run(
        [sys.executable, "-m", f"rl_zoo3.{script}", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"rl_zoo3.{script} failed:\n{output[-4000:]}"
    return output


def wrapper_names(entry: dict) -> list[str]:
    return [next(iter(item)) if isinstance(item, dict) else item for item in entry["env_wrapper"]]


def test_the_yaml_does_not_list_the_ids_under_test():
    config = str(shipped_hyperparams_path())
    assert not any(listed_in_config(config, env_id) for env_id in UNLISTED)
    assert listed_in_config(config, "dm_control/cheetah-run-v0")  # while its easy tasks are listed


@pytest.mark.parametrize("env_id", UNLISTED)
def test_cpu_gets_the_cpu_preset_with_the_papers_env_protocol(env_id, monkeypatch):
    monkeypatch.setattr(th.cuda, "is_available", lambda: False)
    for device in ("auto", "cpu", "cuda"):  # "cuda" without a GPU: SB3 falls back to the CPU, and so does the rule
        entry = dmc_hyperparams(env_id, device)
        assert entry["policy"] == "MlpPolicy" and entry["n_timesteps"] == 5e4  # 100k env steps
        for key, value in PRESETS["cpu"].items():
            assert entry[key] == value, key
        assert entry["lambda_align"] == "auto" and wrapper_names(entry) == WRAPPER_NAMES
        assert entry["env_wrapper"][2] == {"rl_zoo3.wrappers.FrameSkip": {"skip": 2}}


@pytest.mark.parametrize("env_id", UNLISTED)
def test_a_gpu_gets_the_papers_5m_model(env_id, monkeypatch):
    monkeypatch.setattr(th.cuda, "is_available", lambda: True)
    entry = dmc_hyperparams(env_id, "auto")
    assert entry["policy_kwargs"] == {"model_size": 5} and entry["n_timesteps"] == 5e5
    # the planner and batch are BOOM's defaults (512 samples, ...): not set by the entry
    assert not {"num_samples", "num_elites", "num_pi_trajs", "iterations", "batch_size"} & set(entry)
    assert wrapper_names(entry) == WRAPPER_NAMES
    assert dmc_hyperparams(env_id, "cpu")["policy_kwargs"] == {"model_size": "cpu"}  # --device cpu on a GPU machine


EASY_LISTED = [
    "walker-walk",
    "walker-stand",
    "reacher-easy",
    "finger-spin",
    "cartpole-swingup",
    "pendulum-swingup",
    "cheetah-run",
]


@pytest.mark.parametrize("task", EASY_LISTED)
def test_the_yamls_easy_entries_are_the_derived_cpu_entry(task):
    """A listed easy task and an unlisted one train alike on a CPU (the YAML and PRESETS["cpu"] cannot drift)."""
    env_id = f"dm_control/{task}-v0"
    listed = yaml.safe_load(shipped_hyperparams_path().read_text())[env_id]
    listed["policy_kwargs"] = eval(listed["policy_kwargs"])  # as rl_zoo3 reads the string
    assert listed == dmc_hyperparams(env_id, "cpu")


def test_entries_are_fresh_copies():
    first = dmc_hyperparams(UNLISTED[0], "cpu")
    first["policy_kwargs"]["model_size"] = 1  # SB3 and rl_zoo3 write into these
    first["env_wrapper"][2]["rl_zoo3.wrappers.FrameSkip"]["skip"] = 4
    assert dmc_hyperparams(UNLISTED[0], "cpu")["policy_kwargs"] == {"model_size": "cpu"}
    assert PRESETS["cpu"]["policy_kwargs"] == {"model_size": "cpu"}
    assert DMC_ENV_WRAPPER[2] == {"rl_zoo3.wrappers.FrameSkip": {"skip": 2}}


def test_the_derived_wrappers_make_the_papers_env():
    entry = dmc_hyperparams("dm_control/point_mass-easy-v0", "cpu")
    env = get_wrapper_class({"env_wrapper": entry["env_wrapper"]})(gym.make("dm_control/point_mass-easy-v0"))
    assert isinstance(env.observation_space, gym.spaces.Box) and env.observation_space.dtype == np.float32
    assert env.observation_space.shape == (4,)  # position (2) + velocity (2), flattened
    obs, _ = env.reset(seed=0)
    assert obs.dtype == np.float32
    steps, truncated = 0, False
    while not truncated:
        _, _, terminated, truncated, _ = env.step(env.action_space.sample())
        assert not terminated
        steps += 1
    assert steps == 500  # 1000 env steps, each action repeated twice
    env.close()


def test_bad_ids_get_an_error_naming_the_fix():
    with pytest.raises(ValueError, match=r"did you mean dm_control/hopper-stand-v0"):
        dmc_hyperparams("dm_control/hoper-stand-v0", "cpu")
    with pytest.raises(ValueError, match=r"add an entry for it to hyperparams/boom.yml"):
        dmc_hyperparams("Pendulum-v1", "cpu")
    # registered by shimmy, but a locomotion task with camera observations: no derived entry
    with pytest.raises(ValueError, match=r"not a Control Suite task .* add an entry for it"):
        dmc_hyperparams("dm_control/RodentRunGaps-v0", "cpu")


@pytest.fixture(scope="module")
def zoo_runs(tmp_path_factory) -> pathlib.Path:
    """``python -m rl_zoo3.train --algo boom --env <unlisted id> -n 200`` on two ids, as a user types it."""
    workdir = tmp_path_factory.mktemp("zoo_dmc")
    for env_id in ("dm_control/hopper-stand-v0", "dm_control/point_mass-easy-v0"):
        # Only the warm-up is shortened (it would be max(1000, 5 x 500) steps): the rest is the derived entry.
        output = run_zoo(
            "train", "--algo", "boom", "--env", env_id, "-n", "200", "--eval-freq", "-1", "--seed", "0",
            "--device", "cpu", "--hyperparams", "learning_starts:100", cwd=workdir,
        )  # fmt: skip
        assert "derived by sb3_boom.zoo.dmc_hyperparams" in output and "Using 'default' hyperparameters" not in output
    return workdir


@pytest.mark.parametrize("name, obs_dim", [("dm_control-hopper-stand-v0", 15), ("dm_control-point_mass-easy-v0", 4)])
def test_train_runs_unlisted_ids_with_the_derived_entry(zoo_runs, name, obs_dim):
    run_dir = zoo_runs / "logs" / "boom" / f"{name}_1"
    config = dict(yaml.unsafe_load((run_dir / name / "config.yml").read_text()))
    assert wrapper_names(config) == WRAPPER_NAMES
    assert config["policy_kwargs"] == {"model_size": "cpu"} and config["num_samples"] == 128 and config["iterations"] == 3
    assert config["learning_starts"] == 100  # the command line's --hyperparams over the derived entry
    model = BOOM.load(run_dir / f"{name}.zip", device="cpu")
    assert model.observation_space.shape == (obs_dim,) and model.observation_space.dtype == np.float32
    assert model.num_timesteps == 200 and model.policy.model_size == "cpu"


def test_enjoy_plays_an_unlisted_id_with_action_repeat_2(zoo_runs):
    output = run_zoo(
        "enjoy", "--algo", "boom", "--env", "dm_control/hopper-stand-v0", "-f", "logs", "--no-render", "-n", "510",
        cwd=zoo_runs,
    )  # fmt: skip
    assert "Episode Length 500" in output  # 1000 env steps in 500 agent steps: FrameSkip from the saved config


def rollout(env: gym.Env, steps: int) -> tuple[list[np.ndarray], list[tuple[float, bool, bool]]]:
    """Observations and (reward, terminated, truncated) of ``steps`` fixed random actions from seed 7."""
    actions = np.random.default_rng(0).uniform(-1, 1, (steps, *env.action_space.shape)).astype(np.float32)
    observations, outcomes = [env.reset(seed=7)[0]], []
    for action in actions:
        observation, reward, terminated, truncated, _ = env.step(action)
        observations.append(observation)
        outcomes.append((float(reward), terminated, truncated))
    return observations, outcomes


@pytest.mark.parametrize("env_id", ["dm_control/cartpole-swingup-v0", UNLISTED[0]])
def test_make_dmc_is_the_env_of_the_zoo_entries(env_id):
    """sb3_boom.envs.make_dmc (examples, benchmarks) and the RL Zoo's env_wrapper list build the same env."""
    from sb3_boom.envs import make_dmc

    config = yaml.safe_load(shipped_hyperparams_path().read_text())
    entry = config[env_id] if env_id in config else dmc_hyperparams(env_id, "cpu")
    ours = rollout(make_dmc(env_id), 30)  # registers dm_control/* (imports shimmy)
    zoo_env = get_wrapper_class(entry)(gym.make(env_id))
    zoos = rollout(zoo_env, 30)
    assert ours[0][0].dtype == np.float32 and ours[0][0].shape == zoo_env.observation_space.shape
    assert ours[1] == zoos[1]
    assert all(np.array_equal(a, b) for a, b in zip(ours[0], zoos[0], strict=True))
    with pytest.raises(ValueError, match="no Control Suite task"):
        make_dmc("cartpole")
