"""
The programs that sb3_boom.export writes to a file: the policy prior (encoder + prior mean) and the whole
MPPI planner with its random draws as inputs, and those draws (:func:`planner_draws`).
"""

import copy
from typing import Any, NamedTuple

import torch as th
import torch.nn.functional as F
from gymnasium import spaces
from torch import nn

from sb3_boom import losses
from sb3_boom.kernels import mish
from sb3_boom.planner import PlannerConfig, estimate_value, rollout
from sb3_boom.policies import WorldModelPolicy

# Distribution of each draw the planner takes as input (the deployment loop draws them by this name).
DRAW_DISTRIBUTIONS = {
    "prior_noise": "normal",
    "sample_noise": "normal",
    "terminal_noise": "normal",
    "head_uniforms": "uniform",
    "dropout_gaps": "geometric",
    "choice_noise": "exponential",
    "action_noise": "normal",
}


def _observation_inputs(observation_space: spaces.Space) -> list[tuple[str, tuple[int, ...]]]:
    """The observation inputs of an exported program: one per Dict key (in the order the policy concatenates them)."""
    if isinstance(observation_space, spaces.Dict):
        return [(str(key), tuple(space.shape)) for key, space in observation_space.spaces.items()]
    return [("obs", tuple(observation_space.shape))]


def _detached_networks(policy: WorldModelPolicy, names: tuple[str, ...]) -> nn.ModuleDict:
    """
    CPU copies of the policy's networks in eval mode (tracing runs the plain modules, also where
    ``compile_networks`` compiled them: tests/test_export.py).
    """
    networks = nn.ModuleDict({name: copy.deepcopy(getattr(policy, name)) for name in names}).cpu().eval()
    return networks.requires_grad_(False)


class ExportedProgram(nn.Module):
    """
    Common part of the exported programs: the observation inputs (flattened and concatenated as
    ``WorldModelPolicy.flatten_observation`` does) and the rescaling of ``[-1, 1]`` actions to the
    action space's bounds (as ``BasePolicy.unscale_action``).
    """

    def __init__(self, policy: WorldModelPolicy, names: tuple[str, ...]):
        super().__init__()
        self.networks = _detached_networks(policy, names)
        self.observation_inputs = _observation_inputs(policy.observation_space)
        assert isinstance(policy.action_space, spaces.Box)
        self.action_shape = tuple(policy.action_space.shape)
        self.register_buffer("low", th.as_tensor(policy.action_space.low, dtype=th.float32).reshape(-1))
        self.register_buffer("high", th.as_tensor(policy.action_space.high, dtype=th.float32).reshape(-1))
        # A scripted check_input_shape, set while tracing to TorchScript (onnxruntime checks ONNX inputs itself).
        self.input_check: Any = None

    def checked(self, inputs: tuple[th.Tensor, ...], names: list[str], shapes: list[list[int]]) -> tuple[th.Tensor, ...]:
        """The inputs, each through the TorchScript shape check when one is set (see :func:`check_input_shape`)."""
        if self.input_check is None:
            return inputs
        return tuple(self.input_check(x, name, shape) for x, name, shape in zip(inputs, names, shapes, strict=True))

    def flat_observation(self, observations: tuple[th.Tensor, ...]) -> th.Tensor:
        parts = [obs.float().reshape(obs.shape[0], -1) for obs in observations]
        return parts[0] if len(parts) == 1 else th.cat(parts, dim=-1)

    def unscale(self, action: th.Tensor) -> th.Tensor:
        action = self.low + 0.5 * (action + 1.0) * (self.high - self.low)
        return action.reshape(action.shape[0], *self.action_shape)


class PriorProgram(ExportedProgram):
    """
    The policy prior's deterministic action: ``tanh`` of the prior's mean on the encoded observation,
    rescaled to the action bounds. What ``predict(obs, deterministic=True)`` returns with
    ``use_planner=False``.

    Inputs: the observations, ``[batch, *obs_shape]`` (one input per key of a Dict space).
    Output: ``action``, ``[batch, *action_shape]``.
    """

    def __init__(self, policy: WorldModelPolicy):
        super().__init__(policy, ("encoder", "actor"))

    def forward(self, *observations: th.Tensor) -> th.Tensor:
        names = [name for name, _ in self.observation_inputs]
        observations = self.checked(observations, names, [[-1, *shape] for _, shape in self.observation_inputs])
        z = self.networks["encoder"](self.flat_observation(observations))
        mean, _ = self.networks["actor"](z).chunk(2, dim=-1)
        return self.unscale(th.tanh(mean))


