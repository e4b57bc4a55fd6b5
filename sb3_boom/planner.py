"""
MPPI planning in the latent space of a learned world model, batched over environments.

The planner is a function of the world model, the encoded states and the warm-start mean; the
caller keeps the warm-start state (one mean per environment) between calls. It imports torch only.
"""

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple, Protocol

import torch as th

# The planner std recorded for uniformly random warm-up actions, as the BOOM code does.
RANDOM_ACTION_STD = math.exp(2.0)


class LatentModel(Protocol):
    """
    What the planner needs from a world model (all tensors on one device). ``next_latent`` and
    ``predict_reward`` receive, at the first step, one latent per environment (``[n, 1, L]``) with
    many actions (``[n, samples, A]``), and must broadcast it.
    """

    action_dim: int

    def next_latent(self, z: th.Tensor, action: th.Tensor) -> th.Tensor: ...

    def predict_reward(self, z: th.Tensor, action: th.Tensor) -> th.Tensor: ...

    def sample_action(self, z: th.Tensor) -> th.Tensor: ...

    def q_value(self, z: th.Tensor, action: th.Tensor, reduce: str = "min", target: bool = False) -> th.Tensor: ...


@dataclass(frozen=True)
class PlannerConfig:
    """
    Settings of the MPPI planner (defaults from the BOOM / TD-MPC2 configuration).

    :param horizon: planning horizon ``H``
    :param iterations: MPPI iterations per call
    :param num_samples: action sequences evaluated per iteration (policy sequences included)
    :param num_elites: sequences kept to refit the sampling distribution
    :param num_pi_trajs: sequences proposed by the policy prior
    :param min_std: lower bound of the sampling std
    :param max_std: initial (and upper bound of the) sampling std
    :param temperature: MPPI temperature applied to the elite values
    """

    horizon: int = 3
    iterations: int = 6
    num_samples: int = 512
    num_elites: int = 64
    num_pi_trajs: int = 24
    min_std: float = 0.05
    max_std: float = 2.0
    temperature: float = 0.5

    def __post_init__(self) -> None:
        if self.horizon < 1 or self.iterations < 1:
            raise ValueError(f"horizon and iterations must be >= 1, got {self.horizon} and {self.iterations}")
        if not 0 <= self.num_pi_trajs < self.num_samples:
            raise ValueError(f"num_pi_trajs must be in [0, num_samples), got {self.num_pi_trajs} of {self.num_samples}")
        if not 1 <= self.num_elites <= self.num_samples:
            raise ValueError(f"num_elites must be in [1, num_samples], got {self.num_elites} of {self.num_samples}")
        if not 0 < self.min_std <= self.max_std:
            raise ValueError(f"need 0 < min_std <= max_std, got {self.min_std} and {self.max_std}")


class PlanResult(NamedTuple):
    """
    :param action: the action to execute, ``[n, A]`` in [-1, 1] (with exploration noise unless
        deterministic)
    :param planner_action: ``mu_beta``, the first action of the chosen elite sequence, ``[n, A]``
    :param std: the planner's std of the first step, ``[n, A]``
    :param mean: the final mean over the horizon, ``[n, H, A]`` (next call's warm start)
    :param value: score-weighted value of the elites, ``[n]`` (a diagnostic)
    """

    action: th.Tensor
    planner_action: th.Tensor
    std: th.Tensor
    mean: th.Tensor
    value: th.Tensor


def warm_start_mean(
    previous_mean: th.Tensor | None,
    episode_start: th.Tensor | None,
    n_envs: int,
    horizon: int,
    action_dim: int,
    device: th.device,
) -> th.Tensor:
    """
    Initial MPPI mean: the previous call's mean shifted by one step (last step zero), or zeros
    where an episode starts or no previous mean exists.

    :param previous_mean: ``[n, H, A]`` or None
    :param episode_start: ``[n]`` booleans or None (no episode starts)
    """
    mean = th.zeros(n_envs, horizon, action_dim, device=device)
    if previous_mean is None:
        return mean
    mean[:, :-1] = previous_mean[:, 1:]
    if episode_start is not None:
        mean = mean * (~episode_start).to(mean.dtype).view(-1, 1, 1)
    return mean


def rollout(model: LatentModel, z: th.Tensor, actions: th.Tensor, gamma: float) -> tuple[th.Tensor, th.Tensor]:
    """
    The discounted reward sum ``sum_t gamma^t R(z_t, a_t)`` of an H-step latent rollout and its last
    latent ``z_H``.

    :param z: ``[..., L]`` start latents, or ``[n, 1, L]``: one per environment, shared by its samples
    :param actions: ``[H, ..., A]`` (time first)
    :return: ``[...]`` and ``[..., L]`` (the batch dimensions of ``actions``)
    """
    reward_sum = th.zeros(z.shape[:-1], device=z.device)
    discount = 1.0
    for t in range(actions.shape[0]):
        reward_sum = reward_sum + discount * model.predict_reward(z, actions[t])
        z = model.next_latent(z, actions[t])
        discount *= gamma
    return reward_sum, z


