"""
RL Baselines3 Zoo integration: the ``boom`` entry of the algorithm table, the Optuna sampler and
converter, and the shipped hyperparameters as the default config.

rl-zoo3 has no plugin mechanism. The start-up hook ``sb3_boom_zoo_hook`` (installed with
``sb3_boom_zoo.pth``) calls the functions below right after rl_zoo3 loads the module they patch,
so ``python -m rl_zoo3.train --algo boom ...`` (and ``enjoy``, ``record_video``, ...) work
unchanged. Nothing in sb3_boom imports this module.
"""

import functools
import importlib.util
import inspect
import pathlib
import sys
from types import ModuleType
from typing import Any

import optuna

from sb3_boom.env_defaults import lambda_align_for

ALGO_NAME = "boom"
_PACKAGE_DIR = pathlib.Path(__file__).resolve().parent


def shipped_hyperparams_path() -> pathlib.Path:
    """``hyperparams/boom.yml``: inside the installed package, or at the root of a checkout."""
    for candidate in (_PACKAGE_DIR / "hyperparams" / "boom.yml", _PACKAGE_DIR.parent / "hyperparams" / "boom.yml"):
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(f"hyperparams/boom.yml is missing from the sb3-boom installation ({_PACKAGE_DIR})")


def register_algorithm(utils_module: ModuleType) -> None:
    """Add BOOM to ``rl_zoo3.utils.ALGOS`` and import shimmy so that ``dm_control/*`` ids exist."""
    from sb3_boom import BOOM

    utils_module.ALGOS.setdefault(ALGO_NAME, BOOM)
    # Gymnasium 1.x no longer loads env plugins by itself: dm_control/* ids are unknown to the Zoo's
    # scripts unless shimmy is imported (--gym-packages shimmy). Importing it costs ~0.7 s (all of
    # dm_control), so do it only for command lines that name such an env.
    if any("dm_control/" in arg for arg in sys.argv) and importlib.util.find_spec("shimmy") is not None:
        import shimmy  # noqa: F401


def register_optuna(hyperparams_opt_module: ModuleType) -> None:
    """Add the BOOM sampler and converter to rl_zoo3's Optuna tables."""
    hyperparams_opt_module.HYPERPARAMS_SAMPLER.setdefault(ALGO_NAME, sample_boom_params)
    hyperparams_opt_module.HYPERPARAMS_CONVERTER.setdefault(ALGO_NAME, convert_boom_params)


def use_shipped_hyperparams(exp_manager_module: ModuleType) -> None:
    """
    Make ``hyperparams/boom.yml`` of this package the default config of ``--algo boom`` (rl_zoo3
    looks in its own folder), give the sampler the task's ``lambda_align`` setting, and let the
    evaluation env use the config's ``env_kwargs`` when no ``--eval-env-kwargs`` are given.
    """
    manager_class = exp_manager_module.ExperimentManager
    if getattr(manager_class, "_sb3_boom_patched", False):
        return
    original_init, original_objective = manager_class.__init__, manager_class.objective
    original_read = manager_class.read_hyperparameters
    signature = inspect.signature(original_init)

    @functools.wraps(original_init)
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        original_init(self, *args, **kwargs)
        bound = signature.bind(self, *args, **kwargs)
        if self.algo == ALGO_NAME and not bound.arguments.get("config"):
            self.config = str(shipped_hyperparams_path())

    @functools.wraps(original_objective)
    def objective(self, trial: optuna.Trial) -> float:
        if self.algo == ALGO_NAME:
            trial.set_user_attr("lambda_align_setting", self._hyperparams.get("lambda_align", "auto"))
        return original_objective(self, trial)

    @functools.wraps(original_read)
    def read_hyperparameters(self) -> tuple[dict[str, Any], dict[str, Any]]:
        hyperparams, saved_hyperparams = original_read(self)
        # rl_zoo3 2.9 gives the eval env the config's env_kwargs only when --env-kwargs is also set
        # (its comment says it means to always do so). HumanoidBench entries rely on it: their
        # render_mode None spares an off-screen OpenGL renderer per env.
        if self.algo == ALGO_NAME and self._eval_env_kwargs_args is None and "env_kwargs" in hyperparams:
            self.eval_env_kwargs = dict(hyperparams["env_kwargs"])
        return hyperparams, saved_hyperparams

    manager_class.__init__ = __init__
    manager_class.objective = objective
    manager_class.read_hyperparameters = read_hyperparameters
    manager_class._sb3_boom_patched = True


def default_lambda_align(trial: optuna.Trial, n_actions: int) -> float:
    """The task's lambda_align: its config value, or the "auto" rule for ``n_actions``."""
    setting = trial.user_attrs.get("lambda_align_setting", "auto")
    return lambda_align_for(n_actions) if setting == "auto" else float(setting)


def sample_boom_params(trial: optuna.Trial, n_actions: int, n_envs: int, additional_args: dict[str, Any]) -> dict[str, Any]:
    """
    Optuna search space of BOOM: ``lambda_align`` log-uniform over 0.1x to 10x the task's default
    (the range of the paper's study), and the planner and learning knobs that matter. Returns BOOM
    arguments (the raw trial values go through :func:`convert_boom_params`, as rl_zoo3 expects).
    """
    base = default_lambda_align(trial, n_actions)
    trial.set_user_attr("lambda_align_default", base)
    return convert_boom_params(
        {
            "lambda_align": trial.suggest_float("lambda_align", 0.1 * base, 10.0 * base, log=True),
            "temperature": trial.suggest_float("temperature", 0.1, 2.0, log=True),
            "horizon": trial.suggest_categorical("horizon", [1, 2, 3, 5]),
            "num_samples_pow": trial.suggest_int("num_samples_pow", 6, 9),
            "iterations": trial.suggest_int("iterations", 2, 8),
            "learning_rate": trial.suggest_float("learning_rate", 1e-4, 1e-3, log=True),
            "align_temperature": trial.suggest_float("align_temperature", 0.3, 3.0, log=True),
        }
    )


def convert_boom_params(sampled_params: dict[str, Any]) -> dict[str, Any]:
    """Turn sampled values into BOOM arguments (planner sample counts from a power of two)."""
    params = dict(sampled_params)
    num_samples = 2 ** params.pop("num_samples_pow")
    params["num_samples"] = num_samples
    # The default planner keeps 1/8 of the samples as elites and proposes 24 of 512 with the prior.
    params["num_elites"] = max(num_samples // 8, 2)
    params["num_pi_trajs"] = max(num_samples * 24 // 512, 1)
    return params
