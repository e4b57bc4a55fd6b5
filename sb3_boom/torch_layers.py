"""
Network layers of BOOM's world model (TD-MPC2's): Mish, SimNorm, the normed linear layer and MLPs built
from it, the MLP on a (latent, action) pair, and the Q ensemble evaluated in one batched matmul per layer.
"""

import torch as th
import torch.nn.functional as F
from torch import nn

from sb3_boom.kernels import dropout, mish, short_row_softmax


class Mish(nn.Module):
    """:func:`sb3_boom.kernels.mish` as a module."""

    def forward(self, x: th.Tensor) -> th.Tensor:
        return mish(x)


class SimNorm(nn.Module):
    """
    Simplicial normalisation: softmax within consecutive groups of ``group_size`` features.

    :param group_size: features per group
    :param enabled: when False the module is the identity
    """

    def __init__(self, group_size: int, enabled: bool = True):
        super().__init__()
        self.group_size = group_size
        self.enabled = enabled

    def forward(self, x: th.Tensor) -> th.Tensor:
        if not self.enabled:
            return x
        shape = x.shape
        return short_row_softmax(x.reshape(*shape[:-1], -1, self.group_size)).reshape(shape)

    def extra_repr(self) -> str:
        return f"group_size={self.group_size}, enabled={self.enabled}"


class OutputLinear(nn.Linear):
    """
    Output layer: ``nn.Linear`` that, while ``float32`` is True, computes in the parameters' dtype
    (float32) also inside a bfloat16 ``torch.autocast`` region. Same parameters and state-dict keys.

    :param float32: compute in float32 under autocast
    """

    def __init__(self, in_features: int, out_features: int, float32: bool = False):
        super().__init__(in_features, out_features)
        self.float32 = float32

    def forward(self, x: th.Tensor) -> th.Tensor:
        # Checked first so that the float32 path (no autocast) skips the context manager (~5 us a call).
        if not (self.float32 and th.is_autocast_enabled(x.device.type)):
            return super().forward(x)
        with th.autocast(x.device.type, enabled=False):
            return F.linear(x.to(self.weight.dtype), self.weight, self.bias)


class NormedLinear(nn.Module):
    """
    ``Linear -> (Dropout) -> LayerNorm -> activation``.

    :param float32: the linear layer computes in float32 even under bfloat16 autocast (an
        :class:`OutputLinear`), so LayerNorm and the activation see float32 inputs and keep them
    """

    def __init__(
        self, in_dim: int, out_dim: int, activation: nn.Module | None = None, dropout: float = 0.0, float32: bool = False
    ):
        super().__init__()
        self.linear = OutputLinear(in_dim, out_dim, float32=True) if float32 else nn.Linear(in_dim, out_dim)
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.norm = nn.LayerNorm(out_dim)
        self.activation = activation if activation is not None else Mish()

    def forward(self, x: th.Tensor) -> th.Tensor:
        return self.activation(self.norm(self.dropout(self.linear(x))))


def build_mlp(
    in_dim: int,
    hidden_dims: list[int],
    out_dim: int,
    output_activation: nn.Module | None = None,
    float32_output: bool = False,
) -> nn.Sequential:
    """
    MLP of :class:`NormedLinear` hidden layers. The output layer is a plain ``Linear``, or, when
    ``output_activation`` is given, ``Linear -> LayerNorm -> output_activation``.

    :param float32_output: the output layer computes in float32 even under bfloat16 autocast
    """
    dims = [in_dim, *hidden_dims]
    layers: list[nn.Module] = [NormedLinear(dims[i], dims[i + 1]) for i in range(len(hidden_dims))]
    if output_activation is None:
        layers.append(OutputLinear(dims[-1], out_dim, float32=float32_output))
    else:
        layers.append(NormedLinear(dims[-1], out_dim, activation=output_activation, float32=float32_output))
    return nn.Sequential(*layers)


class PairInputMLP(nn.Sequential):
    """
    An MLP (from :func:`build_mlp`) on the concatenation ``[z, a]`` of a latent and an action, called
    as ``mlp(z, a)``. Where ``z`` broadcasts over the batch dimensions of ``a`` (one latent, many
    actions: the planner's first step), the concatenation is not formed and the first layer
    multiplies ``z`` once: ``W [z; a] + b = (W_z z + b) + W_a a``. Same parameters and state-dict
    keys as the plain MLP.
    """

    def __init__(self, *layers: nn.Module):
        super().__init__(*layers)
        if not isinstance(self[0], NormedLinear):
            raise ValueError("PairInputMLP needs at least one hidden layer (a NormedLinear first)")

    def forward(self, z: th.Tensor, action: th.Tensor) -> th.Tensor:  # type: ignore[override]
        if z.shape[:-1] == action.shape[:-1]:
            return super().forward(th.cat([z, action], dim=-1))
        first = self[0]
        weight, latent_dim = first.linear.weight, z.shape[-1]
        # Summed in float32 (a no-op without autocast), so that bf16 rounds each part once, not the sum again.
        h = F.linear(z, weight[:, :latent_dim], first.linear.bias).float() + F.linear(action, weight[:, latent_dim:]).float()
        h = first.activation(first.norm(first.dropout(h)))
        for index in range(1, len(self)):
            h = self[index](h)
        return h


