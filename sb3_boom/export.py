"""
Export a trained BOOM policy to a self-contained file that runs without SB3 or sb3-boom: the policy
prior (encoder + prior mean) or the whole MPPI planner, as ONNX (for ``onnxruntime``) or TorchScript
(for plain ``torch`` / libtorch). See docs/export.md.

The exported planner takes its random draws as inputs (the same draws, in the same order, that
``WorldModelPolicy.plan`` takes from torch's generator): with :func:`planner_draws` a caller reproduces
``predict``'s plan exactly, and a robot's control loop draws them with any random number generator
(examples/deploy_exported.py draws them with numpy).
"""

import json
import pathlib
import warnings
from typing import Any

import torch as th
from torch import nn

from sb3_boom.export_programs import (
    DRAW_DISTRIBUTIONS,
    ExportedProgram,
    PlannerProgram,
    PriorProgram,
    check_input_shape,
    planner_draws,
)
from sb3_boom.kernels import SPARSE_DROPOUT_MAX_P
from sb3_boom.policies import WorldModelPolicy

EXPORT_WHATS = ("prior", "planner")
EXPORT_FORMATS = ("onnx", "torchscript")
# Default file suffix of each format.
FORMAT_SUFFIXES = {"onnx": ".onnx", "torchscript": ".pt"}
# Where the description of the inputs and outputs is stored: ONNX metadata key, TorchScript extra file.
METADATA_KEY = "sb3_boom"


def _example_observations(program: ExportedProgram, batch: int) -> tuple[th.Tensor, ...]:
    return tuple(th.zeros(batch, *shape) for _, shape in program.observation_inputs)


def _metadata(what: str, program: ExportedProgram, batch: int | None) -> dict[str, Any]:
    """What a deployment loop needs to feed the program: its inputs (shapes, dtypes, distributions) and outputs."""
    inputs = [
        {"name": name, "shape": [batch, *shape], "dtype": "float32", "kind": "observation"}
        for name, shape in program.observation_inputs
    ]
    outputs = [{"name": "action", "shape": [batch, *program.action_shape], "dtype": "float32"}]
    data: dict[str, Any] = {"what": what, "action_low": program.low.tolist(), "action_high": program.high.tolist()}
    if isinstance(program, PlannerProgram):
        cfg = program.config
        state_shape = [program.n_envs, cfg.horizon, program.action_dim]
        inputs.append({"name": "warm_start", "shape": state_shape, "dtype": "float32", "kind": "state"})
        inputs.append({"name": "episode_start", "shape": [program.n_envs], "dtype": "bool", "kind": "episode_start"})
        for name, shape in program.draw_shapes().items():
            dtype = "int64" if name == "dropout_gaps" else "float32"
            inputs.append({"name": name, "shape": list(shape), "dtype": dtype, "kind": DRAW_DISTRIBUTIONS[name]})
        outputs.append({"name": "next_warm_start", "shape": state_shape, "dtype": "float32"})
        data.update(
            n_envs=program.n_envs,
            deterministic=program.deterministic,
            dropout_p=program.dropout_p,
            planner={name: getattr(cfg, name) for name in cfg.__dataclass_fields__},
            gamma=program.gamma,
        )
    data.update(inputs=inputs, outputs=outputs)
    return data


