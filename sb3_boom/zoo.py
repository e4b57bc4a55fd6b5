"""
RL Baselines3 Zoo integration: the ``boom`` entry of the algorithm table, the Optuna sampler and
converter, and the shipped hyperparameters as the default config.

rl-zoo3 has no plugin mechanism. The start-up hook ``sb3_boom_zoo_hook`` (installed with
``sb3_boom_zoo.pth``) calls the functions below right after rl_zoo3 loads the module they patch,
so ``python -m rl_zoo3.train --algo boom ...`` (and ``enjoy``, ``record_video``, ...) work
unchanged. Nothing in sb3_boom imports this module.
"""

import copy
import difflib
import functools
import importlib.util
import inspect
import pathlib
import sys
from collections import OrderedDict
from types import ModuleType
from typing import Any

import optuna

from sb3_boom.env_defaults import lambda_align_for
from sb3_boom.presets import PRESETS

ALGO_NAME = "boom"
_PACKAGE_DIR = pathlib.Path(__file__).resolve().parent


def shipped_hyperparams_path() -> pathlib.Path:
    """``hyperparams/boom.yml``: inside the installed package, or at the root of a checkout."""
    for candidate in (_PACKAGE_DIR / "hyperparams" / "boom.yml", _PACKAGE_DIR.parent / "hyperparams" / "boom.yml"):
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(f"hyperparams/boom.yml is missing from the sb3-boom installation ({_PACKAGE_DIR})")


DMC_PREFIX = "dm_control/"
# The paper's protocol on the DeepMind Control Suite, as the YAML's dm_control entries spell it: the Dict
# observation flattened, float64 -> float32, each action repeated twice (rewards summed).
DMC_ENV_WRAPPER: list[Any] = [
    "gymnasium.wrappers.FlattenObservation",
    {"gymnasium.wrappers.DtypeObservation": {"dtype": "float32"}},
    {"rl_zoo3.wrappers.FrameSkip": {"skip": 2}},
]
# Budgets of derived entries, in agent steps (x2 = env steps): 100k env steps with the CPU preset (the
# YAML's easy entries), 1M env steps with the paper's model on a GPU (the published curves' 1M point).
DMC_CPU_TIMESTEPS = 50_000
DMC_GPU_TIMESTEPS = 500_000


def dmc_hyperparams(env_id: str, device: Any = "auto") -> dict[str, Any]:
    """
    The RL Zoo entry of a ``dm_control/*`` id that the config file does not list.

    Rule: ``stable_baselines3.common.utils.get_device(device)`` (what BOOM will run on; rl_zoo3's
    ``--device``, "auto" by default) is CUDA -> the paper's setting (BOOM's defaults, the 5M model,
    ``PRESETS["paper"]``) for 5e5 agent steps; anything else -> the CPU preset (``PRESETS["cpu"]``) for
    5e4 agent steps, as the YAML's easy DMC entries. Both with the paper's env protocol
    (:data:`DMC_ENV_WRAPPER`) and ``lambda_align: auto``.

    :param env_id: a ``dm_control/<domain>-<task>-v0`` id registered by shimmy (a Control Suite task)
    :param device: the device BOOM will be given ("auto", "cpu", "cuda", ``th.device``)
    :return: the entry, as a YAML entry would be read
    """
    if not env_id.startswith(DMC_PREFIX):
        raise ValueError(f"{env_id!r} is not a dm_control/* id: add an entry for it to hyperparams/boom.yml (or --conf-file)")
    _check_registered(env_id)
    from stable_baselines3.common.utils import get_device

    on_gpu = get_device(device).type == "cuda"
    preset = PRESETS["paper" if on_gpu else "cpu"]
    entry = {
        "policy": "MlpPolicy",
        "n_timesteps": float(DMC_GPU_TIMESTEPS if on_gpu else DMC_CPU_TIMESTEPS),
        **preset,
        "lambda_align": "auto",
        "env_wrapper": DMC_ENV_WRAPPER,
    }
    return copy.deepcopy(entry)  # rl_zoo3 writes into the entry, SB3 into policy_kwargs


PRESET_KEY = "preset"