class _DrawnModel:
    """
    The planner's view of the world model (``sb3_boom.planner.LatentModel``) with the random draws of
    the value estimate's terminal term (the prior's noise, the two Q heads, the dropout gaps) given
    instead of drawn: set before each call of :func:`sb3_boom.planner.estimate_value`.
    """

    def __init__(self, program: "PlannerProgram"):
        self.program = program
        self.action_dim = program.action_dim
        self.terminal_noise: th.Tensor | None = None
        self.head_uniforms: th.Tensor | None = None
        self.dropout_gaps: th.Tensor | None = None

    def next_latent(self, z: th.Tensor, action: th.Tensor) -> th.Tensor:
        return self.program.networks["dynamics"](z, action)

    def predict_reward(self, z: th.Tensor, action: th.Tensor) -> th.Tensor:
        return losses.two_hot_inv(self.program.networks["reward_head"](z, action), self.program.bins)

    def sample_action(self, z: th.Tensor) -> th.Tensor:
        assert self.terminal_noise is not None
        return self.program.prior_sample(z, self.terminal_noise)

    def q_value(self, z: th.Tensor, action: th.Tensor, reduce: str = "min", target: bool = False) -> th.Tensor:
        assert reduce == "avg" and not target and self.head_uniforms is not None
        return self.program.q_value(z, action, self.head_uniforms, self.dropout_gaps)