def estimate_value(
    model: LatentModel,
    z: th.Tensor,
    actions: th.Tensor,
    gamma: float,
    rolled_out: tuple[th.Tensor, th.Tensor] | None = None,
) -> th.Tensor:
    """
    ``G = sum_t gamma^t R(z_t, a_t) + gamma^H Q(z_H, pi(z_H))`` (Q: mean of two random heads).

    :param z: ``[..., L]`` start latents, or ``[n, 1, L]``: one per environment, shared by its samples
    :param actions: ``[H, ..., A]`` (time first)
    :param rolled_out: the :func:`rollout` (reward sums ``[n, P]``, last latents ``[n, P, L]``) of P
        further sequences, rolled out before: their values come first in the output. Only the
        terminal term, which draws the prior's action and the Q heads' dropout afresh, is computed
        for them.
    :return: ``[...]`` (the batch dimensions of ``actions``), with the P values first along the last one
    """
    reward_sum, z = rollout(model, z, actions, gamma)
    if rolled_out is not None:
        # expand(): a model may leave a shared latent unbroadcast where it does not change it.
        pi_sum, pi_z = rolled_out
        z = th.cat([pi_z.expand(*pi_sum.shape, -1), z.expand(*reward_sum.shape, -1)], dim=-2)
        reward_sum = th.cat([pi_sum, reward_sum], dim=-1)
    discount = math.prod([gamma] * actions.shape[0])  # the product rollout() formed, in its order
    return reward_sum + discount * model.q_value(z, model.sample_action(z), reduce="avg")


@th.no_grad()
def plan(
    model: LatentModel,
    z: th.Tensor,
    config: PlannerConfig,
    gamma: float,
    previous_mean: th.Tensor | None = None,
    episode_start: th.Tensor | None = None,
    deterministic: bool = False,
    value_fn: Callable[..., th.Tensor] = estimate_value,
) -> PlanResult:
    """
    MPPI over action sequences for every environment at once.

    :param model: the world model (see :class:`LatentModel`)
    :param z: encoded states, ``[n, L]``
    :param config: planner settings
    :param gamma: discount of the value estimate
    :param previous_mean: warm-start state from the previous call, ``[n, H, A]``
    :param episode_start: ``[n]`` booleans, True where the warm start must be discarded
    :param deterministic: execute ``mu_beta`` instead of ``mu_beta + std * noise``
    :param value_fn: :func:`estimate_value` or a compiled version of it (same arguments)
    """
    n_envs, latent_dim = z.shape
    horizon, device = config.horizon, z.device
    num_pi, num_samples, num_elites = config.num_pi_trajs, config.num_samples, config.num_elites
    action_dim = model.action_dim

    # Time-major layout [H, n, samples, A]: actions[t] is contiguous for the rollout.
    # One start latent per environment, [n, 1, L]: the model's first step broadcasts it over the samples
    # (a shared latent's part of the first layers is computed once, not once per sample).
    z_start = z.unsqueeze(1)
    pi_actions = th.empty(horizon, n_envs, num_pi, action_dim, device=device)
    pi_rollout = None
    if num_pi > 0:
        z_pi = z_start
        for t in range(horizon):
            pi_actions[t] = model.sample_action(z_pi.expand(n_envs, num_pi, latent_dim))
            if t < horizon - 1:
                z_pi = model.next_latent(z_pi, pi_actions[t])
        # The prior's sequences are the same in every iteration, and so are their rewards and latents
        # (no dropout there): rolled out once, not once per iteration.
        pi_rollout = rollout(model, z_start, pi_actions, gamma)

    mean = warm_start_mean(previous_mean, episode_start, n_envs, horizon, action_dim, device).transpose(0, 1)
    std = th.full((horizon, n_envs, action_dim), config.max_std, device=device)
    env_index = th.arange(n_envs, device=device).unsqueeze(1)

    for _ in range(config.iterations):
        noise = th.randn(horizon, n_envs, num_samples - num_pi, action_dim, device=device)
        sampled = (mean.unsqueeze(2) + std.unsqueeze(2) * noise).clamp_(-1.0, 1.0)
        actions = th.cat([pi_actions, sampled], dim=2)
        value = value_fn(model, z_start, sampled, gamma, pi_rollout).expand(n_envs, num_samples).nan_to_num(0.0)
        elite_value, elite_index = th.topk(value, num_elites, dim=1)
        elite_actions = actions[:, env_index, elite_index]  # [H, n, elites, A]
        score = th.softmax(config.temperature * elite_value, dim=1)  # = exp(T (V - max V)) normalised
        mean = th.einsum("ne,hnea->hna", score, elite_actions)
        variance = th.einsum("ne,hnea->hna", score, (elite_actions - mean.unsqueeze(2)).pow(2))
        std = variance.sqrt().clamp_(config.min_std, config.max_std)

    chosen = th.multinomial(score, 1).squeeze(1)
    planner_action = elite_actions[0, th.arange(n_envs, device=device), chosen]
    first_std = std[0]
    if deterministic:
        action = planner_action
    else:
        action = (planner_action + first_std * th.randn_like(first_std)).clamp(-1.0, 1.0)
    return PlanResult(action, planner_action, first_std, mean.transpose(0, 1).contiguous(), (score * elite_value).sum(1))
