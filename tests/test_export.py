"""
Exporting the policy prior and the MPPI planner (sb3_boom/export.py): the exported files' actions equal
``predict``'s (the planner's under the same random draws), they run without SB3 or sb3-boom, and bad
input is refused with a clear message.
"""

import copy
import importlib.util
import json
import pathlib
import subprocess
import sys

import gymnasium as gym
import numpy as np
import pytest
import torch as th
from gymnasium import spaces

pytest.importorskip("onnx")
onnxruntime = pytest.importorskip("onnxruntime")

from sb3_boom import BOOM  # noqa: E402
from sb3_boom.export import export_policy, planner_draws, read_metadata  # noqa: E402

# torch 2.13 deprecates torch.jit (in favour of torch.export); TorchScript is still what libtorch loads.
pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.:DeprecationWarning")

ROOT = pathlib.Path(__file__).resolve().parents[1]
FORMATS = ("onnx", "torchscript")
# Float tolerance between the exported programs (onnxruntime's kernels, exp(x) - 1 for expm1) and predict.
ATOL = 1e-5
# Small planner: every random input matters, and each export takes well under a second.
PLANNER = dict(num_samples=64, num_elites=8, num_pi_trajs=8, iterations=2)


def _load_example():
    spec = importlib.util.spec_from_file_location("deploy_exported", ROOT / "examples" / "deploy_exported.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


deploy = _load_example()


def _perturbed(model: BOOM) -> BOOM:
    """
    Random parameters everywhere: a fresh model's zero Q output layer predicts the same value for every
    action sequence, and then the Q heads, their dropout and the elites' choice would go untested.
    """
    generator = th.Generator().manual_seed(0)
    with th.no_grad():
        for parameter in model.policy.parameters():
            parameter.add_(0.05 * th.randn(parameter.shape, generator=generator))
    return model


class DictPendulum(gym.ObservationWrapper):
    """Pendulum-v1 with a Dict observation: {"velocity": [1], "angle": [2]}."""

    def __init__(self):
        super().__init__(gym.make("Pendulum-v1"))
        self.observation_space = spaces.Dict(
            {
                "velocity": spaces.Box(-8.0, 8.0, (1,), np.float32),
                "angle": spaces.Box(-1.0, 1.0, (2,), np.float32),
            }
        )

    def observation(self, observation: np.ndarray) -> dict[str, np.ndarray]:
        return {"velocity": observation[2:], "angle": observation[:2]}


@pytest.fixture(scope="module")
def box_model():
    # Pendulum-v1: actions in [-2, 2], so the rescaling to the bounds is checked too.
    env = gym.make("Pendulum-v1")
    return _perturbed(BOOM("MlpPolicy", env, policy_kwargs=dict(model_size="cpu"), seed=0, **PLANNER))


@pytest.fixture(scope="module")
def dict_model():
    return _perturbed(BOOM("MultiInputPolicy", DictPendulum(), policy_kwargs=dict(model_size="cpu"), seed=0, **PLANNER))


def _observations(model: BOOM, n: int, seed: int) -> np.ndarray | dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    space = model.observation_space
    if isinstance(space, spaces.Dict):
        return {key: rng.standard_normal((n, *sub.shape)).astype(np.float32) for key, sub in space.spaces.items()}
    return rng.standard_normal((n, *space.shape)).astype(np.float32)


def _named(observation: np.ndarray | dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return dict(observation) if isinstance(observation, dict) else {"obs": observation}


def _first_call(observation: np.ndarray) -> dict[str, np.ndarray]:
    """A Pendulum planner's inputs at an episode's start (one environment, horizon 3), draws apart."""
    return {"obs": observation, "warm_start": np.zeros((1, 3, 1), np.float32), "episode_start": np.ones(1, bool)}


def _numpy(draws: dict[str, th.Tensor]) -> dict[str, np.ndarray]:
    return {name: value.numpy() for name, value in draws.items()}


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("space", ["box", "dict"])
def test_prior_matches_predict(box_model, dict_model, tmp_path, fmt, space):
    model = box_model if space == "box" else dict_model
    path = model.export(tmp_path / "prior", what="prior", format=fmt)
    assert path == tmp_path / ("prior.onnx" if fmt == "onnx" else "prior.pt")
    run, metadata = deploy.load_program(path)
    assert metadata["what"] == "prior"
    assert [item["name"] for item in metadata["inputs"]] == list(_named(_observations(model, 1, 0)))
    # Any batch size, and the prior mean's tanh rescaled to [-2, 2] (a factor 2), as predict returns it.
    for batch in (1, 5):
        observation = _observations(model, batch, batch)
        expected, _ = model.policy.predict(observation, deterministic=True, use_planner=False)
        (action,) = run(_named(observation))
        assert action.shape == (batch, 1) and action.dtype == np.float32
        np.testing.assert_allclose(action, expected, rtol=0, atol=ATOL)


def _check_planner(model: BOOM, path: pathlib.Path, n_envs: int, deterministic: bool, steps: int = 2) -> None:
    """The exported planner plans as ``model.predict`` when both take the same random draws, warm start included."""
    policy = model.policy
    run, metadata = deploy.load_program(path)
    horizon, action_dim = policy.planner.horizon, policy.action_dim
    state = np.zeros((n_envs, horizon, action_dim), dtype=np.float32)
    exported_state = state
    starts = np.ones(n_envs, dtype=bool)
    for step in range(steps):
        observation = _observations(model, n_envs, 10 + step)
        th.manual_seed(step)
        expected, (expected_state,) = model.predict(observation, (state,), starts, deterministic=deterministic)
        th.manual_seed(step)
        draws = _numpy(planner_draws(policy, n_envs, deterministic))
        assert [item["name"] for item in metadata["inputs"]][-len(draws) :] == list(draws)
        inputs = {**_named(observation), "warm_start": exported_state, "episode_start": starts, **draws}
        action, exported_state = run(inputs)
        assert action.shape == (n_envs, action_dim) and exported_state.shape == (n_envs, horizon, action_dim)
        np.testing.assert_allclose(action, expected, rtol=0, atol=ATOL)
        np.testing.assert_allclose(exported_state, expected_state, rtol=0, atol=ATOL)
        # Other draws, another plan: the draws are used, not constants of the file.
        th.manual_seed(100 + step)
        other, _ = run({**inputs, **_numpy(planner_draws(policy, n_envs, deterministic))})
        assert np.abs(other - action).max() > 1e-3
        # Next step: the first environment keeps its warm start, the others start an episode.
        state = expected_state
        starts = np.arange(n_envs) > 0


@pytest.mark.parametrize("fmt", FORMATS)
def test_planner_matches_predict_under_the_same_draws(box_model, tmp_path, fmt):
    assert box_model.policy.q_ensemble.dropout_always  # the default: the Q heads drop units while planning
    path = box_model.export(tmp_path / "planner", what="planner", format=fmt, n_envs=2)
    assert "dropout_gaps" in [item["name"] for item in read_metadata(path)["inputs"]]
    _check_planner(box_model, path, n_envs=2, deterministic=True)


def test_planner_with_exploration_noise_and_dict_observations(dict_model, tmp_path):
    path = dict_model.export(tmp_path / "planner.onnx", what="planner", n_envs=1, deterministic=False)
    assert read_metadata(path)["inputs"][-1]["name"] == "action_noise"
    _check_planner(dict_model, path, n_envs=1, deterministic=False)


def test_planner_without_q_dropout(box_model, tmp_path):
    # q_dropout="train": no dropout at plan time, and no dropout input.
    box_model.policy.set_q_dropout("train")
    try:
        path = box_model.export(tmp_path / "planner", what="planner", format="onnx")
        assert "dropout_gaps" not in [item["name"] for item in read_metadata(path)["inputs"]]
        _check_planner(box_model, path, n_envs=1, deterministic=True, steps=1)
    finally:
        box_model.policy.set_q_dropout("always")


def test_planner_applies_the_dropout_gaps(box_model, tmp_path):
    path = box_model.export(tmp_path / "planner", what="planner", format="onnx")
    run, _ = deploy.load_program(path)
    draws = _numpy(planner_draws(box_model.policy, 1, True, th.Generator().manual_seed(0)))
    inputs = _first_call(_observations(box_model, 1, 0))
    _, with_dropout = run({**inputs, **draws})
    # Gaps past the end drop nothing: the plan (the mean's weights come from the values) changes.
    _, without_dropout = run({**inputs, **draws, "dropout_gaps": np.full_like(draws["dropout_gaps"], 10**9)})
    assert np.abs(with_dropout - without_dropout).max() > 1e-4


def test_exported_files_run_without_sb3(box_model, tmp_path):
    """Each format and program runs in a fresh interpreter where importing sb3_boom or SB3 fails."""
    observation = _observations(box_model, 1, 3)
    draws = _numpy(planner_draws(box_model.policy, 1, True, th.Generator().manual_seed(1)))
    inputs = {**_first_call(observation), **draws}
    np.savez(tmp_path / "inputs.npz", **inputs)
    files = {}
    for what in ("prior", "planner"):
        for fmt in FORMATS:
            files[f"{what}_{fmt}"] = str(box_model.export(tmp_path / what, what=what, format=fmt))
    script = """
import importlib.abc, json, runpy, sys
class Blocker(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("sb3_boom", "stable_baselines3", "sb3_contrib"):
            raise ImportError("blocked: " + name)
sys.meta_path.insert(0, Blocker())
import numpy as np
example, files, folder = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3]
load_program = runpy.run_path(example)["load_program"]
inputs = dict(np.load(folder + "/inputs.npz"))
outputs = {}
for key, path in files.items():
    run, metadata = load_program(path)
    names = [item["name"] for item in metadata["inputs"]]
    for index, value in enumerate(run({name: inputs[name] for name in names})):
        outputs[f"{key}_{index}"] = value
np.savez(folder + "/outputs.npz", **outputs)
print(sorted(m for m in sys.modules if m.split(".")[0] in ("sb3_boom", "stable_baselines3")))
"""
    example = str(ROOT / "examples" / "deploy_exported.py")
    result = subprocess.run(
        [sys.executable, "-I", "-c", script, example, json.dumps(files), str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().splitlines()[-1] == "[]"
    outputs = dict(np.load(tmp_path / "outputs.npz"))
    expected_prior, _ = box_model.policy.predict(observation, deterministic=True, use_planner=False)
    th.manual_seed(1)
    # planner_draws with a generator seeded 1 draws what predict draws after th.manual_seed(1).
    expected_plan, (expected_state,) = box_model.predict(observation, (inputs["warm_start"],), np.ones(1, bool), True)
    for fmt in FORMATS:
        np.testing.assert_allclose(outputs[f"prior_{fmt}_0"], expected_prior, rtol=0, atol=ATOL)
        np.testing.assert_allclose(outputs[f"planner_{fmt}_0"], expected_plan, rtol=0, atol=ATOL)
        np.testing.assert_allclose(outputs[f"planner_{fmt}_1"], expected_state, rtol=0, atol=ATOL)


@pytest.mark.parametrize("what", ["prior", "planner"])
def test_deployment_example_drives_an_env(box_model, tmp_path, what):
    path = box_model.export(tmp_path / what, what=what, format="onnx" if what == "planner" else "torchscript")
    result = subprocess.run(
        [sys.executable, "-I", str(ROOT / "examples" / "deploy_exported.py"), str(path), "--max-steps=4", "--episodes=2"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    line = result.stdout.strip().splitlines()[-1]
    returns = json.loads(line.split("returns: ")[1].split(";")[0])
    # Pendulum's reward is in [-16.3, 0]: two episodes of 4 steps each.
    assert len(returns) == 2 and all(-4 * 16.3 <= value <= 0 for value in returns)
    assert line.endswith("SB3 / sb3-boom modules loaded: none")


def test_export_after_save_and_load(box_model, tmp_path):
    box_model.save(tmp_path / "model")
    loaded = BOOM.load(tmp_path / "model")
    original = box_model.export(tmp_path / "original", what="planner", format="torchscript")
    reloaded = loaded.export(tmp_path / "reloaded", what="planner", format="torchscript")
    assert read_metadata(reloaded) == read_metadata(original)
    inputs = _first_call(_observations(box_model, 1, 5))
    inputs.update(_numpy(planner_draws(loaded.policy, 1, True, th.Generator().manual_seed(2))))
    for a, b in zip(deploy.load_program(original)[0](inputs), deploy.load_program(reloaded)[0](inputs), strict=True):
        np.testing.assert_array_equal(a, b)


def test_export_from_a_compiled_model(box_model, tmp_path):
    # compile=True wraps the networks in place (torch.compile); the export traces the plain networks all the same.
    env = gym.make("Pendulum-v1")
    compiled = BOOM("MlpPolicy", env, policy_kwargs=dict(model_size="cpu"), compile=True, seed=0, **PLANNER)
    compiled.policy.load_state_dict(box_model.policy.state_dict())
    inputs = {**_first_call(_observations(box_model, 1, 6)), **_numpy(planner_draws(box_model.policy, 1, True))}
    outputs = []
    for model in (compiled, box_model):
        path = model.export(tmp_path / f"planner_{model is compiled}", what="planner", format="onnx")
        outputs.append(deploy.load_program(path)[0](inputs))
    for a, b in zip(*outputs, strict=True):
        np.testing.assert_array_equal(a, b)
    assert compiled.policy.encoder._compiled_call_impl is not None  # the model itself stays compiled


def test_export_leaves_the_model_alone(box_model, tmp_path):
    policy = box_model.policy
    policy.set_training_mode(True)
    rng_state = th.get_rng_state()
    parameters = [p.detach().clone() for p in policy.parameters()]
    try:
        box_model.export(tmp_path / "planner", what="planner", format="torchscript")
        assert policy.training and policy.q_ensemble.training
        assert th.equal(th.get_rng_state(), rng_state)  # the example draws come from a private generator
        assert all(th.equal(a, b) for a, b in zip(parameters, policy.parameters(), strict=True))
    finally:
        policy.set_training_mode(False)


def test_bad_input_is_refused_clearly(box_model, tmp_path):
    with pytest.raises(ValueError, match=r"what must be one of \['prior', 'planner'\], got 'actor'"):
        box_model.export(tmp_path / "x", what="actor")
    with pytest.raises(ValueError, match=r"format must be one of \['onnx', 'torchscript'\], got 'tflite'"):
        box_model.export(tmp_path / "x", format="tflite")
    with pytest.raises(ValueError, match="n_envs must be >= 1"):
        box_model.export(tmp_path / "x", what="planner", n_envs=0)
    with pytest.raises(TypeError, match="Only a BOOM WorldModelPolicy can be exported, got Linear.*export guide"):
        export_policy(th.nn.Linear(3, 1), tmp_path / "x")  # type: ignore[arg-type]
    broken = copy.deepcopy(box_model.policy)
    broken.dynamics = None
    with pytest.raises(ValueError, match="Cannot export the planner: the policy has no dynamics"):
        export_policy(broken, tmp_path / "x", what="planner")
    export_policy(broken, tmp_path / "prior", what="prior")  # the prior does not need the dynamics
    broken.precision = "bfloat16"
    with pytest.warns(UserWarning, match="computes in float32"):
        export_policy(broken, tmp_path / "prior", what="prior")

    # The exported programs name the input whose shape is wrong, and the shape they expect.
    onnx_prior = box_model.export(tmp_path / "prior", what="prior", format="onnx")
    session = onnxruntime.InferenceSession(str(onnx_prior))
    with pytest.raises(Exception, match="invalid dimensions for input: obs"):
        session.run(None, {"obs": np.zeros((1, 4), np.float32)})
    script_prior = th.jit.load(str(box_model.export(tmp_path / "prior", what="prior", format="torchscript")))
    with pytest.raises(Exception, match=r"input 'obs' has shape \[1, 4\], the exported program expects \[-1, 3\]"):
        script_prior(th.zeros(1, 4))
    script_planner = box_model.export(tmp_path / "planner", what="planner", format="torchscript")
    run, _ = deploy.load_program(script_planner)
    inputs = _first_call(np.zeros((1, 3), np.float32))
    inputs.update(_numpy(planner_draws(box_model.policy, 1, True)))
    run(inputs)
    with pytest.raises(Exception, match=r"input 'warm_start' has shape \[1, 2, 1\], the exported program expects \[1, 3, 1\]"):
        run({**inputs, "warm_start": np.zeros((1, 2, 1), np.float32)})
    with pytest.raises(Exception, match=r"input 'sample_noise' has shape"):
        run({**inputs, "sample_noise": inputs["sample_noise"][:1]})