class PlannerProgram(ExportedProgram):
    """
    ``WorldModelPolicy.plan`` (MPPI with the prior's proposals, warm start included) and the action
    rescaling of ``predict``, for a fixed number of environments, with every random draw an input.

    Inputs, in order (``n`` environments, ``H`` horizon, ``S`` samples, ``P`` prior sequences, ``E``
    elites, ``A`` action size, ``I`` iterations):

    - the observations, ``[n, *obs_shape]`` (one input per key of a Dict space)
    - ``warm_start``: the ``next_warm_start`` returned by the previous call, ``[n, H, A]`` (zeros at first)
    - ``episode_start``: ``[n]`` booleans, True where the warm start must be discarded
    - ``prior_noise`` ``[H, n, P, A]`` (standard normal; absent when ``P = 0``), ``sample_noise``
      ``[I, H, n, S - P, A]`` (standard normal), ``terminal_noise`` ``[I, n, S, A]`` (standard normal),
      ``head_uniforms`` ``[I, num_q]`` (uniform on [0, 1): the two largest pick the Q heads),
      ``dropout_gaps`` ``[I, G]`` (Geometric(p) on 1, 2, ...: the gaps between dropped units of the Q
      heads' first layer; absent when dropout is off at plan time), ``choice_noise`` ``[n, E]``
      (Exp(1): the elite executed is ``argmax(score / choice_noise)``, a draw from the scores), and,
      unless exported deterministic, ``action_noise`` ``[n, A]`` (standard normal)

    Outputs: ``action`` ``[n, *action_shape]`` in the action bounds and ``next_warm_start`` ``[n, H, A]``
    (the MPPI mean over the horizon: ``predict``'s returned ``state``).

    :param policy: the policy to export
    :param n_envs: number of environments planned for at once
    :param deterministic: execute the elite's first action (``predict(deterministic=True)``) instead of
        adding the planner's std times ``action_noise``
    """

    def __init__(self, policy: WorldModelPolicy, n_envs: int = 1, deterministic: bool = True):
        super().__init__(policy, ("encoder", "dynamics", "reward_head", "actor", "q_ensemble"))
        self.config = policy.planner
        self.gamma = float(policy.gamma)
        self.n_envs = int(n_envs)
        self.deterministic = deterministic
        self.action_dim, self.latent_dim, self.num_q = policy.action_dim, policy.latent_dim, policy.num_q
        self.log_std_min, self.log_std_max = policy.log_std_min, policy.log_std_max
        self.register_buffer("bins", policy.bins.detach().clone().cpu())
        self.dropout_p = plan_dropout_rate(policy)
        self.policy_shapes = _PolicyShapes.of(policy)
        self.model = _DrawnModel(self)

    def draw_shapes(self) -> dict[str, tuple[int, ...]]:
        """The random inputs and their shapes, in input order."""
        return planner_draw_shapes(self.policy_shapes, self.n_envs, self.deterministic)

    def input_names(self) -> list[str]:
        return [name for name, _ in self.observation_inputs] + ["warm_start", "episode_start", *self.draw_shapes()]

    def input_shapes(self) -> list[list[int]]:
        cfg, n = self.config, self.n_envs
        observations = [[n, *shape] for _, shape in self.observation_inputs]
        return [*observations, [n, cfg.horizon, self.action_dim], [n], *[list(shape) for shape in self.draw_shapes().values()]]

    def prior_sample(self, z: th.Tensor, noise: th.Tensor) -> th.Tensor:
        """``WorldModelPolicy.pi(z).action`` with ``noise`` as its standard normal draw."""
        mean, raw_log_std = self.networks["actor"](z).chunk(2, dim=-1)
        log_std = losses.scale_log_std(raw_log_std, self.log_std_min, self.log_std_max)
        return th.tanh(mean + noise * log_std.exp())

    def q_value(self, z: th.Tensor, action: th.Tensor, head_uniforms: th.Tensor, gaps: th.Tensor | None) -> th.Tensor:
        """
        ``WorldModelPolicy.q_value(z, action, reduce="avg")``: the mean decoded value of the two heads
        with the largest ``head_uniforms``, with the first layer's dropout at the units ``gaps`` place
        (as ``sb3_boom.kernels.dropout`` does on CPU).
        """
        q = self.networks["q_ensemble"]
        heads = head_uniforms.topk(2).indices
        x = th.cat([z, action], dim=-1)

        def select(param: th.Tensor) -> th.Tensor:
            return param.index_select(0, heads)

        h = th.baddbmm(select(q.biases[0]), x.reshape(1, -1, x.shape[-1]).expand(2, -1, -1), select(q.weights[0]))
        for layer in range(2):
            if layer > 0:
                h = th.baddbmm(select(q.biases[layer]), h, select(q.weights[layer]))
            if layer == 0 and gaps is not None:
                numel = h.numel()
                positions = gaps.cumsum(0).sub(1).clamp(max=numel)
                # The scale derived from an input: ONNX would fold a constant-filled mask into the file, once per
                # iteration (12 MB at 5M). A spare slot at numel takes the positions past the end, as in dropout().
                scale = gaps[:1].to(h.dtype) * 0.0 + 1.0 / (1.0 - self.dropout_p)
                mask = scale.expand(numel + 1).index_fill(0, positions, 0.0)
                h = h * mask[:numel].view(h.shape)
            h = F.layer_norm(h, h.shape[-1:])
            h = mish(h * select(q.norm_weights[layer]) + select(q.norm_biases[layer]))
        logits = th.baddbmm(select(q.biases[2]), h, select(q.weights[2]))
        logits = logits.reshape(2, *x.shape[:-1], logits.shape[-1])
        return losses.two_hot_inv(logits, self.bins).mean(dim=0)

    def forward(self, *inputs: th.Tensor) -> tuple[th.Tensor, th.Tensor]:
        cfg, n, a = self.config, self.n_envs, self.action_dim
        horizon, num_pi, num_samples, num_elites = cfg.horizon, cfg.num_pi_trajs, cfg.num_samples, cfg.num_elites
        if len(inputs) != len(self.input_names()):
            raise ValueError(f"The planner takes {len(self.input_names())} inputs ({self.input_names()}), got {len(inputs)}")
        inputs = self.checked(inputs, self.input_names(), self.input_shapes())
        named = dict(zip(self.input_names(), inputs, strict=True))
        z = self.networks["encoder"](self.flat_observation(tuple(inputs[: len(self.observation_inputs)])))
        z_start = z.unsqueeze(1)

        # The prior's proposals and their rollout, as in plan().
        pi_actions, pi_rollout = None, None
        if num_pi > 0:
            steps, z_pi = [], z_start
            for t in range(horizon):
                steps.append(self.prior_sample(z_pi.expand(n, num_pi, self.latent_dim), named["prior_noise"][t]))
                if t < horizon - 1:
                    z_pi = self.networks["dynamics"](z_pi, steps[t])
            pi_actions = th.stack(steps)
            pi_rollout = rollout(self.model, z_start, pi_actions, self.gamma)

        # warm_start_mean(): the previous mean shifted by one step, zero where an episode starts.
        previous = named["warm_start"]
        shifted = th.cat([previous[:, 1:], th.zeros_like(previous[:, :1])], dim=1)
        mean = (shifted * (~named["episode_start"].bool()).to(shifted.dtype).view(-1, 1, 1)).transpose(0, 1)
        std = th.full((horizon, n, a), cfg.max_std)
        elite_actions, score = mean.unsqueeze(2), th.ones(n, 1)
        for i in range(cfg.iterations):
            sampled = (mean.unsqueeze(2) + std.unsqueeze(2) * named["sample_noise"][i]).clamp(-1.0, 1.0)
            actions = sampled if pi_actions is None else th.cat([pi_actions, sampled], dim=2)
            self.model.terminal_noise = named["terminal_noise"][i]
            self.model.head_uniforms = named["head_uniforms"][i]
            self.model.dropout_gaps = named["dropout_gaps"][i] if "dropout_gaps" in named else None
            value = estimate_value(self.model, z_start, sampled, self.gamma, pi_rollout)
            value = value.expand(n, num_samples).nan_to_num(0.0)
            elite_value, elite_index = th.topk(value, num_elites, dim=1)
            elite_actions = actions.gather(2, elite_index.view(1, n, num_elites, 1).expand(horizon, n, num_elites, a))
            score = th.softmax(cfg.temperature * elite_value, dim=1)
            mean = th.einsum("ne,hnea->hna", score, elite_actions)
            variance = th.einsum("ne,hnea->hna", score, (elite_actions - mean.unsqueeze(2)).pow(2))
            std = variance.sqrt().clamp(cfg.min_std, cfg.max_std)

        # th.multinomial(score, 1) is argmax(score / q) with q ~ Exp(1) (torch's sampler for one draw).
        chosen = (score / named["choice_noise"]).argmax(dim=1)
        action = elite_actions[0].gather(1, chosen.view(n, 1, 1).expand(n, 1, a)).squeeze(1)
        if not self.deterministic:
            action = (action + std[0] * named["action_noise"]).clamp(-1.0, 1.0)
        return self.unscale(action), mean.transpose(0, 1).contiguous()


