"""RL Zoo integration: the start-up hook registers BOOM; the shipped YAML parses into valid BOOM arguments."""

import subprocess
import sys

import optuna
import yaml

from sb3_boom import zoo


def test_rl_zoo_knows_boom_in_a_fresh_interpreter():
    code = (
        "import sys; import rl_zoo3; from rl_zoo3.hyperparams_opt import HYPERPARAMS_SAMPLER;"
        "print('boom' in rl_zoo3.ALGOS, 'boom' in HYPERPARAMS_SAMPLER)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["True", "True"]


def test_start_up_hook_imports_nothing_heavy():
    code = "import sys; print(any(m in sys.modules for m in ('torch', 'stable_baselines3', 'rl_zoo3', 'sb3_boom')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_shipped_hyperparams_cover_the_paper_tasks():
    config = yaml.safe_load(zoo.shipped_hyperparams_path().read_text())
    for task in ["humanoid-run", "dog-run", "walker-walk", "cartpole-swingup"]:
        assert f"dm_control/{task}-v0" in config
    for task in ["stand", "walk", "run", "sit_simple", "slide", "pole", "hurdle"]:
        assert f"h1hand-{task}-v0" in config
    assert "default" in config and "Pendulum-v1" in config


def test_optuna_sampler_returns_boom_arguments():
    study = optuna.create_study()
    trial = study.ask()
    params = zoo.sample_boom_params(trial, n_actions=38, n_envs=1, additional_args={})
    assert 0.1 * 0.038 <= params["lambda_align"] <= 10 * 0.038
    assert params["num_samples"] in (64, 128, 256, 512) and params["num_elites"] == params["num_samples"] // 8
    assert "num_samples_pow" not in params
