"""RL Zoo integration: the start-up hook registers BOOM; the shipped YAML parses into valid BOOM arguments."""

import argparse
import os
import subprocess
import sys

import optuna
import pytest
import yaml

from sb3_boom import zoo
from sb3_boom.presets import PRESETS


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


def test_hook_stays_out_of_the_way_when_rl_zoo3_is_absent(tmp_path):
    """A folder without rl_zoo3 on the search path: the finder defers and the usual ImportError follows."""
    import sb3_boom_zoo_hook

    assert sb3_boom_zoo_hook.RLZooFinder().find_spec("rl_zoo3.utils", [str(tmp_path)]) is None
    assert sb3_boom_zoo_hook.RLZooFinder().find_spec("numpy", None) is None
    code = "import sys; sys.path = [p for p in sys.path if 'site-packages' not in p]; import json; import rl_zoo3"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 1 and "No module named 'rl_zoo3'" in result.stderr


def test_a_failing_registration_warns_and_leaves_rl_zoo3_usable():
    code = (
        "import warnings, sb3_boom.zoo as z\n"
        "def broken(module): raise RuntimeError('boom is broken')\n"
        "z.register_algorithm = broken\n"
        "with warnings.catch_warnings(record=True) as caught:\n"
        "    warnings.simplefilter('always')\n"
        "    import rl_zoo3\n"
        "print('boom' in rl_zoo3.ALGOS, 'sac' in rl_zoo3.ALGOS, any('boom is broken' in str(w.message) for w in caught))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "True", "True"]


def test_hook_can_be_switched_off_with_an_environment_variable():
    code = "import sys, rl_zoo3; print('boom' in rl_zoo3.ALGOS)"
    env = {**os.environ, "SB3_BOOM_DISABLE_ZOO_HOOK": "1"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env).stdout
    assert out.strip() == "False"


def test_the_eval_env_gets_the_config_env_kwargs(tmp_path):
    """HumanoidBench entries set render_mode None in env_kwargs: the Zoo's eval env must get it too."""
    import argparse

    from rl_zoo3.exp_manager import ExperimentManager

    config = tmp_path / "boom.yml"
    config.write_text("Pendulum-v1:\n  policy: MlpPolicy\n  n_timesteps: 100\n  env_kwargs:\n    g: 9.0\n")
    manager = ExperimentManager(argparse.Namespace(), "boom", "Pendulum-v1", str(tmp_path), config=str(config))
    hyperparams, _ = manager.read_hyperparameters()
    assert hyperparams["env_kwargs"] == {"g": 9.0} and manager.eval_env_kwargs == {"g": 9.0}
    # the shipped file is the default config of --algo boom
    assert ExperimentManager(argparse.Namespace(), "boom", "Pendulum-v1", str(tmp_path)).config == str(
        zoo.shipped_hyperparams_path()
    )


def test_easy_dmc_entries_ship_the_cpu_preset():
    config = yaml.safe_load(zoo.shipped_hyperparams_path().read_text())
    preset = PRESETS["cpu"]
    easy = ["walker-walk", "walker-stand", "reacher-easy", "finger-spin", "cartpole-swingup", "pendulum-swingup"]
    easy.append("cheetah-run")
    for task in easy:
        entry = config[f"dm_control/{task}-v0"]
        assert eval(entry["policy_kwargs"]) == preset["policy_kwargs"], task  # the Zoo evaluates this string too
        assert {key: entry[key] for key in preset if key != "policy_kwargs"} == {
            key: value for key, value in preset.items() if key != "policy_kwargs"
        }, task


def test_an_rl_zoo_without_what_the_integration_reads_is_named_with_the_supported_versions():
    import types

    from rl_zoo3 import exp_manager

    from sb3_boom import zoo

    complete = {name: None for name in zoo.EXPERIMENT_MANAGER_ATTRIBUTES}
    zoo.check_experiment_manager(types.SimpleNamespace(**complete))
    renamed = {name: value for name, value in complete.items() if name != "_eval_env_kwargs_args"}
    with pytest.raises(RuntimeError, match=r"rl-zoo3>=2\.9\.1,<2\.10.*no _eval_env_kwargs_args.*pip install"):
        zoo.check_experiment_manager(types.SimpleNamespace(**renamed))
    # The installed rl_zoo3 has all of them: a real ExperimentManager for --algo boom passes the check.
    manager = exp_manager.ExperimentManager(argparse.Namespace(), "boom", "Pendulum-v1", "/tmp/sb3-boom-zoo-check")
    assert manager.config.endswith("boom.yml")


def test_a_preset_in_an_entry_fills_in_what_the_entry_does_not_set():
    entry = {"policy": "MlpPolicy", "preset": "cpu", "batch_size": 256, "lambda_align": "auto"}
    expanded = zoo.expand_preset(entry, command_line={})
    assert "preset" not in expanded and expanded["batch_size"] == 256  # the entry's own value wins
    assert expanded["num_samples"] == PRESETS["cpu"]["num_samples"] and expanded["policy_kwargs"] == {"model_size": "cpu"}
    expanded["policy_kwargs"]["model_size"] = 5  # SB3 writes into policy_kwargs: never into PRESETS
    assert PRESETS["cpu"]["policy_kwargs"] == {"model_size": "cpu"}


def test_a_preset_on_the_command_line_replaces_the_entrys_settings_but_not_the_command_lines():
    # a listed easy entry (planner keys spelled out), with --hyperparams preset:"'paper'" batch_size:64
    entry = {"policy": "MlpPolicy", "policy_kwargs": "dict(model_size='cpu')", "num_samples": 128, "batch_size": 64}
    command_line = {"preset": "paper", "batch_size": 64}
    expanded = zoo.expand_preset({**entry, **command_line}, command_line)
    assert expanded["policy_kwargs"] == {"model_size": 5} and expanded["batch_size"] == 64
    assert "num_samples" not in expanded  # the paper preset leaves the planner to BOOM's defaults (512)
    assert expanded["policy"] == "MlpPolicy"  # keys no preset governs stay
    with pytest.raises(ValueError, match=r"preset 'gpu' is not one of .*--hyperparams preset:\"'cpu'\""):
        zoo.expand_preset({"preset": "gpu"}, command_line={"preset": "gpu"})


def test_the_experiment_manager_expands_a_preset_and_saves_what_it_stands_for(tmp_path):
    from rl_zoo3.exp_manager import ExperimentManager

    config = tmp_path / "boom.yml"
    config.write_text("Pendulum-v1:\n  policy: MlpPolicy\n  n_timesteps: 100\n  preset: tiny\n  batch_size: 8\n")
    manager = ExperimentManager(argparse.Namespace(), "boom", "Pendulum-v1", str(tmp_path), config=str(config))
    hyperparams, saved = manager.read_hyperparameters()
    assert "preset" not in hyperparams and "preset" not in saved and list(saved) == sorted(saved)
    assert hyperparams["batch_size"] == 8 and hyperparams["num_samples"] == PRESETS["tiny"]["num_samples"]
    # --hyperparams preset:"'cpu'" replaces the entry's preset and its batch size
    manager = ExperimentManager(
        argparse.Namespace(), "boom", "Pendulum-v1", str(tmp_path), config=str(config), hyperparams={"preset": "cpu"}
    )
    hyperparams, saved = manager.read_hyperparameters()
    assert {key: hyperparams[key] for key in PRESETS["cpu"]} == PRESETS["cpu"] and "learning_starts" not in hyperparams
    assert dict(saved) == hyperparams


def test_an_entry_with_the_papers_model_on_a_cpu_points_at_the_cpu_preset(tmp_path, capsys):
    from rl_zoo3.exp_manager import ExperimentManager

    config = tmp_path / "boom.yml"
    config.write_text("Pendulum-v1:\n  policy: MlpPolicy\n  n_timesteps: 100\n")
    for hyperparams, noted in ((None, True), ({"preset": "cpu"}, False), ({"policy_kwargs": "dict(model_size=1)"}, False)):
        manager = ExperimentManager(
            argparse.Namespace(),
            "boom",
            "Pendulum-v1",
            str(tmp_path),
            config=str(config),
            hyperparams=hyperparams,
            device="cpu",
        )
        manager.read_hyperparameters()
        assert ("--hyperparams preset:\"'cpu'\"" in capsys.readouterr().out) == noted, hyperparams