def init_weights(module: nn.Module) -> None:
    """Truncated normal (std 0.02) weights and zero biases for every ``nn.Linear``."""
    if isinstance(module, nn.Linear):
        nn.init.trunc_normal_(module.weight, std=0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)


class QEnsemble(nn.Module):
    """
    ``num_q`` Q networks with stacked weights, evaluated in one batched matmul per layer.

    Each head is ``Linear -> Dropout -> LayerNorm -> Mish -> Linear -> LayerNorm -> Mish -> Linear``
    with its own parameters (LayerNorm affine ones included) and its own dropout mask.

    :param num_q: number of heads
    :param in_dim: input size (latent + action)
    :param hidden_dim: hidden width
    :param out_dim: output size (number of bins)
    :param dropout: dropout probability after the first linear layer
    :param float32_output: the output layer computes in float32 also under bfloat16 autocast
    :param dropout_always: keep dropout on outside training mode too (planning, TD target), as the
        authors' code does
    """

    def __init__(
        self,
        num_q: int,
        in_dim: int,
        hidden_dim: int,
        out_dim: int,
        dropout: float = 0.0,
        float32_output: bool = False,
        dropout_always: bool = False,
    ):
        super().__init__()
        self.num_q = num_q
        self.dropout = dropout
        self.dropout_always = dropout_always
        self.float32_output = float32_output
        dims = [in_dim, hidden_dim, hidden_dim, out_dim]
        self.weights = nn.ParameterList([nn.Parameter(th.empty(num_q, dims[i], dims[i + 1])) for i in range(3)])
        self.biases = nn.ParameterList([nn.Parameter(th.zeros(num_q, 1, dims[i + 1])) for i in range(3)])
        self.norm_weights = nn.ParameterList([nn.Parameter(th.ones(num_q, 1, hidden_dim)) for _ in range(2)])
        self.norm_biases = nn.ParameterList([nn.Parameter(th.zeros(num_q, 1, hidden_dim)) for _ in range(2)])
        for weight in self.weights[:-1]:
            nn.init.trunc_normal_(weight, std=0.02)
        # Zero last layer, as the BOOM / TD-MPC2 code: every head starts by predicting 0.
        nn.init.zeros_(self.weights[-1])

    @staticmethod
    def _select(param: th.Tensor, heads: th.Tensor | None) -> th.Tensor:
        return param if heads is None else param.index_select(0, heads)

    def features(self, x: th.Tensor, heads: th.Tensor | None = None, action: th.Tensor | None = None) -> th.Tensor:
        """
        Last hidden layer of the selected heads.

        :param x: ``[..., in_dim]``, shared by all heads; with ``action``, only the latent part
            ``[..., in_dim - action_dim]`` of the input
        :param heads: indices of the heads to evaluate (default: all)
        :param action: the action part ``[..., action_dim]`` of the input, given apart: the first layer
            then computes ``(W_z z + b) + W_a a``, so that a backward pass that needs the gradient of
            the action alone (the policy loss: latents detached, Q frozen) does not form the latent's
        :return: ``[num_heads, prod(...), hidden_dim]``
        """
        num_heads = self.num_q if heads is None else heads.shape[0]

        def shared(t: th.Tensor) -> th.Tensor:
            return t.reshape(1, -1, t.shape[-1]).expand(num_heads, -1, -1)

        weight, bias = self._select(self.weights[0], heads), self._select(self.biases[0], heads)
        if action is None:
            h = th.baddbmm(bias, shared(x), weight)
        else:
            latent_dim = x.shape[-1]
            # Summed in float32 (a no-op without autocast), so that bf16 rounds each part once.
            h = (
                th.baddbmm(bias, shared(x), weight[:, :latent_dim]).float()
                + th.bmm(shared(action), weight[:, latent_dim:]).float()
            )
        for layer in range(2):
            if layer > 0:
                h = th.baddbmm(self._select(self.biases[layer], heads), h, self._select(self.weights[layer], heads))
            if layer == 0 and self.dropout > 0:
                h = dropout(h, self.dropout, self.training or self.dropout_always)
            h = F.layer_norm(h, h.shape[-1:])
            h = mish(h * self._select(self.norm_weights[layer], heads) + self._select(self.norm_biases[layer], heads))
        return h

    def forward(self, x: th.Tensor, heads: th.Tensor | None = None, action: th.Tensor | None = None) -> th.Tensor:
        """
        Logits of the selected heads.

        :param x: ``[..., in_dim]``, shared by all heads; with ``action``, only its latent part
        :param heads: indices of the heads to evaluate (default: all)
        :param action: the action part of the input, given apart (see :meth:`features`)
        :return: ``[num_heads, ..., out_dim]``
        """
        h = self.features(x, heads, action)
        weight, bias = self._select(self.weights[2], heads), self._select(self.biases[2], heads)
        if self.float32_output and th.is_autocast_enabled(h.device.type):
            with th.autocast(h.device.type, enabled=False):
                out = th.baddbmm(bias, h.to(weight.dtype), weight)
        else:
            out = th.baddbmm(bias, h, weight)
        return out.reshape(out.shape[0], *x.shape[:-1], out.shape[-1])
