"""
CPU kernels of the networks' elementwise work: Mish, SimNorm's short-row softmax and the Q heads' sparse
dropout.

On a CPU, torch's own ``F.mish``, ``F.softmax`` over rows of 8 and ``F.dropout`` (one Bernoulli draw per
element) each cost more than the matmuls around them at BOOM's sizes; these compute the same functions
in fewer or cheaper passes (timings in each docstring and docs/speed.md). On other devices, and where
the closed forms would not pay, they are torch's functions.
"""

from typing import Any

import torch as th
import torch.nn.functional as F

# Below this size F.mish's single kernel call beats the few passes of the closed form (measured on CPU).
_CLOSED_FORM_MISH_MIN_NUMEL = 8192


def _tanh_softplus(s: th.Tensor) -> th.Tensor:
    """
    ``tanh(softplus(x))`` from ``s = sigmoid(x)``: ``q / (2 - q)`` with ``q = s (2 - s)``. (With
    ``e = e^x``, ``tanh(softplus(x)) = ((1 + e)^2 - 1) / ((1 + e)^2 + 1)`` and ``1 + e = 1 / (1 - s)``.)
    Accurate at both ends: ``s`` itself for very negative ``x``, 1 for large ``x``.
    """
    q = th.rsub(s, 2.0).mul_(s)
    return q.div_(th.rsub(q, 2.0))


class _SigmoidMish(th.autograd.Function):
    """Mish through :func:`_tanh_softplus`, with its closed-form derivative ``t + x sigmoid(x) (1 - t^2)``."""

    @staticmethod
    def forward(ctx: Any, x: th.Tensor) -> th.Tensor:
        s = th.sigmoid(x)
        t = _tanh_softplus(s)
        ctx.save_for_backward(x, s, t)
        return x * t

    @staticmethod
    def backward(ctx: Any, grad_output: th.Tensor) -> th.Tensor:
        x, s, t = ctx.saved_tensors
        return grad_output * (t + x * s * (1.0 - t * t))


def mish(x: th.Tensor) -> th.Tensor:
    """
    Mish, ``x * tanh(softplus(x))``. On CPU, ``F.mish`` (three transcendental functions per element)
    is slower than a 128x128 matmul over the same batch; for tensors of 8192+ elements this computes
    it from one ``sigmoid`` and a few vectorised passes (:func:`_tanh_softplus`) and, under autograd,
    with the closed-form derivative, which reuses the forward's sigmoid: 3.6x faster forward and 1.8x
    forward + backward than ``F.mish`` on a ``[1536, 512]`` tensor (1 thread, AMD EPYC); values
    and gradients equal to ``F.mish``'s within float tolerance (tests/test_speed_paths.py). The
    sigmoid, not ``exp``: torch's CPU ``exp`` goes through MKL's vector math, which ran at 0.81 ns
    per element on an AMD EPYC against 0.40 ns for ``sigmoid``. Elsewhere (GPU kernels fuse ``F.mish``; float16; small tensors,
    where the extra operator calls cost more) it is ``F.mish``.
    """
    if x.numel() < _CLOSED_FORM_MISH_MIN_NUMEL or x.device.type != "cpu" or x.dtype == th.float16:
        return F.mish(x)
    if x.requires_grad and th.is_grad_enabled():
        return _SigmoidMish.apply(x)
    return x * _tanh_softplus(th.sigmoid(x))


# Above this rate the gaps are no longer sparse (the draws approach one per element), so ``F.dropout`` is used.
SPARSE_DROPOUT_MAX_P = 0.1


def dropout(x: th.Tensor, p: float, training: bool) -> th.Tensor:
    """
    Inverted dropout, as ``F.dropout``. On CPU with a small rate (BOOM's Q heads use 0.01) it draws
    the dropped positions instead of one Bernoulli per element: the gaps between successive
    successes of a Bernoulli(p) process are i.i.d. Geometric(p), so cumulated geometric gaps give
    exactly the same mask distribution with ``p`` times fewer random numbers. torch's CPU
    ``bernoulli_`` costs 10-20 ns per element, which made dropout alone about 11 ms of a 1M-model
    update; this is 0.2 ms. Enough gaps are drawn to pass the end of ``x`` with a margin of 8
    standard deviations (a shortfall, which would leave the tail undropped, has probability below
    1e-14), and positions past the end land in a spare slot, so there is no host synchronisation.
    The mask is float32 (under bf16 autocast too) so that the ``1 / (1 - p)`` scale stays exact.
    """
    if not training or p == 0.0:
        return x
    if x.device.type != "cpu" or p > SPARSE_DROPOUT_MAX_P:
        return F.dropout(x, p, training=True)
    numel = x.numel()
    expected = numel * p
    num_gaps = int(expected + 8.0 * expected**0.5 + 16)
    positions = th.empty(num_gaps, dtype=th.int64, device=x.device).geometric_(p).cumsum_(0).sub_(1).clamp_(max=numel)
    mask_dtype = th.promote_types(x.dtype, th.float32)
    mask = th.full((numel + 1,), 1.0 / (1.0 - p), dtype=mask_dtype, device=x.device).index_fill_(0, positions, 0.0)
    return x * mask[:numel].view(x.shape)


def _softmax_last_dim(x: th.Tensor) -> th.Tensor:
    """Softmax over the last dimension as ``e / sum(e)`` with ``e = exp(x - max(x))``."""
    e = (x - x.amax(dim=-1, keepdim=True)).exp_()
    return e.div_(e.sum(dim=-1, keepdim=True))


class _ShortRowSoftmax(th.autograd.Function):
    """:func:`_softmax_last_dim` with its closed-form derivative ``y (g - sum(g y))``."""

    @staticmethod
    def forward(ctx: Any, x: th.Tensor) -> th.Tensor:
        y = _softmax_last_dim(x)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx: Any, grad_output: th.Tensor) -> th.Tensor:
        (y,) = ctx.saved_tensors
        return y * (grad_output - (grad_output * y).sum(dim=-1, keepdim=True))


def short_row_softmax(x: th.Tensor) -> th.Tensor:
    """
    Softmax over a short last dimension (SimNorm's groups of 8). On CPU, ``F.softmax`` over rows
    of 8 is 3-5x slower than the same softmax written as a few vectorised passes (max, exp, sum,
    divide) with a closed-form backward; this computes it so there (same max subtraction, values
    equal to ``F.softmax`` within 1e-6, tests/test_speed_paths.py). On GPU it is ``F.softmax``.
    """
    if x.device.type != "cpu":
        return F.softmax(x, dim=-1)
    if x.requires_grad and th.is_grad_enabled():
        return _ShortRowSoftmax.apply(x)
    return _softmax_last_dim(x)
