"""
Tensor math of BOOM: discrete regression in symlog space, the squashed Gaussian policy
density, the running value scale and the policy loss with its alignment variants.

Everything here is a pure function of tensors (torch only), so it can be checked against
hand computations.
"""

import math
from typing import NamedTuple

import torch as th
import torch.nn.functional as F

ALIGNMENTS = ("fkl", "rkl", "none")
ALIGN_WEIGHTINGS = ("softq", "uniform")


def symlog(x: th.Tensor) -> th.Tensor:
    """``sign(x) * log(1 + |x|)``."""
    return th.sign(x) * th.log1p(th.abs(x))


def symexp(x: th.Tensor) -> th.Tensor:
    """Inverse of :func:`symlog`."""
    return th.sign(x) * th.expm1(th.abs(x))


def bin_centres(num_bins: int, vmin: float, vmax: float, device: th.device | str = "cpu") -> th.Tensor:
    """Evenly spaced bin centres of the discrete regression, in symlog space."""
    return th.linspace(vmin, vmax, num_bins, device=device)


def two_hot(y: th.Tensor, num_bins: int, vmin: float, vmax: float) -> th.Tensor:
    """
    Encode scalars as "two-hot" vectors over ``num_bins`` bins on ``[vmin, vmax]`` in symlog space.

    :param y: scalars of any shape ``[...]``
    :return: weights of shape ``[..., num_bins]`` that sum to one, non-zero on the two bins
        around ``symlog(y)`` (linear interpolation)
    """
    bin_size = (vmax - vmin) / (num_bins - 1)
    position = (symlog(y).clamp(vmin, vmax) - vmin) / bin_size
    # NaN targets keep NaN weights (so the loss reports them) but index a valid bin.
    lower = th.nan_to_num(position.floor(), nan=0.0).clamp(0, num_bins - 2)
    upper_weight = (position - lower).unsqueeze(-1)
    lower_index = lower.long().unsqueeze(-1)
    encoded = th.zeros(*y.shape, num_bins, device=y.device, dtype=y.dtype)
    encoded.scatter_(-1, lower_index, 1.0 - upper_weight)
    encoded.scatter_(-1, lower_index + 1, upper_weight)
    return encoded


def two_hot_inv(logits: th.Tensor, bins: th.Tensor) -> th.Tensor:
    """
    Decode logits over the bins to scalars: ``symexp(sum softmax(logits) * bins)``.

    :param logits: ``[..., num_bins]``
    :param bins: the bin centres, ``[num_bins]``
    :return: ``[...]``
    """
    return symexp(F.softmax(logits, dim=-1) @ bins)


def soft_cross_entropy(logits: th.Tensor, y: th.Tensor, vmin: float, vmax: float) -> th.Tensor:
    """
    Cross-entropy between predicted logits and the two-hot encoding of the scalar targets.

    :param logits: ``[..., num_bins]``
    :param y: ``[...]`` (broadcastable to ``logits.shape[:-1]``)
    :return: ``[...]``, one loss per prediction
    """
    target = two_hot(y, logits.shape[-1], vmin, vmax)
    return -(target * F.log_softmax(logits, dim=-1)).sum(-1)


def gaussian_logprob(eps: th.Tensor, log_std: th.Tensor) -> th.Tensor:
    """
    Diagonal Gaussian log-density as the BOOM code (and TD-MPC2 before Dec 2024) computes it:
    ``(sum_i(-eps_i^2 / 2 - log sigma_i) - 0.5 log(2 pi)) * A``.

    This is ``A`` times the textbook density (plus a constant). The published ``entropy_coef``
    and ``lambda_align`` were tuned with this scaling, so we keep it on purpose.

    :param eps: standardised residuals ``(x - mean) / std``, ``[..., A]``
    :param log_std: ``[..., A]``
    :return: ``[...]``
    """
    action_dim = eps.shape[-1]
    residual = (-0.5 * eps.pow(2) - log_std).sum(-1)
    return (residual - 0.5 * math.log(2 * math.pi)) * action_dim


def squash_log_prob_correction(squashed_action: th.Tensor) -> th.Tensor:
    """``sum log(relu(1 - a^2) + 1e-6)``: the tanh change-of-variables term (subtract it)."""
    return th.log(F.relu(1.0 - squashed_action.pow(2)) + 1e-6).sum(-1)


def scale_log_std(raw: th.Tensor, log_std_min: float, log_std_max: float) -> th.Tensor:
    """Map an unbounded network output to ``[log_std_min, log_std_max]`` with a tanh."""
    return log_std_min + 0.5 * (log_std_max - log_std_min) * (th.tanh(raw) + 1.0)


def percentile_range(x: th.Tensor, low: float = 0.05, high: float = 0.95) -> th.Tensor:
    """Spread between the ``high`` and ``low`` quantiles (linear interpolation) of a 1-D tensor."""
    quantiles = th.quantile(x.detach().flatten(), th.tensor([low, high], device=x.device, dtype=x.dtype))
    return quantiles[1] - quantiles[0]


def updated_scale(scale: th.Tensor, q_values: th.Tensor, tau: float) -> th.Tensor:
    """
    One step of the running value scale ``S``: an EMA (rate ``tau``) of the 5th-95th percentile
    range of ``q_values``, floored at 1.

    :param scale: current scale, a 1-element tensor
    :param q_values: Q estimates over the batch
    :return: the new scale (same shape as ``scale``)
    """
    spread = percentile_range(q_values).clamp(min=1.0)
    return th.lerp(scale, spread.reshape(scale.shape), tau)