def expand_preset(hyperparams: dict[str, Any], command_line: dict[str, Any]) -> dict[str, Any]:
    """
    Replace a ``preset`` key of an RL Zoo entry by the settings it names in :data:`sb3_boom.presets.PRESETS`
    (``--hyperparams preset:"'cpu'"``, or ``preset: cpu`` in a config file).

    A preset given in the config entry fills in what the entry does not set. One given on the command
    line replaces the whole setting that presets govern (model, planner, batch, warm-up, buffer: the keys of
    any preset): the entry's values of those keys are dropped, so ``preset:"'paper'"`` on a CPU entry gives
    BOOM's defaults where the paper preset leaves them. The command line's other keys still win over it.

    :param hyperparams: the entry, with the Optuna trial's and the command line's values already applied
    :param command_line: rl_zoo3's ``--hyperparams`` (``ExperimentManager.custom_hyperparams``)
    :return: a new dict without the ``preset`` key
    """
    rest = {key: value for key, value in hyperparams.items() if key != PRESET_KEY}
    name = hyperparams[PRESET_KEY]
    if name not in PRESETS:
        raise ValueError(
            f"preset {name!r} is not one of {sorted(PRESETS)} (sb3_boom.presets.PRESETS). On the command line a "
            f"preset is a Python string: --hyperparams preset:\"'cpu'\""
        )
    preset = copy.deepcopy(PRESETS[name])  # SB3 writes into policy_kwargs
    if PRESET_KEY in command_line:
        overrides = {key: value for key, value in command_line.items() if key != PRESET_KEY}
        governed = set().union(*PRESETS.values())
        entry = {key: value for key, value in rest.items() if key not in governed}
        return {**entry, **preset, **overrides}
    return {**preset, **rest}


def _check_registered(env_id: str) -> None:
    """Fail early, with the close matches, on an id shimmy does not register (a typo would train nothing)."""
    import gymnasium as gym

    if importlib.util.find_spec("shimmy") is None:
        raise ModuleNotFoundError(f"{env_id} needs shimmy[dm-control]: pip install 'sb3-boom[dmc]'")
    import shimmy

    gym.register_envs(shimmy)
    if env_id not in gym.registry:
        known = sorted(name for name in gym.registry if name.startswith(DMC_PREFIX))
        close = difflib.get_close_matches(env_id, known, n=3, cutoff=0.6)
        hint = f"did you mean {', '.join(close)}?" if close else f"shimmy registers {len(known)}, e.g. {known[:3]}"
        raise ValueError(f"{env_id} is not a registered dm_control task: {hint}")
    from dm_control import suite

    # shimmy also registers dm_control's locomotion (CmuHumanoid*, Rodent*: camera observations) and manipulation
    # (*_features, *_vision) tasks: the paper's protocol and the published curves are the Control Suite's.
    domain, _, task = env_id[len(DMC_PREFIX) :].rpartition("-v")[0].partition("-")
    if (domain, task) not in suite.ALL_TASKS:
        raise ValueError(
            f"{env_id} is not a Control Suite task (dm_control.suite.ALL_TASKS), for which alone sb3-boom derives "
            "settings (the paper's protocol): add an entry for it to hyperparams/boom.yml (or --conf-file)"
        )


def listed_in_config(config: str, env_id: str) -> bool:
    """Whether the rl_zoo3 config ``config`` (a YAML file; other kinds count as listing everything) has ``env_id``."""
    if not config.endswith((".yml", ".yaml")):
        return True
    import yaml

    with open(config) as file:
        return env_id in (yaml.safe_load(file) or {})


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
    share_studies(exp_manager_module)
    if getattr(manager_class, "_sb3_boom_patched", False):
        return
    original_init, original_objective = manager_class.__init__, manager_class.objective
    original_read = manager_class.read_hyperparameters
    signature = inspect.signature(original_init)

    @functools.wraps(original_init)
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        original_init(self, *args, **kwargs)
        if self.algo != ALGO_NAME:
            return
        check_experiment_manager(self)
        bound = signature.bind(self, *args, **kwargs)
        if not bound.arguments.get("config"):
            self.config = str(shipped_hyperparams_path())

    @functools.wraps(original_objective)
    def objective(self, trial: optuna.Trial) -> float:
        if self.algo == ALGO_NAME:
            hyperparams = getattr(self, "_hyperparams", None)
            if not isinstance(hyperparams, dict):
                raise RuntimeError(_unsupported_rl_zoo("ExperimentManager._hyperparams is not set before objective()"))
            trial.set_user_attr("lambda_align_setting", hyperparams.get("lambda_align", "auto"))
        return original_objective(self, trial)

    @functools.wraps(original_read)
    def read_hyperparameters(self) -> tuple[dict[str, Any], dict[str, Any]]:
        env_id = self.env_name.gym_id
        if self.algo == ALGO_NAME and env_id.startswith(DMC_PREFIX) and not listed_in_config(self.config, env_id):
            # Not the config's `default:` entry (MlpPolicy on a Dict observation, no action repeat)
            hyperparams, saved_hyperparams = read_derived_hyperparameters(self, dmc_hyperparams(env_id, self.device))
        else:
            hyperparams, saved_hyperparams = original_read(self)
        if self.algo == ALGO_NAME and PRESET_KEY in hyperparams:
            # config.yml records the settings the preset stands for, so that the run can be repeated as saved
            hyperparams = expand_preset(hyperparams, self.custom_hyperparams or {})
            saved_hyperparams = OrderedDict((key, hyperparams[key]) for key in sorted(hyperparams))
            print(f"Preset expanded ({', '.join(f'{key}={value!r}' for key, value in saved_hyperparams.items())})")
        if self.algo == ALGO_NAME and "policy_kwargs" not in hyperparams:
            warn_of_the_papers_model_on_a_cpu(self.device)
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