def export_policy(
    policy: WorldModelPolicy,
    path: str | pathlib.Path,
    what: str = "prior",
    format: str = "onnx",
    n_envs: int = 1,
    deterministic: bool = True,
    opset_version: int = 17,
) -> pathlib.Path:
    """
    Export the policy prior or the MPPI planner of a BOOM policy to one self-contained file.

    :param policy: a ``WorldModelPolicy`` (``model.policy``)
    :param path: the file to write (the format's suffix, ``.onnx`` or ``.pt``, is added if missing)
    :param what: "prior" (:class:`PriorProgram`, any batch size) or "planner" (:class:`PlannerProgram`)
    :param format: "onnx" (run with ``onnxruntime``) or "torchscript" (run with ``torch.jit.load``)
    :param n_envs: the planner's number of environments (fixed in the file)
    :param deterministic: the planner executes its elite's first action, as ``predict(deterministic=True)``
    :param opset_version: ONNX opset
    :return: the path written
    """
    if what not in EXPORT_WHATS:
        raise ValueError(f"what must be one of {list(EXPORT_WHATS)}, got {what!r}")
    if format not in EXPORT_FORMATS:
        raise ValueError(f"format must be one of {list(EXPORT_FORMATS)}, got {format!r}")
    if not isinstance(policy, WorldModelPolicy):
        raise TypeError(
            f"Only a BOOM WorldModelPolicy can be exported, got {type(policy).__name__}; for other SB3 policies, "
            "follow SB3's export guide (https://stable-baselines3.readthedocs.io/en/master/guide/export.html)."
        )
    if n_envs < 1:
        raise ValueError(f"n_envs must be >= 1, got {n_envs}")
    if format == "onnx":
        try:
            import onnx  # noqa: F401
        except ImportError as error:
            raise ImportError(f"Exporting to ONNX needs onnx: pip install 'sb3-boom[export]' ({error})") from error
    needed = ("encoder", "actor") if what == "prior" else ("encoder", "dynamics", "reward_head", "actor", "q_ensemble")
    missing = [name for name in needed if not isinstance(getattr(policy, name, None), nn.Module)]
    if missing:
        raise ValueError(f"Cannot export the {what}: the policy has no {', '.join(missing)} (build it with BOOM first).")
    if policy.precision != "float32":
        warnings.warn(
            f"The policy runs in {policy.precision}; the exported program computes in float32, so its actions "
            "differ from predict()'s by that rounding.",
            stacklevel=2,
        )
    if what == "planner" and policy.q_ensemble.dropout_always and policy.dropout > SPARSE_DROPOUT_MAX_P:
        warnings.warn(
            f"Q dropout {policy.dropout} > {SPARSE_DROPOUT_MAX_P}: predict() draws it per unit, the exported planner "
            "from geometric gaps (same distribution), so planner_draws() does not reproduce predict()'s draws.",
            stacklevel=2,
        )
    path = pathlib.Path(path)
    if path.suffix != FORMAT_SUFFIXES[format]:
        path = path.with_name(path.name + FORMAT_SUFFIXES[format])
    path.parent.mkdir(parents=True, exist_ok=True)

    if what == "prior":
        program: ExportedProgram = PriorProgram(policy)
        example = _example_observations(program, 1)
        batch = None
    else:
        program = PlannerProgram(policy, n_envs, deterministic)
        # Draws from a private generator: exporting leaves torch's global random state as it was.
        draws = planner_draws(policy, n_envs, deterministic, th.Generator().manual_seed(0))
        cfg = policy.planner
        example = (
            *_example_observations(program, n_envs),
            th.zeros(n_envs, cfg.horizon, policy.action_dim),
            th.ones(n_envs, dtype=th.bool),
            *draws.values(),
        )
        batch = n_envs
    metadata = json.dumps(_metadata(what, program, batch))
    input_names = [item["name"] for item in json.loads(metadata)["inputs"]]
    output_names = ["action"] if what == "prior" else ["action", "next_warm_start"]

    with th.no_grad(), warnings.catch_warnings():
        # torch.jit (deprecated in favour of torch.export) warns on trace; the traced program is what we want.
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        warnings.filterwarnings("ignore", category=FutureWarning)
        warnings.filterwarnings("ignore", category=th.jit.TracerWarning)
        if format == "onnx":
            _export_onnx(program, example, path, input_names, output_names, what == "prior", metadata, opset_version)
        else:
            program.input_check = th.jit.script(check_input_shape)
            traced = th.jit.trace(program, example, check_trace=False)
            th.jit.save(traced, str(path), _extra_files={f"{METADATA_KEY}.json": metadata})
    return path


def _expm1_symbolic(graph: Any, x: Any) -> Any:
    return graph.op("Sub", graph.op("Exp", x), graph.op("Constant", value_t=th.tensor(1.0)))


def _export_onnx(
    program: nn.Module,
    example: tuple[th.Tensor, ...],
    path: pathlib.Path,
    input_names: list[str],
    output_names: list[str],
    dynamic_batch: bool,
    metadata: str,
    opset_version: int,
) -> None:
    """Trace ``program`` to ONNX (the TorchScript-based exporter: loops unrolled, weights stored once) and add the metadata."""
    import onnx

    dynamic_axes = {name: {0: "batch"} for name in [*input_names, *output_names]} if dynamic_batch else None
    # symexp's expm1 (the decoded rewards and values) has no ONNX operator: exp(x) - 1, which differs by
    # float32 rounding near 0 (absolute error ~1e-7).
    th.onnx.register_custom_op_symbolic("aten::expm1", _expm1_symbolic, opset_version)
    try:
        th.onnx.export(
            program,
            example,
            str(path),
            input_names=input_names,
            output_names=output_names,
            dynamic_axes=dynamic_axes,
            opset_version=opset_version,
            dynamo=False,
        )
    finally:
        th.onnx.unregister_custom_op_symbolic("aten::expm1", opset_version)  # leave other exports as they were
    model = onnx.load(str(path))
    entry = model.metadata_props.add()
    entry.key, entry.value = METADATA_KEY, metadata
    onnx.save(model, str(path))


def read_metadata(path: str | pathlib.Path) -> dict[str, Any]:
    """The description of an exported file's inputs and outputs (ONNX metadata or TorchScript extra file)."""
    path = pathlib.Path(path)
    if path.suffix == ".onnx":
        import onnx

        model = onnx.load(str(path), load_external_data=False)
        return json.loads({entry.key: entry.value for entry in model.metadata_props}[METADATA_KEY])
    extra = {f"{METADATA_KEY}.json": ""}
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=DeprecationWarning)  # torch.jit's, as in export_policy
        th.jit.load(str(path), _extra_files=extra)
    return json.loads(extra[f"{METADATA_KEY}.json"])


__all__ = ["PlannerProgram", "PriorProgram", "export_policy", "planner_draws", "read_metadata"]