def check_input_shape(x: th.Tensor, name: str, shape: list[int]) -> th.Tensor:
    """
    ``x``, or a ValueError naming the input and the shape expected (-1: any size). Scripted into the
    TorchScript programs, where a Python check would be traced away.
    """
    matches = x.dim() == len(shape)
    if matches:
        for index in range(len(shape)):
            if shape[index] >= 0 and x.shape[index] != shape[index]:
                matches = False
    if not matches:
        expected = str(shape) + " (-1: any size)"
        raise ValueError("input '" + name + "' has shape " + str(x.shape) + ", the exported program expects " + expected)
    return x


class _PolicyShapes(NamedTuple):
    """What the planner's random inputs' shapes depend on."""

    config: PlannerConfig
    action_dim: int
    num_q: int
    mlp_dim: int
    dropout_p: float

    @classmethod
    def of(cls, policy: WorldModelPolicy) -> "_PolicyShapes":
        return cls(policy.planner, policy.action_dim, policy.num_q, policy.mlp_dim, plan_dropout_rate(policy))


def plan_dropout_rate(policy: WorldModelPolicy) -> float:
    """The Q heads' dropout rate while ``predict`` plans (in eval mode: on only where q_dropout is "always")."""
    q_ensemble = policy.q_ensemble
    return float(q_ensemble.dropout) if q_ensemble.dropout_always and q_ensemble.dropout > 0 else 0.0