def warn_of_the_papers_model_on_a_cpu(device: Any) -> None:
    """Point at the cpu preset when an entry leaves BOOM its default model (the paper's 5M) and BOOM will run on a CPU."""
    from stable_baselines3.common.utils import get_device

    if get_device(device).type != "cuda":
        print(
            "Note: this entry trains BOOM's default model (the paper's 5M, 512 MPPI samples) on a CPU: about 1.5 "
            "agent steps/s on 2 idle cores (sb3-boom's docs, Speed). For a CPU budget name the cpu preset: "
            "--hyperparams preset:\"'cpu'\" (RL Zoo > Presets)."
        )


# ExperimentManager attributes (rl_zoo3 2.9) this integration reads after __init__: not public API, so
# checked once per run, with an error that names the supported versions instead of a failure mid-run.
EXPERIMENT_MANAGER_ATTRIBUTES = (
    "env_name",
    "custom_hyperparams",
    "_eval_env_kwargs_args",
    "storage",
    "study_name",
    "trial_id",
    "load_trial",
    "device",
    "config",
)
SUPPORTED_RL_ZOO = ">=2.9.1,<2.10"


def _unsupported_rl_zoo(problem: str) -> str:
    import rl_zoo3

    return (
        f"sb3-boom's RL Zoo integration supports rl-zoo3{SUPPORTED_RL_ZOO}; the installed rl_zoo3 "
        f"{getattr(rl_zoo3, '__version__', '?')} differs: {problem}. Install a supported version: "
        f"pip install 'rl-zoo3{SUPPORTED_RL_ZOO}'."
    )


def check_experiment_manager(manager: Any) -> None:
    """Raise a clear error when rl_zoo3's ExperimentManager lacks an attribute this integration reads."""
    missing = [name for name in EXPERIMENT_MANAGER_ATTRIBUTES if not hasattr(manager, name)]
    if missing:
        raise RuntimeError(_unsupported_rl_zoo(f"its ExperimentManager has no {', '.join(missing)}"))


def read_derived_hyperparameters(manager: Any, entry: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """
    rl_zoo3's ``ExperimentManager.read_hyperparameters`` (2.9) with ``entry`` in place of the config's:
    the Optuna trial's values (``--storage --study-name --trial-id``), then ``--hyperparams``, over it.

    :param manager: the ``ExperimentManager``
    :param entry: the derived entry (:func:`dmc_hyperparams`)
    :return: the hyperparameters and their key-sorted copy that rl_zoo3 saves as ``config.yml``
    """
    from pprint import pprint

    env_id = manager.env_name.gym_id
    print(f"Hyperparameters of {env_id} derived by sb3_boom.zoo.dmc_hyperparams ({manager.config} has no entry)")
    hyperparams = dict(entry)
    if manager.storage and manager.study_name and manager.trial_id:
        print("Loading from Optuna study...")
        hyperparams.update(manager.load_trial(manager.storage, manager.study_name, manager.trial_id))
    if manager.custom_hyperparams is not None:
        hyperparams.update(manager.custom_hyperparams)
    saved_hyperparams = OrderedDict((key, hyperparams[key]) for key in sorted(hyperparams))  # as rl_zoo3 saves it
    print("Default hyperparameters for environment (ones being tuned will be overridden):")
    pprint(saved_hyperparams)
    return hyperparams, saved_hyperparams


def share_studies(exp_manager_module: ModuleType) -> None:
    """
    ``-optimize --storage <database URL>`` on many machines: Optuna's heartbeat and retry of the trials of
    dead workers, the study's algorithm and env checked, ``--max-total-trials`` across workers that may die
    (see :mod:`sb3_boom.distributed`).
    """
    from sb3_boom.distributed import patch_experiment_manager

    patch_experiment_manager(exp_manager_module)


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
