"""
The world-model policy of BOOM: encoder, latent dynamics, reward head, Q ensemble (+ target)
and the policy prior, with MPPI planning behind ``predict``.
"""

from copy import deepcopy
from typing import Any, NamedTuple

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.type_aliases import PyTorchObs, Schedule
from torch import nn

from sb3_boom import losses
from sb3_boom.encoders import DEFAULT_IMAGE_ENCODER_KWARGS, ObservationEncoder, image_keys
from sb3_boom.env_defaults import simnorm_enabled
from sb3_boom.optim import default_optimizer_kwargs
from sb3_boom.planner import PlannerConfig, PlanResult, estimate_value, plan
from sb3_boom.precision import PRECISIONS
from sb3_boom.presets import MODEL_SIZES
from sb3_boom.spaces import check_spaces, flat_observation_dim
from sb3_boom.torch_layers import NormedLinear, PairInputMLP, QEnsemble, SimNorm, build_mlp, init_weights

# Where the Q heads' dropout is on (see ``WorldModelPolicy``'s ``q_dropout``). The default, "always", departs
# from the SPEC's text ("off for planning and for target Q"), which misreads the authors' code: their vmapped
# ensemble never leaves train mode. With "train" our cartpole-swingup planner stalled at rest in 2 of 12 seeds
# at 50k env steps, with "always" in none of 10 (docs/validation.md, "Q dropout while planning").
Q_DROPOUT_MODES = ("train", "always")


def _check_q_dropout(mode: str) -> None:
    if mode not in Q_DROPOUT_MODES:
        raise ValueError(f"q_dropout must be one of {list(Q_DROPOUT_MODES)}, got {mode!r}")


class PolicySample(NamedTuple):
    """Output of the policy prior: squashed mean, squashed reparameterised sample, its log-prob, log-std."""

    mean: th.Tensor
    action: th.Tensor
    log_prob: th.Tensor
    log_std: th.Tensor