def alignment_weights(q_scaled: th.Tensor, temperature: float, weighting: str) -> th.Tensor:
    """
    Weights of the alignment term over the batch, separately for each time step.

    :param q_scaled: scaled Q values, ``[H, B]``
    :param temperature: softmax temperature (``tau_align``)
    :param weighting: ``"softq"`` (softmax of ``Q / temperature`` over the batch) or ``"uniform"``
    :return: ``[H, B]``, each row sums to one, no gradient
    """
    if weighting == "softq":
        return th.softmax(q_scaled.detach() / temperature, dim=-1)
    if weighting == "uniform":
        return th.full_like(q_scaled, 1.0 / q_scaled.shape[-1])
    raise ValueError(f"Unknown alignment weighting {weighting!r}, expected one of {ALIGN_WEIGHTINGS}")


def forward_kl_log_likelihood(
    policy_action: th.Tensor, policy_log_std: th.Tensor, planner_action: th.Tensor, min_std: float
) -> th.Tensor:
    """
    The likelihood-free forward-KL term ``log N(mu_beta; a_pi, sigma_pi)`` as the BOOM code
    evaluates it: the planner action's density around the policy's (squashed) sampled action,
    with the policy's own std detached and floored at ``min_std``; no tanh Jacobian.

    :param policy_action: reparameterised, tanh-squashed policy sample ``a_pi``, ``[..., A]``
    :param policy_log_std: the policy's log-std, ``[..., A]``
    :param planner_action: the stored planner action ``mu_beta``, ``[..., A]``
    :return: ``[...]``
    """
    std = policy_log_std.detach().exp().clamp(min=min_std)
    return gaussian_logprob((policy_action - planner_action) / std, std.log())


def reverse_kl_estimate(
    policy_action: th.Tensor, policy_log_prob: th.Tensor, planner_action: th.Tensor, planner_std: th.Tensor
) -> th.Tensor:
    """
    Single-sample estimate of ``KL(pi || beta)`` with ``beta`` approximated by a Gaussian around
    the planner action with the planner's std (the paper's reverse-KL ablation):
    ``log pi(a_pi) - log beta(a_pi)``.

    :return: ``[...]``
    """
    log_beta = gaussian_logprob((policy_action - planner_action) / planner_std, planner_std.log())
    return policy_log_prob - log_beta


class PolicyLoss(NamedTuple):
    total: th.Tensor
    value_term: th.Tensor
    align_term: th.Tensor


def boom_policy_loss(
    q_scaled: th.Tensor,
    policy_log_prob: th.Tensor,
    policy_action: th.Tensor,
    policy_log_std: th.Tensor,
    planner_action: th.Tensor,
    planner_std: th.Tensor,
    scale: th.Tensor,
    rho: float,
    entropy_coef: float,
    lambda_align: float,
    min_std: float,
    alignment: str = "fkl",
    weighting: str = "softq",
    align_temperature: float = 1.0,
) -> PolicyLoss:
    """
    BOOM's policy objective ``L_q + lambda_align * L_align`` over a latent rollout.

    ``L_q = mean_t rho^t mean_b (entropy_coef * log pi - Q_s)`` and, for the forward KL,
    ``L_align = -mean_t rho^t sum_b w_{t,b} l_{t,b} / S``, where ``l`` is
    :func:`forward_kl_log_likelihood` and ``w`` :func:`alignment_weights`. The alignment term is
    zero while the running scale ``S <= 2`` (the BOOM code's warm-up gate).

    :param q_scaled: ``Q / S`` at the policy's sampled action, ``[H, B]``
    :param policy_log_prob: ``log pi(a_pi | z)``, ``[H, B]``
    :param policy_action: squashed policy sample ``a_pi``, ``[H, B, A]``
    :param policy_log_std: ``[H, B, A]``
    :param planner_action: stored planner actions ``mu_beta``, ``[H, B, A]``
    :param planner_std: stored planner stds (reverse KL only), ``[H, B, A]``
    :param scale: the running scale ``S`` (already updated), 1-element tensor
    :param alignment: ``"fkl"``, ``"rkl"`` or ``"none"``
    :param weighting: ``"softq"`` or ``"uniform"``
    """
    horizon = q_scaled.shape[0]
    rho_weights = rho ** th.arange(horizon, device=q_scaled.device, dtype=q_scaled.dtype)
    value_term = ((entropy_coef * policy_log_prob - q_scaled).mean(dim=1) * rho_weights).mean()

    if alignment == "none":
        align_term = th.zeros_like(value_term)
        return PolicyLoss(value_term, value_term, align_term)

    # Gate without a host sync: a 0/1 factor instead of a Python branch on S.
    gate = (scale > 2.0).to(q_scaled.dtype) / scale
    weights = alignment_weights(q_scaled, align_temperature, weighting)
    if alignment == "fkl":
        divergence = -forward_kl_log_likelihood(policy_action, policy_log_std, planner_action, min_std)
    elif alignment == "rkl":
        divergence = reverse_kl_estimate(policy_action, policy_log_prob, planner_action, planner_std)
    else:
        raise ValueError(f"Unknown alignment {alignment!r}, expected one of {ALIGNMENTS}")
    align_term = ((weights * divergence * gate).sum(dim=1) * rho_weights).mean()
    return PolicyLoss(value_term + lambda_align * align_term, value_term, align_term)