def planner_draw_shapes(shapes: _PolicyShapes, n_envs: int, deterministic: bool) -> dict[str, tuple[int, ...]]:
    """The exported planner's random inputs and their shapes, in input order (see :class:`PlannerProgram`)."""
    cfg, n, a = shapes.config, n_envs, shapes.action_dim
    draws: dict[str, tuple[int, ...]] = {}
    if cfg.num_pi_trajs > 0:
        draws["prior_noise"] = (cfg.horizon, n, cfg.num_pi_trajs, a)
    draws["sample_noise"] = (cfg.iterations, cfg.horizon, n, cfg.num_samples - cfg.num_pi_trajs, a)
    draws["terminal_noise"] = (cfg.iterations, n, cfg.num_samples, a)
    draws["head_uniforms"] = (cfg.iterations, shapes.num_q)
    if shapes.dropout_p > 0:
        # The first Q layer's output in the value estimate: [2 heads, n * S, hidden].
        numel = 2 * n * cfg.num_samples * shapes.mlp_dim
        draws["dropout_gaps"] = (cfg.iterations, dropout_num_gaps(numel, shapes.dropout_p))
    draws["choice_noise"] = (n, cfg.num_elites)
    if not deterministic:
        draws["action_noise"] = (n, a)
    return draws


def dropout_num_gaps(numel: int, p: float) -> int:
    """Geometric gaps drawn by ``sb3_boom.kernels.dropout`` for ``numel`` elements at rate ``p`` (same formula)."""
    expected = numel * p
    return int(expected + 8.0 * expected**0.5 + 16)


def planner_draws(
    policy: WorldModelPolicy, n_envs: int = 1, deterministic: bool = True, generator: th.Generator | None = None
) -> dict[str, th.Tensor]:
    """
    The random inputs of the exported planner, drawn from ``generator`` (default: torch's global one)
    in the order and shapes ``WorldModelPolicy.plan`` draws them on CPU: from the same seed,
    ``policy.predict(obs, deterministic=...)`` and the exported planner fed these draws plan the same.

    :param policy: the exported policy
    :param n_envs: number of environments the planner was exported for
    :param deterministic: as exported (without ``action_noise`` when True)
    :param generator: torch random generator
    :return: the draws, by input name, in input order
    """
    shapes = planner_draw_shapes(_PolicyShapes.of(policy), n_envs, deterministic)
    dropout_p, cfg = plan_dropout_rate(policy), policy.planner
    draws: dict[str, list[th.Tensor]] = {name: [] for name in shapes}

    def normal(*shape: int) -> th.Tensor:
        return th.randn(*shape, generator=generator)

    # plan(): the prior's H proposals, then per iteration the samples' noise, the terminal prior
    # sample's noise, the two Q heads' uniforms and the dropout's gaps; then the elite's choice and the
    # action noise.
    if "prior_noise" in shapes:
        draws["prior_noise"] = [normal(*shapes["prior_noise"][1:]) for _ in range(cfg.horizon)]
    for _ in range(cfg.iterations):
        draws["sample_noise"].append(normal(*shapes["sample_noise"][1:]))
        draws["terminal_noise"].append(normal(*shapes["terminal_noise"][1:]))
        draws["head_uniforms"].append(th.rand(policy.num_q, generator=generator))
        if "dropout_gaps" in shapes:
            gaps = th.empty(shapes["dropout_gaps"][1], dtype=th.int64)
            draws["dropout_gaps"].append(gaps.geometric_(dropout_p, generator=generator))
    result = {name: th.stack(values) for name, values in draws.items() if name not in ("choice_noise", "action_noise")}
    result["choice_noise"] = th.empty(shapes["choice_noise"]).exponential_(1.0, generator=generator)
    if not deterministic:
        result["action_noise"] = normal(*shapes["action_noise"])
    return {name: result[name] for name in shapes}