class WorldModelPolicy(BasePolicy):
    """
    World-model policy of BOOM (TD-MPC2 architecture): encoder ``h``, latent dynamics ``f``,
    reward head ``R``, Q ensemble (+ target) and the squashed-Gaussian policy prior ``pi``.
    ``predict`` plans with MPPI through the model (or uses the prior alone when ``use_planner``
    is False).

    :param observation_space: Box (or Dict of Box for ``MultiInputPolicy``) observations
    :param action_space: bounded Box actions
    :param lr_schedule: learning rate schedule
    :param model_size: size preset: 1, 5, 19, 48 or 317 (million parameters, TD-MPC2's) or "cpu" (ours, ~0.2M), giving the
        defaults of ``enc_dim``, ``mlp_dim``, ``latent_dim``, ``num_enc_layers`` and ``num_q``
    :param latent_dim: latent state size
    :param mlp_dim: hidden width of dynamics, reward, Q and policy networks
    :param enc_dim: hidden width of the encoder
    :param num_enc_layers: encoder layers (hidden layers + output layer)
    :param num_q: Q heads in the ensemble
    :param num_bins: bins of the discrete (two-hot) regression of rewards and values
    :param vmin: lower end of the bins (symlog space)
    :param vmax: upper end of the bins (symlog space)
    :param simnorm_dim: group size of SimNorm
    :param simnorm: SimNorm on the latent (True / False / "auto": off for 24 <= A <= 48)
    :param dropout: dropout of the Q heads (after their first layer)
    :param q_dropout: where that dropout is on: "always" (the training losses, the planner's value
        estimate and the TD target's target heads: what the authors' code does, its vmapped Q ensemble
        ignoring ``eval()``) or "train" (the training losses only, as the SPEC describes their code;
        on cartpole-swingup its planner sometimes stalls at rest, see docs/validation.md)
    :param log_std_min: lower bound of the policy log-std
    :param log_std_max: upper bound of the policy log-std
    :param enc_lr_scale: learning rate multiplier of the encoder
    :param planner: MPPI settings
    :param gamma: discount used by the planner's value estimate
    :param use_planner: plan in ``predict`` (True) or act with the policy prior only (False)
    :param precision: "float32", or "bfloat16" to run the networks under ``torch.autocast`` in
        bfloat16 (matmuls in bfloat16; parameters, gradients, optimizer state, losses and the
        planner's arithmetic stay float32, as each network's output is cast back). The output
        layers of the dynamics, reward and Q networks stay float32: in bf16 their rounding
        reorders the planner's samples, whose values differ by less than it. The encoder stays
        float32 too: its rounding of the latent was the largest part of bf16's gradient error,
        for 1.4-1.8% of the 5M update's matmul FLOPs (docs/speed.md)
    :param optimizer_class: optimizer of the world model and of the policy prior
    :param optimizer_kwargs: extra optimizer arguments (the prior's optimizer defaults to ``eps=1e-5``)
    :param image_encoder_kwargs: for image observations ("CnnPolicy", or images in "MultiInputPolicy"), the
        pixel encoder's settings, as SB3's ``features_extractor_kwargs``: ``num_channels`` (of every conv
        layer, 32) and ``shift_pad`` (largest random shift in pixels while training, 3), see
        :class:`sb3_boom.encoders.PixelEncoder`
    """

    accepts_dict_observations = False
    accepts_image_observations = False

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Box,
        lr_schedule: Schedule,
        model_size: int | str = 5,
        latent_dim: int | None = None,
        mlp_dim: int | None = None,
        enc_dim: int | None = None,
        num_enc_layers: int | None = None,
        num_q: int | None = None,
        num_bins: int = 101,
        vmin: float = -10.0,
        vmax: float = 10.0,
        simnorm_dim: int = 8,
        simnorm: bool | str = "auto",
        dropout: float = 0.01,
        q_dropout: str = "always",
        log_std_min: float = -10.0,
        log_std_max: float = 2.0,
        enc_lr_scale: float = 0.3,
        planner: PlannerConfig | None = None,
        gamma: float = 0.99,
        use_planner: bool = True,
        precision: str = "float32",
        optimizer_class: type[th.optim.Optimizer] = th.optim.Adam,
        optimizer_kwargs: dict[str, Any] | None = None,
        image_encoder_kwargs: dict[str, Any] | None = None,
    ):
        check_spaces(observation_space, action_space, self.accepts_dict_observations, self.accepts_image_observations)
        super().__init__(
            observation_space,
            action_space,
            optimizer_class=optimizer_class,
            optimizer_kwargs=optimizer_kwargs,
            normalize_images=False,
            squash_output=True,
        )
        if model_size not in MODEL_SIZES:
            raise ValueError(f"model_size must be one of {list(MODEL_SIZES)}, got {model_size!r}")
        preset = MODEL_SIZES[model_size]
        self.model_size = model_size
        self.latent_dim = latent_dim or preset["latent_dim"]
        self.mlp_dim = mlp_dim or preset["mlp_dim"]
        self.enc_dim = enc_dim or preset["enc_dim"]
        self.num_enc_layers = num_enc_layers or preset["num_enc_layers"]
        self.num_q = num_q or preset["num_q"]
        if self.num_q < 2:
            raise ValueError(f"num_q must be >= 2 (two random heads are compared), got {self.num_q}")
        if self.latent_dim % simnorm_dim != 0:
            raise ValueError(f"latent_dim ({self.latent_dim}) must be a multiple of simnorm_dim ({simnorm_dim})")
        if num_bins < 2:
            raise ValueError(f"num_bins must be >= 2, got {num_bins}")
        self.num_bins, self.vmin, self.vmax = num_bins, vmin, vmax
        self.simnorm_dim, self.simnorm, self.dropout = simnorm_dim, simnorm, dropout
        _check_q_dropout(q_dropout)
        self.q_dropout = q_dropout
        self.log_std_min, self.log_std_max = log_std_min, log_std_max
        self.enc_lr_scale = enc_lr_scale
        self.planner = planner or PlannerConfig()
        self._value_program = estimate_value
        self.gamma = gamma
        self.use_planner = use_planner
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {list(PRECISIONS)}, got {precision!r}")
        self.precision = precision
        # Under bf16, the encoder computes in float32 (see ``precision``; studies/research_switches.py switches it).
        self.float32_encoder = True
        self.action_dim = int(np.prod(action_space.shape))
        self.obs_dim = flat_observation_dim(observation_space)
        self.image_keys = image_keys(observation_space)
        unknown = set(image_encoder_kwargs or {}) - set(DEFAULT_IMAGE_ENCODER_KWARGS)
        if unknown:
            raise ValueError(f"Unknown image_encoder_kwargs {sorted(unknown)}; known: {sorted(DEFAULT_IMAGE_ENCODER_KWARGS)}")
        self.image_encoder_kwargs = {**DEFAULT_IMAGE_ENCODER_KWARGS, **(image_encoder_kwargs or {})}
        # Warm-start mean of `predict` when the caller does not pass one back as `state`.
        self._predict_mean: th.Tensor | None = None
        self._build(lr_schedule)

    def _build(self, lr_schedule: Schedule) -> None:
        use_simnorm = simnorm_enabled(self.simnorm, self.action_dim)
        latent, action, hidden = self.latent_dim, self.action_dim, self.mlp_dim
        if self.image_keys:
            self.encoder = self._build_image_encoder(use_simnorm)
        else:
            self.encoder = build_mlp(
                self.obs_dim, [self.enc_dim] * (self.num_enc_layers - 1), latent, SimNorm(self.simnorm_dim, use_simnorm)
            )
        # The output layers of dynamics, reward and Q compute in float32 under bf16 autocast too (see
        # ``precision``): their rounding is what reorders MPPI's samples.
        self.dynamics = PairInputMLP(
            *build_mlp(latent + action, [hidden] * 2, latent, SimNorm(self.simnorm_dim, use_simnorm), float32_output=True)
        )
        # 3 hidden layers and an orthogonal output layer: the BOOM code's reward head (TD-MPC2 has 2).
        self.reward_head = PairInputMLP(*build_mlp(latent + action, [hidden] * 3, self.num_bins, float32_output=True))
        self.actor = build_mlp(latent, [hidden] * 2, 2 * action)
        self.apply(init_weights)
        nn.init.orthogonal_(self.reward_head[-1].weight)
        self.q_ensemble = QEnsemble(
            self.num_q,
            latent + action,
            hidden,
            self.num_bins,
            self.dropout,
            float32_output=True,
        )
        self.q_target = deepcopy(self.q_ensemble).requires_grad_(False)
        self.q_target.train(False)
        self.set_q_dropout(self.q_dropout)
        self.register_buffer("bins", losses.bin_centres(self.num_bins, self.vmin, self.vmax))
        # Running scale S of the policy's Q values (part of the saved state).
        self.register_buffer("q_scale", th.ones(1))

        learning_rate = lr_schedule(1)
        world_model_groups = [
            {"params": self.encoder.parameters(), "lr": learning_rate * self.enc_lr_scale, "lr_scale": self.enc_lr_scale},
            {
                "params": [*self.dynamics.parameters(), *self.reward_head.parameters(), *self.q_ensemble.parameters()],
                "lr_scale": 1.0,
            },
        ]
        optimizer_kwargs = {**default_optimizer_kwargs(self.optimizer_class), **self.optimizer_kwargs}
        self.optimizer = self.optimizer_class(world_model_groups, lr=learning_rate, **optimizer_kwargs)  # type: ignore[call-arg]
        actor_kwargs = {"eps": 1e-5, **optimizer_kwargs}
        self.pi_optimizer = self.optimizer_class(self.actor.parameters(), lr=learning_rate, **actor_kwargs)  # type: ignore[call-arg]

    def _build_image_encoder(self, use_simnorm: bool) -> ObservationEncoder:
        """Pixel encoder(s) for the images, the state encoder's hidden layers for the vectors (see ObservationEncoder)."""
        hidden = [self.enc_dim] * (self.num_enc_layers - 1)

        def vector_encoder(in_dim: int) -> tuple[nn.Module, int]:
            dims = [in_dim, *hidden]
            return nn.Sequential(*[NormedLinear(dims[i], dims[i + 1]) for i in range(len(hidden))]), dims[-1]

        def output_layer(in_dim: int) -> nn.Module:
            return NormedLinear(in_dim, self.latent_dim, activation=SimNorm(self.simnorm_dim, use_simnorm))

        return ObservationEncoder(
            self.observation_space,
            self.latent_dim,
            vector_encoder,
            output_layer,
            SimNorm(self.simnorm_dim, use_simnorm),
            **self.image_encoder_kwargs,
        )

    def _get_constructor_parameters(self) -> dict[str, Any]:
        data = super()._get_constructor_parameters()
        data.pop("normalize_images", None)  # fixed to False: no image observations
        data.update(
            model_size=self.model_size,
            latent_dim=self.latent_dim,
            mlp_dim=self.mlp_dim,
            enc_dim=self.enc_dim,
            num_enc_layers=self.num_enc_layers,
            num_q=self.num_q,
            num_bins=self.num_bins,
            vmin=self.vmin,
            vmax=self.vmax,
            simnorm_dim=self.simnorm_dim,
            simnorm=self.simnorm,
            dropout=self.dropout,
            q_dropout=self.q_dropout,
            log_std_min=self.log_std_min,
            log_std_max=self.log_std_max,
            enc_lr_scale=self.enc_lr_scale,
            planner=self.planner,
            gamma=self.gamma,
            use_planner=self.use_planner,
            precision=self.precision,
            lr_schedule=self._dummy_schedule,  # type: ignore[arg-type]
            optimizer_class=self.optimizer_class,
            optimizer_kwargs=self.optimizer_kwargs,
        )
        if self.image_keys:
            data["image_encoder_kwargs"] = self.image_encoder_kwargs
        return data

    def world_model_parameters(self) -> list[nn.Parameter]:
        """Parameters updated by the world-model loss (encoder, dynamics, reward, Q ensemble)."""
        return [p for group in self.optimizer.param_groups for p in group["params"]]

    def train(self, mode: bool = True) -> "WorldModelPolicy":
        super().train(mode)
        self.q_target.train(False)  # the target is never trained: its dropout stays off (unless q_dropout="always")
        return self

    def set_q_dropout(self, mode: str) -> None:
        """
        Switch where the Q heads drop units on a built policy (see ``q_dropout``), for instance to plan
        with a trained model as it would have planned in the other mode. Not saved with the model unless
        ``policy_kwargs`` says so: ``BOOM.load`` builds the policy from the saved ``policy_kwargs``.

        :param mode: "always" or "train"
        """
        _check_q_dropout(mode)
        self.q_dropout = mode
        self.q_ensemble.dropout_always = self.q_target.dropout_always = mode == "always"

    def set_training_mode(self, mode: bool) -> None:
        """
        Switch dropout on or off. Skipped when the mode is already set: the training loop switches
        three times per agent step, and each switch walks every submodule (2 ms per step at the
        "cpu" size). Switch submodules through the policy, not one by one, to keep this valid.
        """
        if self.training != mode:
            self.train(mode)

    # --- the world model ---------------------------------------------------------------------

    def flatten_observation(self, observation: PyTorchObs) -> th.Tensor:
        """Concatenate (Dict) observations into float vectors ``[..., obs_dim]`` (batch dims kept)."""
        if isinstance(observation, dict):
            space = self.observation_space
            assert isinstance(space, spaces.Dict)
            return th.cat([_flatten_trailing(observation[key], len(sub.shape)) for key, sub in space.spaces.items()], dim=-1)
        return _flatten_trailing(observation, len(self.observation_space.shape))  # type: ignore[arg-type]

    def _forward(self, network: nn.Module, x: th.Tensor, *args: Any) -> th.Tensor:
        """``network(x, *args)`` in the policy's precision, returned as float32."""
        dtype = PRECISIONS[self.precision]
        if dtype is None:
            return network(x, *args)
        with th.autocast(x.device.type, dtype=dtype):
            return network(x, *args).float()

    @staticmethod
    def _forward_float32(network: nn.Module, x: th.Tensor, *args: Any) -> th.Tensor:
        """``network(x, *args)`` in float32, also when called inside an autocast region."""
        if not th.is_autocast_enabled(x.device.type):
            return network(x, *args)
        with th.autocast(x.device.type, enabled=False):
            return network(x, *args)

    def encode(self, observation: th.Tensor) -> th.Tensor:
        """``z = h(o)`` for flat observations ``[..., obs_dim]``."""
        if self.float32_encoder:
            return self._forward_float32(self.encoder, observation)
        return self._forward(self.encoder, observation)

    def next_latent(self, z: th.Tensor, action: th.Tensor) -> th.Tensor:
        """``z' = f(z, a)``; ``z`` may broadcast over the batch dimensions of ``action``."""
        return self._forward(self.dynamics, z, action)

    def reward_logits(self, z: th.Tensor, action: th.Tensor) -> th.Tensor:
        """Reward logits; ``z`` may broadcast over the batch dimensions of ``action``."""
        return self._forward(self.reward_head, z, action)

    def predict_reward(self, z: th.Tensor, action: th.Tensor) -> th.Tensor:
        """Decoded reward prediction ``R(z, a)``."""
        return losses.two_hot_inv(self.reward_logits(z, action), self.bins)

    def q_logits(self, z: th.Tensor, action: th.Tensor, heads: th.Tensor | None = None, target: bool = False) -> th.Tensor:
        """Logits of the Q heads, ``[num_heads, ..., num_bins]``."""
        ensemble = self.q_target if target else self.q_ensemble
        if th.is_grad_enabled() and action.requires_grad and not z.requires_grad:
            # The policy loss: only the action's gradient is wanted, so the latent's part of the first
            # layer's input gradient is not formed (about 3% of a 5M update's matmul FLOPs).
            return self._forward(ensemble, z, heads, action)
        return self._forward(ensemble, th.cat([z, action], dim=-1), heads)

    def q_value(self, z: th.Tensor, action: th.Tensor, reduce: str = "min", target: bool = False) -> th.Tensor:
        """
        Decoded Q value from two randomly chosen heads, reduced by ``"min"`` or ``"avg"``.
        Only the two chosen heads are evaluated.
        """
        # Two distinct heads, uniformly: the top 2 of num_q uniform draws. (Not randperm()[:2], which
        # torch.compile's inductor (2.13) rejects in a pattern-matching pass.)
        heads = th.rand(self.num_q, device=z.device).topk(2).indices
        values = losses.two_hot_inv(self.q_logits(z, action, heads, target), self.bins)
        if reduce == "min":
            return values.min(dim=0).values
        if reduce == "avg":
            return values.mean(dim=0)
        raise ValueError(f"reduce must be 'min' or 'avg', got {reduce!r}")

    def pi(self, z: th.Tensor) -> PolicySample:
        """Policy prior: tanh-squashed Gaussian with a reparameterised sample."""
        mean, raw_log_std = self._forward(self.actor, z).chunk(2, dim=-1)
        log_std = losses.scale_log_std(raw_log_std, self.log_std_min, self.log_std_max)
        eps = th.randn_like(mean)
        log_prob = losses.gaussian_logprob(eps, log_std)
        action = th.tanh(mean + eps * log_std.exp())
        log_prob = log_prob - losses.squash_log_prob_correction(action)
        return PolicySample(th.tanh(mean), action, log_prob, log_std)

    def sample_action(self, z: th.Tensor) -> th.Tensor:
        return self.pi(z).action

    @th.no_grad()
    def soft_update_target(self, tau: float) -> None:
        """Polyak averaging ``p_target <- (1 - tau) p_target + tau p`` of the target Q ensemble."""
        th._foreach_lerp_(list(self.q_target.parameters()), list(self.q_ensemble.parameters()), tau)

    # --- acting ----------------------------------------------------------------------------

    def compile_networks(self) -> None:
        """
        Compile the encoder, dynamics, reward, Q (online and target) and policy networks in place
        with ``torch.compile`` (parameters and state-dict keys unchanged, so saving and loading are
        unaffected), and the planner's value estimate as one program. Each network gets its own
        compiled variants per input shape, so dynamo's per-function limit on variants is raised to
        fit them all. ``BOOM(compile=True)`` also compiles the update's two losses; the MPPI loop's
        own arithmetic and the optimizer steps stay eager. CUDA graphs (``mode="reduce-overhead"``)
        are not used: they reuse output buffers between calls, which the planner's rollout (outputs
        of step t read after step t+1) would need cloning for, and that path has not been run on a
        GPU yet.
        """
        import torch._dynamo

        networks = (self.encoder, self.dynamics, self.reward_head, self.actor, self.q_ensemble, self.q_target)
        limit_name = "recompile_limit" if hasattr(torch._dynamo.config, "recompile_limit") else "cache_size_limit"
        # Variants: per network, input shape (planning, update, evaluation) and autograd state.
        setattr(torch._dynamo.config, limit_name, max(getattr(torch._dynamo.config, limit_name), 64))
        for network in networks:
            network.compile(dynamic=False)
        # The planner's value estimate (the H-step rollout of every sample) as one program, so that
        # inductor fuses across the networks; compiled once, it serves every MPPI iteration.
        self._value_program = th.compile(estimate_value, dynamic=False)

    @th.no_grad()
    def plan(
        self,
        observation: th.Tensor,
        previous_mean: th.Tensor | None = None,
        episode_start: th.Tensor | None = None,
        deterministic: bool = False,
    ) -> PlanResult:
        """MPPI from flat observations ``[n, obs_dim]``; see :func:`sb3_boom.planner.plan`."""
        z = self.encode(observation)
        return plan(
            self, z, self.planner, self.gamma, previous_mean, episode_start, deterministic, value_fn=self._value_program
        )

    def _predict(self, observation: PyTorchObs, deterministic: bool = False) -> th.Tensor:
        flat = self.flatten_observation(observation)
        if self.use_planner:
            return self.plan(flat, deterministic=deterministic).action
        sample = self.pi(self.encode(flat))
        return sample.mean if deterministic else sample.action

    def predict(
        self,
        observation: np.ndarray | dict[str, np.ndarray],
        state: tuple[np.ndarray, ...] | None = None,
        episode_start: np.ndarray | None = None,
        deterministic: bool = False,
        use_planner: bool | None = None,
    ) -> tuple[np.ndarray, tuple[np.ndarray, ...] | None]:
        """
        Actions for a batch of observations (or a single one).

        With planning, the warm-start mean of each environment is carried between calls: returned
        as ``state`` (pass it back, as ``evaluate_policy`` does) or, if ``state`` is None, kept
        inside the policy. ``episode_start`` resets it for the environments that start a new
        episode.

        :param use_planner: override ``self.use_planner`` for this call
        """
        self.set_training_mode(False)
        _check_finite_observation(observation)
        obs_tensor, vectorized = self.obs_to_tensor(observation)
        use_planner = self.use_planner if use_planner is None else use_planner
        new_state = None
        with th.no_grad():
            flat = self.flatten_observation(obs_tensor)
            if use_planner:
                n_envs = flat.shape[0]
                previous = self._predict_mean if state is None else th.as_tensor(state[0], device=self.device)
                if previous is not None and previous.shape != (n_envs, self.planner.horizon, self.action_dim):
                    previous = None
                starts = (
                    None
                    if episode_start is None
                    else th.as_tensor(np.asarray(episode_start, dtype=bool).reshape(-1), device=self.device)
                )
                result = self.plan(flat, previous, starts, deterministic)
                actions_tensor = result.action
                if state is None:
                    self._predict_mean = result.mean
                new_state = (result.mean.cpu().numpy(),)
            else:
                sample = self.pi(self.encode(flat))
                actions_tensor = sample.mean if deterministic else sample.action
        actions = actions_tensor.cpu().numpy().reshape((-1, *self.action_space.shape))  # type: ignore[misc]
        actions = self.unscale_action(actions)
        if not vectorized:
            actions = actions.squeeze(axis=0)
        return actions, new_state  # type: ignore[return-value]


def _flatten_trailing(x: th.Tensor, space_dims: int) -> th.Tensor:
    """Flatten the last ``space_dims`` dimensions (the observation's own) into one, as float."""
    return x.float().reshape(*x.shape[: x.dim() - space_dims], -1)


def _check_finite_observation(observation: np.ndarray | dict[str, np.ndarray]) -> None:
    items = observation.items() if isinstance(observation, dict) else [("observation", observation)]
    for key, value in items:
        value = np.asarray(value)
        if np.issubdtype(value.dtype, np.floating) and not np.all(np.isfinite(value)):
            raise ValueError(f"Non-finite value (NaN or inf) in {key} passed to predict: {value}")


class MultiInputWorldModelPolicy(WorldModelPolicy):
    """
    :class:`WorldModelPolicy` for Dict observations (concatenated in key order), e.g. raw dm_control.
    Vectors go through the MLP encoder; uint8 images, if any, each through a pixel encoder, with the
    vectors through the MLP's hidden layers (see :class:`sb3_boom.encoders.ObservationEncoder`).
    """

    accepts_dict_observations = True
    accepts_image_observations = True


class CnnWorldModelPolicy(WorldModelPolicy):
    """
    :class:`WorldModelPolicy` for uint8 image observations (frames stacked on the channel axis): the
    encoder is TD-MPC2's pixel encoder (:class:`sb3_boom.encoders.PixelEncoder`), the rest as for states.
    """

    accepts_image_observations = True


MlpPolicy = WorldModelPolicy
CnnPolicy = CnnWorldModelPolicy
MultiInputPolicy = MultiInputWorldModelPolicy
