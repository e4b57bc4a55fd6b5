"""BOOM: Bootstrap Off-policy with World Model (NeurIPS 2025), as an SB3 off-policy algorithm."""

import dataclasses
import io
import pathlib
import warnings
from collections.abc import Iterator
from typing import Any, ClassVar, TypeVar

import numpy as np
import torch as th
import torch.nn.functional as F
from stable_baselines3.common.base_class import maybe_make_env
from stable_baselines3.common.buffers import ReplayBuffer
from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.save_util import load_from_pkl, load_from_zip_file, save_to_pkl
from stable_baselines3.common.type_aliases import GymEnv, MaybeCallback, Schedule
from stable_baselines3.common.utils import get_device
from stable_baselines3.common.vec_env import VecEnv

from sb3_boom import env_defaults
from sb3_boom.buffers import SequenceReplayBuffer, SequenceReplayBufferSamples
from sb3_boom.encoders import has_image_observations
from sb3_boom.image_buffer import ImageSequenceReplayBuffer, frame_stack_of
from sb3_boom.losses import ALIGN_WEIGHTINGS, ALIGNMENTS, boom_policy_loss, soft_cross_entropy, updated_scale
from sb3_boom.optim import step_if_finite
from sb3_boom.planner import RANDOM_ACTION_STD, PlannerConfig
from sb3_boom.policies import CnnPolicy, MlpPolicy, MultiInputPolicy, WorldModelPolicy
from sb3_boom.precision import PRECISIONS, bfloat16_is_native
from sb3_boom.safe_io import atomic_write, check_model_archive, with_suffix
from sb3_boom.spaces import check_action_space, check_spaces

SelfBOOM = TypeVar("SelfBOOM", bound="BOOM")

# Settings that BOOM and its built policy both hold: assigning one on a built model updates the policy too.
PLANNER_SETTINGS = frozenset(field.name for field in dataclasses.fields(PlannerConfig))
POLICY_SETTINGS = frozenset(("gamma", "use_planner", "precision"))
_SHARED_SETTINGS = PLANNER_SETTINGS | POLICY_SETTINGS

# Order of the per-update statistics kept on the device and logged once per train() call.
TRAIN_STATS = (
    "consistency_loss",
    "reward_loss",
    "value_loss",
    "model_loss",
    "model_grad_norm",
    "policy_loss",
    "policy_value_loss",
    "align_loss",
    "policy_grad_norm",
    "q_scale",
    "policy_std",
    "q_mean",
    # Std over the batch of each coordinate of the encoder's latents, averaged: near 0, the latent no longer
    # tells observations apart (studies.latent_collapse, docs/pixels.md).
    "latent_spread",
)


class BOOM(OffPolicyAlgorithm):
    """
    Bootstrap Off-policy with World Model (BOOM, Zhan et al., NeurIPS 2025).

    A TD-MPC2 world model (encoder, latent dynamics, reward, Q ensemble) trained on H-step
    sub-sequences; actions come from MPPI planning in latent space, and the policy prior is trained
    to maximise Q while aligning with the planner's actions through a Q-weighted, likelihood-free
    forward KL. Paper: https://arxiv.org/abs/2511.00423 ; authors' code: molumitu/BOOM_MBRL.

    :param policy: the policy model ("MlpPolicy", "CnnPolicy" for uint8 images, "MultiInputPolicy" for Dict
        observations of vectors and/or images, or a WorldModelPolicy class)
    :param env: the environment to learn from (if registered in Gym, can be str)
    :param learning_rate: learning rate of both optimizers (the encoder's is scaled by ``enc_lr_scale``),
        can be a function of the remaining progress
    :param buffer_size: size of the replay buffer (slots over all envs)
    :param learning_starts: random warm-up steps before planning and learning; None: ``max(1000, 5 L)``
        with ``L`` the episode length. At the end of warm-up, as many updates as warm-up steps run once.
    :param batch_size: sub-sequences per update
    :param tau: Polyak rate of the target Q ensemble, also the rate of the running Q scale
    :param gamma: discount factor, or "auto" (from the episode length ``L``:
        ``clip(1 - 5 / L, 0.95, 0.995)``)
    :param train_freq: update the model every ``train_freq`` steps (int or tuple like SB3's)
    :param gradient_steps: updates per rollout; -1: as many as env steps collected (one update per
        transition, also with several envs)
    :param replay_buffer_class: a :class:`SequenceReplayBuffer` subclass (default: SequenceReplayBuffer)
    :param replay_buffer_kwargs: extra arguments of the replay buffer
    :param horizon: planning and training horizon ``H``
    :param iterations: MPPI iterations, or "auto" (6, plus 2 when the action has >= 20 dimensions)
    :param num_samples: MPPI action sequences per iteration
    :param num_elites: MPPI elites
    :param num_pi_trajs: sequences proposed by the policy prior in each planning call
    :param min_std: minimum MPPI std (also the floor of the policy std in the alignment term)
    :param max_std: initial MPPI std
    :param temperature: MPPI temperature
    :param lambda_align: weight of the alignment term, or "auto" (``A / 1000`` for ``24 <= A <= 48``,
        else ``A / 50``: the newest BOOM code's rule)
    :param align_temperature: temperature of the soft Q-weighting
    :param alignment: "fkl" (likelihood-free forward KL, BOOM), "rkl" (reverse KL ablation) or "none"
    :param align_weighting: "softq" (softmax of Q over the batch, BOOM) or "uniform" (ablation)
    :param entropy_coef: entropy coefficient of the policy loss
    :param consistency_coef: weight of the latent consistency loss
    :param consistency_trains_encoder: whether the consistency loss trains the encoder too (True: TD-MPC2 and
        BOOM) or only the dynamics (False: it sees the encoder's latent as a constant; the reward and value
        losses still train the encoder), or "auto": False for image observations, True otherwise. From pixels
        with rare rewards, the consistency loss can keep the latent almost independent of the image before the
        first rewards are learned (docs/pixels.md)
    :param reward_coef: weight of the reward loss
    :param value_coef: weight of the value loss
    :param rho: temporal weight ``rho^t`` of the losses over the horizon
    :param enc_lr_scale: learning-rate multiplier of the encoder
    :param grad_clip_norm: gradient-norm clip of the world model and of the policy prior
    :param use_planner: ``predict`` plans with MPPI (True) or acts with the policy prior only (False);
        can be changed at any time, or at load time: ``BOOM.load(path, use_planner=False)``
    :param precision: "float32", or "bfloat16": the networks run under ``torch.autocast`` in bfloat16
        (planning, updates and ``predict``; parameters, optimizer state, losses, the encoder and the
        output layers of the dynamics, reward and Q networks stay float32). Faster
        on CPUs with AVX512-BF16 or AMX and on GPUs at the 5M size and above; see docs/speed.md.
        Can be changed at load time: ``BOOM.load(path, precision="float32")``
    :param compile: compile the networks, the planner's value estimate and the update's two losses
        (forward and backward) with ``torch.compile``: fused kernels, a speed-up on CPU too (see
        docs/speed.md); the first plan and update take longer (minutes of compilation). See
        :meth:`WorldModelPolicy.compile_networks`.
    :param stats_window_size: window size for the rollout logging
    :param tensorboard_log: the log location for tensorboard (if None, no logging)
    :param policy_kwargs: arguments of the policy (network sizes: see :class:`WorldModelPolicy`)
    :param verbose: verbosity level: 0 no output, 1 info, 2 debug
    :param seed: seed for the pseudo random generators
    :param device: device (cpu, cuda, ...) on which the code should be run
    :param _init_setup_model: whether or not to build the network at the creation of the instance
    """

    policy_aliases: ClassVar[dict[str, type[BasePolicy]]] = {
        "MlpPolicy": MlpPolicy,
        "CnnPolicy": CnnPolicy,
        "MultiInputPolicy": MultiInputPolicy,
    }
    policy: WorldModelPolicy
    replay_buffer: SequenceReplayBuffer

    def __init__(
        self,
        policy: str | type[WorldModelPolicy],
        env: GymEnv | str,
        learning_rate: float | Schedule = 3e-4,
        buffer_size: int = 1_000_000,
        learning_starts: int | None = None,
        batch_size: int = 256,
        tau: float = 0.01,
        gamma: float | str = "auto",
        train_freq: int | tuple[int, str] = 1,
        gradient_steps: int = -1,
        replay_buffer_class: type[SequenceReplayBuffer] | None = None,
        replay_buffer_kwargs: dict[str, Any] | None = None,
        horizon: int = 3,
        iterations: int | str = "auto",
        num_samples: int = 512,
        num_elites: int = 64,
        num_pi_trajs: int = 24,
        min_std: float = 0.05,
        max_std: float = 2.0,
        temperature: float = 0.5,
        lambda_align: float | str = "auto",
        align_temperature: float = 1.0,
        alignment: str = "fkl",
        align_weighting: str = "softq",
        entropy_coef: float = 1e-4,
        consistency_coef: float = 20.0,
        consistency_trains_encoder: bool | str = "auto",
        reward_coef: float = 0.1,
        value_coef: float = 0.1,
        rho: float = 0.5,
        enc_lr_scale: float = 0.3,
        grad_clip_norm: float = 20.0,
        use_planner: bool = True,
        precision: str = "float32",
        compile: bool = False,
        stats_window_size: int = 100,
        tensorboard_log: str | None = None,
        policy_kwargs: dict[str, Any] | None = None,
        verbose: int = 0,
        seed: int | None = None,
        device: th.device | str = "auto",
        _init_setup_model: bool = True,
    ):
        if alignment not in ALIGNMENTS:
            raise ValueError(f"alignment must be one of {ALIGNMENTS}, got {alignment!r}")
        if align_weighting not in ALIGN_WEIGHTINGS:
            raise ValueError(f"align_weighting must be one of {ALIGN_WEIGHTINGS}, got {align_weighting!r}")
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {list(PRECISIONS)}, got {precision!r}")
        if gamma != "auto" and not isinstance(gamma, (int, float)):
            raise ValueError(f"gamma must be a float or 'auto', got {gamma!r}")
        super().__init__(
            policy,
            env,
            learning_rate,
            buffer_size,
            learning_starts,  # type: ignore[arg-type]  # None is resolved in _setup_model
            batch_size,
            tau,
            gamma,  # type: ignore[arg-type]  # "auto" is resolved in _setup_model
            train_freq,
            gradient_steps,
            action_noise=None,
            replay_buffer_class=replay_buffer_class,
            replay_buffer_kwargs=replay_buffer_kwargs,
            policy_kwargs=policy_kwargs,
            stats_window_size=stats_window_size,
            tensorboard_log=tensorboard_log,
            verbose=verbose,
            device=device,
            seed=seed,
            sde_support=False,
            support_multi_env=True,
            # Spaces are checked in _setup_model, with a message that says what BOOM supports.
            supported_action_spaces=None,
        )
        self.horizon = horizon
        self.iterations = iterations
        self.num_samples = num_samples
        self.num_elites = num_elites
        self.num_pi_trajs = num_pi_trajs
        self.min_std = min_std
        self.max_std = max_std
        self.temperature = temperature
        self.lambda_align = lambda_align
        self.align_temperature = align_temperature
        self.alignment = alignment
        self.align_weighting = align_weighting
        self.entropy_coef = entropy_coef
        self.consistency_coef = consistency_coef
        self.consistency_trains_encoder = consistency_trains_encoder
        self.reward_coef = reward_coef
        self.value_coef = value_coef
        self.rho = rho
        self.enc_lr_scale = enc_lr_scale
        self.grad_clip_norm = grad_clip_norm
        self.use_planner = use_planner
        self.precision = precision
        self.compile = compile
        # Whether the one-time pre-training burst at the end of warm-up has run (saved with the model).
        self._pretrained = False
        # Collection state: planner warm start per env, episode starts, output of the last plan.
        self._plan_mean: th.Tensor | None = None
        self._episode_starts: np.ndarray | None = None
        # Host copy of the warm start, written only while saving: a mid-episode resume continues the same plan.
        self._saved_plan_mean: np.ndarray | None = None
        self._last_planner_output: tuple[np.ndarray, np.ndarray] | None = None

        if _init_setup_model:
            self._setup_model()

    def _setup_model(self) -> None:
        check_spaces(
            self.observation_space,
            self.action_space,
            self.policy_class.accepts_dict_observations,
            getattr(self.policy_class, "accepts_image_observations", False),
        )
        self._setup_lr_schedule()
        self.set_random_seed(self.seed)
        action_dim = int(np.prod(self.action_space.shape))  # type: ignore[arg-type]
        episode_length = env_defaults.episode_length(self.env)
        if episode_length is not None and episode_length < self.horizon:
            raise ValueError(
                f"The environment's episodes last at most {episode_length} agent steps, shorter than horizon={self.horizon}: "
                "BOOM learns from windows of `horizon` consecutive transitions within one episode, so it could never "
                f"update. Use horizon <= {episode_length}, or a longer time limit (or less action repeat)."
            )
        self.gamma = env_defaults.resolve_discount(self.gamma, self.env, episode_length)
        if self.learning_starts is None:
            self.learning_starts = env_defaults.seed_steps_from_episode_length(episode_length)
        if self.iterations == "auto":
            self.iterations = env_defaults.planner_iterations(action_dim)
        if self.lambda_align == "auto":
            self.lambda_align = env_defaults.lambda_align_for(action_dim)
        images = has_image_observations(self.observation_space)
        if self.consistency_trains_encoder == "auto":
            # DEVIATION (TD-MPC2 and BOOM: always True): from pixels, the consistency loss alone shrinks the latent
            # of a static-background image to nearly a constant while rewards are rare (finger-spin: 0 return up
            # to 30k env steps with True; docs/pixels.md "Why the consistency loss does not train the encoder from pixels").
            self.consistency_trains_encoder = not images
        elif not isinstance(self.consistency_trains_encoder, bool):
            raise ValueError(
                f'consistency_trains_encoder must be True, False or "auto", got {self.consistency_trains_encoder!r}'
            )
        planner = PlannerConfig(
            horizon=self.horizon,
            iterations=int(self.iterations),
            num_samples=self.num_samples,
            num_elites=self.num_elites,
            num_pi_trajs=self.num_pi_trajs,
            min_std=self.min_std,
            max_std=self.max_std,
            temperature=self.temperature,
        )

        if self.replay_buffer_class is None:
            # Images: uint8 frames, each stored once (ImageSequenceReplayBuffer).
            self.replay_buffer_class = ImageSequenceReplayBuffer if images else SequenceReplayBuffer
        if not issubclass(self.replay_buffer_class, SequenceReplayBuffer):
            raise TypeError(
                f"BOOM needs a SequenceReplayBuffer (sub-sequence sampling), got {self.replay_buffer_class.__name__}"
            )
        if self.replay_buffer is None:
            buffer_kwargs = dict(self.replay_buffer_kwargs)
            if issubclass(self.replay_buffer_class, ImageSequenceReplayBuffer) and "frame_stack" not in buffer_kwargs:
                # Frames stacked by a VecFrameStack are stored once each (1: whole stacks, always correct).
                buffer_kwargs["frame_stack"] = frame_stack_of(self.env)
            self.replay_buffer = self.replay_buffer_class(
                self.buffer_size,
                self.observation_space,
                self.action_space,
                device=self.device,
                n_envs=self.n_envs,
                optimize_memory_usage=self.optimize_memory_usage,
                horizon=self.horizon,
                **buffer_kwargs,
            )

        self.policy = self.policy_class(
            self.observation_space,
            self.action_space,
            self.lr_schedule,
            planner=planner,
            gamma=self.gamma,
            enc_lr_scale=self.enc_lr_scale,
            use_planner=self.use_planner,
            precision=self.precision,
            **self.policy_kwargs,
        )
        self.policy = self.policy.to(self.device)
        if self.precision == "bfloat16" and not bfloat16_is_native(self.device):
            found = (
                f"torch's CPU capability: {th.backends.cpu.get_cpu_capability()}"
                if self.device.type == "cpu"
                else f"device: {self.device}"
            )
            warnings.warn(
                f"precision='bfloat16' on a {self.device.type} without native bf16 matrix multiplication ({found}; "
                "bf16 needs AVX512-BF16 or AMX on a CPU, compute capability 8.0 on CUDA): it is emulated, and "
                "several times slower than float32 (docs/speed.md). Use precision='float32' on this machine.",
                stacklevel=3,
            )
        self._world_model_loss_fn = self._world_model_loss
        self._prior_loss_fn = self._prior_loss
        if self.compile:
            self.policy.compile_networks()
            # Each loss as one program, so that inductor fuses the networks' elementwise work
            # with the losses' in the forward and the backward pass.
            self._world_model_loss_fn = th.compile(self._world_model_loss, dynamic=False)
            self._prior_loss_fn = th.compile(self._prior_loss, dynamic=False)
        self._convert_train_freq()

    # --- collection ----------------------------------------------------------------------------

    def _setup_learn(
        self,
        total_timesteps: int,
        callback: MaybeCallback = None,
        reset_num_timesteps: bool = True,
        tb_log_name: str = "run",
        progress_bar: bool = False,
    ):
        last_obs = self._last_obs
        result = super()._setup_learn(total_timesteps, callback, reset_num_timesteps, tb_log_name, progress_bar)
        if self._last_obs is not last_obs or self._episode_starts is None:
            # The envs were reset: every env starts an episode, the planner warm start is void.
            self._episode_starts = np.ones(self.n_envs, dtype=bool)
        return result

    def _sample_action(
        self,
        learning_starts: int,
        action_noise: Any = None,
        n_envs: int = 1,
    ) -> tuple[np.ndarray, np.ndarray]:
        action_shape = self.action_space.shape  # type: ignore[misc]
        if self.num_timesteps < learning_starts:
            scaled_action = np.random.uniform(-1.0, 1.0, size=(n_envs, *action_shape)).astype(np.float32)
            planner_action, planner_std = scaled_action, np.full_like(scaled_action, RANDOM_ACTION_STD)
        else:
            assert self._last_obs is not None, "self._last_obs was not set"
            obs_tensor, _ = self.policy.obs_to_tensor(self._last_obs)
            starts = th.as_tensor(self._episode_starts, device=self.device)
            result = self.policy.plan(self.policy.flatten_observation(obs_tensor), self._plan_mean, starts)
            self._plan_mean = result.mean
            # One transfer to the host per step: action, mu_beta and std, plus the planned value.
            host = th.cat([th.stack([result.action, result.planner_action, result.std]).flatten(), result.value]).cpu().numpy()
            steps = host[:-n_envs].reshape(3, n_envs, *action_shape)
            scaled_action, planner_action, planner_std = steps
            self.logger.record_mean("rollout/planner_std", float(planner_std.mean()))
            self.logger.record_mean("rollout/planner_value", float(host[-n_envs:].mean()))
        self._last_planner_output = (planner_action, planner_std)
        return self.policy.unscale_action(scaled_action), scaled_action

    def _store_transition(
        self,
        replay_buffer: ReplayBuffer,
        buffer_action: np.ndarray,
        new_obs: np.ndarray | dict[str, np.ndarray],
        reward: np.ndarray,
        dones: np.ndarray,
        infos: list[dict[str, Any]],
    ) -> None:
        if self._last_planner_output is not None and isinstance(replay_buffer, SequenceReplayBuffer):
            replay_buffer.stage_planner_output(*self._last_planner_output)
        super()._store_transition(replay_buffer, buffer_action, new_obs, reward, dones, infos)
        self._episode_starts = np.asarray(dones, dtype=bool).copy()

    # --- learning ------------------------------------------------------------------------------

    def _update_learning_rates(self) -> None:
        learning_rate = self.lr_schedule(self._current_progress_remaining)
        self.logger.record("train/learning_rate", learning_rate)
        for optimizer in (self.policy.optimizer, self.policy.pi_optimizer):
            for group in optimizer.param_groups:
                group["lr"] = learning_rate * group.get("lr_scale", 1.0)

    def train(self, gradient_steps: int, batch_size: int = 256) -> None:
        if not self.replay_buffer.has_window():
            # As SB3 waits for learning_starts: no update (and no pre-training burst) until the buffer holds
            # one window of `horizon` transitions of one episode (learning_starts=0, or a model loaded
            # without its replay buffer).
            return
        self.policy.set_training_mode(True)
        self._update_learning_rates()
        pretraining = not self._pretrained
        if pretraining:
            # End of warm-up: one burst of as many updates as random steps, each on a fresh batch
            # (DEVIATION from the authors' code, which reuses one batch for the whole burst:
            # studies.research_switches.AuthorsScheduleBOOM reproduces it).
            gradient_steps = max(gradient_steps, int(self.learning_starts))
            self._pretrained = True
            if self.verbose >= 1:
                print(f"BOOM: pre-training the world model with {gradient_steps} updates")
        stats = [self._update(batch) for batch in self._update_batches(gradient_steps, batch_size, pretraining)]
        self.policy.set_training_mode(False)
        if stats:
            self._log_and_check(th.stack(stats).cpu().numpy())
        self._n_updates += gradient_steps
        self.logger.record("train/n_updates", self._n_updates, exclude="tensorboard")

    def _update_batches(
        self, gradient_steps: int, batch_size: int, pretraining: bool
    ) -> Iterator[SequenceReplayBufferSamples]:
        """
        The batch of each update of one ``train`` call, each drawn just before its update: a fresh batch
        per update, in the pre-training burst too.

        :param gradient_steps: number of updates
        :param batch_size: sub-sequences per batch
        :param pretraining: whether these updates are the pre-training burst at the end of warm-up
        """
        for _ in range(gradient_steps):
            yield self._next_batch(batch_size)

    def _next_batch(self, batch_size: int) -> SequenceReplayBufferSamples:
        """A fresh batch from the replay buffer."""
        return self.replay_buffer.sample(batch_size, env=self._vec_normalize_env)

    def _clipped_world_model_parameters(self) -> list[th.nn.Parameter]:
        """The parameters whose gradients the world model's gradient-norm clip counts (and scales): its own."""
        return self.policy.world_model_parameters()

    def _update(self, batch: SequenceReplayBufferSamples) -> th.Tensor:
        """One world-model update and one policy update; returns TRAIN_STATS as one device tensor."""
        policy = self.policy
        model_loss, model_stats, zs = self._world_model_loss_fn(
            batch.observations, batch.actions, batch.rewards, batch.terminated
        )
        policy.optimizer.zero_grad(set_to_none=True)
        model_loss.backward()
        model_grad_norm = th.nn.utils.clip_grad_norm_(
            self._clipped_world_model_parameters(), self.grad_clip_norm, foreach=True
        )
        step_if_finite(policy.optimizer, model_loss, model_grad_norm)

        # Policy prior: maximise Q (frozen) and align with the planner's actions.
        policy.q_ensemble.requires_grad_(False)
        policy_loss, policy_stats, new_scale = self._prior_loss_fn(zs.detach(), batch.planner_actions, batch.planner_stds)
        policy.pi_optimizer.zero_grad(set_to_none=True)
        policy_loss.backward()
        policy_grad_norm = th.nn.utils.clip_grad_norm_(policy.actor.parameters(), self.grad_clip_norm, foreach=True)
        policy_finite = step_if_finite(policy.pi_optimizer, policy_loss, policy_grad_norm)
        policy.q_ensemble.requires_grad_(True)
        with th.no_grad():
            policy.q_scale.copy_(th.where(policy_finite, new_scale, policy.q_scale))
        policy.soft_update_target(self.tau)

        latent_spread = zs[0].detach().std(dim=0, correction=0).mean().reshape(1)  # correction=0: finite at batch 1
        # In TRAIN_STATS order.
        return th.cat(
            [
                model_stats,
                model_grad_norm.reshape(1),
                policy_stats[:3],
                policy_grad_norm.reshape(1),
                policy_stats[3:],
                latent_spread,
            ]
        )

    def _world_model_loss(
        self, observations: th.Tensor, actions: th.Tensor, rewards: th.Tensor, terminated: th.Tensor
    ) -> tuple[th.Tensor, th.Tensor, th.Tensor]:
        """
        World-model loss of a batch of sub-sequences (time-major).

        :return: the total loss, its parts ``[consistency, reward, value, total]`` (detached) and the
            latents of the rollout ``[H, B, L]``
        """
        policy, horizon = self.policy, self.horizon
        rho_weights = self.rho ** th.arange(horizon, device=observations.device, dtype=th.float32)

        with th.no_grad():
            next_z = policy.encode(observations[1:])
            next_q = policy.q_value(next_z, policy.sample_action(next_z), reduce="min", target=True)
            # DEVIATION: the authors' code never masks termination; we do (never truncation).
            td_target = rewards + self.gamma * (1.0 - terminated) * next_q

        # Latent rollout with the executed actions.
        trains_encoder = self.consistency_trains_encoder
        z = policy.encode(observations[0])
        latents, consistency = [], th.zeros((), device=observations.device)
        for t in range(horizon):
            latents.append(z)
            if not trains_encoder and t == horizon - 1:
                break  # the last predicted latent only serves the consistency loss, taken below
            z = policy.next_latent(z, actions[t])
            if trains_encoder:
                consistency = consistency + rho_weights[t] * F.mse_loss(z, next_z[t])
        if not trains_encoder:
            # A second rollout from the detached first latent: the consistency loss reaches the dynamics only,
            # while the reward and value losses of the rollout above still reach the encoder through it.
            z = latents[0].detach()
            for t in range(horizon):
                z = policy.next_latent(z, actions[t])
                consistency = consistency + rho_weights[t] * F.mse_loss(z, next_z[t])
        zs = th.stack(latents)
        consistency = consistency / horizon
        reward_ce = soft_cross_entropy(policy.reward_logits(zs, actions), rewards, policy.vmin, policy.vmax)
        reward_loss = (reward_ce.mean(dim=1) * rho_weights).sum() / horizon
        value_ce = soft_cross_entropy(policy.q_logits(zs, actions), td_target.unsqueeze(0), policy.vmin, policy.vmax)
        value_loss = (value_ce.mean(dim=2) * rho_weights).sum() / (horizon * policy.num_q)
        model_loss = self.consistency_coef * consistency + self.reward_coef * reward_loss + self.value_coef * value_loss
        stats = th.stack([consistency, reward_loss, value_loss, model_loss]).detach()
        return model_loss, stats, zs

    def _prior_loss(
        self, zs: th.Tensor, planner_actions: th.Tensor, planner_stds: th.Tensor
    ) -> tuple[th.Tensor, th.Tensor, th.Tensor]:
        """
        Policy-prior loss on the (detached) latents of the rollout; the Q ensemble must be frozen.

        :return: the loss, ``[total, value term, alignment term, scale, mean std, mean Q]`` (detached)
            and the updated running value scale (the loss already divides by it)
        """
        policy = self.policy
        sample = policy.pi(zs)
        q_values = policy.q_value(zs, sample.action, reduce="min")
        with th.no_grad():
            new_scale = updated_scale(policy.q_scale, q_values[0], self.tau)
        loss = boom_policy_loss(
            q_scaled=q_values / new_scale,
            policy_log_prob=sample.log_prob,
            policy_action=sample.action,
            policy_log_std=sample.log_std,
            planner_action=planner_actions,
            planner_std=planner_stds,
            scale=new_scale,
            rho=self.rho,
            entropy_coef=self.entropy_coef,
            lambda_align=float(self.lambda_align),
            min_std=self.min_std,
            alignment=self.alignment,
            weighting=self.align_weighting,
            align_temperature=self.align_temperature,
        )
        stats = th.stack(
            [
                loss.total,
                loss.value_term,
                loss.align_term,
                new_scale[0],
                sample.log_std.exp().mean(),
                q_values.mean(),
            ]
        ).detach()
        return loss.total, stats, new_scale

    def _log_and_check(self, stats: np.ndarray) -> None:
        """Log the mean of each statistic; stop with a clear error at the first non-finite one."""
        finite = np.isfinite(stats)
        if not finite.all():
            row, column = np.argwhere(~finite)[0]
            raise FloatingPointError(
                f"BOOM update {self._n_updates + int(row) + 1} (at {self.num_timesteps} env steps): "
                f"{TRAIN_STATS[column]} became {stats[row, column]}. The updates with non-finite losses or gradients "
                "were skipped, so the networks in memory are as before them (they can be saved). Check the scale of "
                "the observations and rewards (VecNormalize helps) and the learning rate."
            )
        for name, value in zip(TRAIN_STATS, stats.mean(axis=0), strict=True):
            self.logger.record(f"train/{name}", float(value))

    # --- settings held twice ---------------------------------------------------------------------

    def __setattr__(self, name: str, value: Any) -> None:
        # The name test first: most assignments (counters, the warm start, every step) are none of these.
        if name in _SHARED_SETTINGS and isinstance(policy := self.__dict__.get("policy"), WorldModelPolicy):
            value = self._apply_to_policy(policy, name, value)
        super().__setattr__(name, value)

    def _apply_to_policy(self, policy: WorldModelPolicy, name: str, value: Any) -> Any:
        """
        Make a setting assigned on a built model take effect in its policy (or refuse it), so that the
        two copies never disagree. Returns the value to store (``"auto"`` resolved).
        """
        if name == "horizon":
            if value != policy.planner.horizon:
                raise ValueError(
                    f"horizon cannot change on a built model (it is {policy.planner.horizon}): the replay buffer and the "
                    "losses use windows of that length. Create a new model, or load with BOOM.load(path, horizon=...)."
                )
        elif name in PLANNER_SETTINGS:
            if name == "iterations" and value == "auto":
                value = env_defaults.planner_iterations(int(np.prod(self.action_space.shape)))  # type: ignore[arg-type]
            policy.planner = dataclasses.replace(policy.planner, **{name: value})  # validated by PlannerConfig
        elif name == "gamma":
            value = env_defaults.resolve_discount(value, self.env)
            policy.gamma = value
        elif name == "use_planner":
            policy.use_planner = bool(value)
        elif name == "precision":
            if value not in PRECISIONS:
                raise ValueError(f"precision must be one of {list(PRECISIONS)}, got {value!r}")
            policy.precision = value
        return value

    # --- SB3 interface -------------------------------------------------------------------------

    def predict(
        self,
        observation: np.ndarray | dict[str, np.ndarray],
        state: tuple[np.ndarray, ...] | None = None,
        episode_start: np.ndarray | None = None,
        deterministic: bool = False,
    ) -> tuple[np.ndarray, tuple[np.ndarray, ...] | None]:
        """
        Plan with MPPI (or act with the policy prior when ``use_planner`` is False).

        :param state: the planner's warm-start mean returned by the previous call (optional)
        :param episode_start: True for the envs that start an episode (resets their warm start)
        :param deterministic: execute the planner action without exploration noise
        :return: the actions and the warm-start state for the next call
        """
        # The policy's own use_planner: assignments on the model reach it, and so do those on model.policy.
        return self.policy.predict(observation, state, episode_start, deterministic)

    def learn(
        self: SelfBOOM,
        total_timesteps: int,
        callback: MaybeCallback = None,
        log_interval: int = 4,
        tb_log_name: str = "BOOM",
        reset_num_timesteps: bool = True,
        progress_bar: bool = False,
    ) -> SelfBOOM:
        return super().learn(
            total_timesteps=int(total_timesteps),
            callback=callback,
            log_interval=log_interval,
            tb_log_name=tb_log_name,
            reset_num_timesteps=reset_num_timesteps,
            progress_bar=progress_bar,
        )

    def _excluded_save_params(self) -> list[str]:
        # The episode starts and the warm start (as _saved_plan_mean) are saved: with the env's state, a
        # model saved mid-episode resumes exactly as if it had never stopped.
        return [
            *super()._excluded_save_params(),
            "_plan_mean",
            "_last_planner_output",
            "_world_model_loss_fn",
            "_prior_loss_fn",
        ]

    def _get_torch_save_params(self) -> tuple[list[str], list[str]]:
        return ["policy", "policy.optimizer", "policy.pi_optimizer"], []

    @staticmethod
    def _wrap_env(env: GymEnv | str, verbose: int = 0, monitor_wrapper: bool = True) -> VecEnv:
        # An env id is made here, as the constructor makes one: SB3's load and set_env pass it on unmade.
        env = maybe_make_env(env, verbose)
        # Before SB3's own assertion, which names neither BOOM nor the fix (and is gone under python -O).
        check_action_space(env.action_space)
        return OffPolicyAlgorithm._wrap_env(env, verbose, monitor_wrapper)

    def save(
        self,
        path: str | pathlib.Path | io.BufferedIOBase,
        exclude: list[str] | None = None,
        include: list[str] | None = None,
    ) -> None:
        """
        Save the model (``.zip`` added when ``path`` has no suffix). The file is written under a
        temporary name and renamed when complete: a process killed while saving leaves the previous
        file intact (SB3's own ``save`` writes in place).
        """
        self._saved_plan_mean = None if self._plan_mean is None else self._plan_mean.cpu().numpy()
        try:
            if isinstance(path, (str, pathlib.Path)):
                with atomic_write(with_suffix(path, "zip")) as file:
                    super().save(file, exclude, include)
            else:
                super().save(path, exclude, include)
        finally:
            self._saved_plan_mean = None

    def save_replay_buffer(self, path: str | pathlib.Path | io.BufferedIOBase) -> None:
        """Save the replay buffer (``.pkl`` added when ``path`` has no suffix), atomically as :meth:`save`."""
        assert self.replay_buffer is not None, "The replay buffer is not defined"
        if isinstance(path, (str, pathlib.Path)):
            with atomic_write(with_suffix(path, "pkl")) as file:
                save_to_pkl(file, self.replay_buffer, self.verbose)
        else:
            save_to_pkl(path, self.replay_buffer, self.verbose)

    def load_replay_buffer(self, path: str | pathlib.Path | io.BufferedIOBase, truncate_last_traj: bool = True) -> None:
        """
        Load a replay buffer saved with :meth:`save_replay_buffer`. It is checked against this model
        first (a BOOM buffer, same horizon, spaces and number of envs); on a mismatch a ValueError
        names it and the model keeps its current buffer.

        :param truncate_last_traj: unused (SB3 uses it for HER buffers only)
        """
        loaded = load_from_pkl(path, self.verbose)
        self._check_replay_buffer(loaded, path)
        loaded.device = self.device
        self.replay_buffer = loaded

    def _check_replay_buffer(self, loaded: Any, path: Any) -> None:
        source = f"The replay buffer in {path!s}"
        if not isinstance(loaded, SequenceReplayBuffer):
            raise ValueError(
                f"{source} is a {type(loaded).__name__}, not a SequenceReplayBuffer: BOOM can only load a buffer "
                "saved by BOOM.save_replay_buffer (an SB3 ReplayBuffer has no sub-sequences or planner actions)."
            )
        expected = {
            "horizon": self.horizon,
            "n_envs": self.n_envs,
            "observation_space": self.observation_space,
            "action_space": self.action_space,
        }
        mismatches = [
            f"{name} {getattr(loaded, name)} (this model: {value})"
            for name, value in expected.items()
            if getattr(loaded, name) != value
        ]
        if mismatches:
            raise ValueError(
                f"{source} does not fit this model: it was saved with {'; '.join(mismatches)}. Load it into a model "
                "with the same horizon, environment spaces and number of envs, or start with an empty buffer."
            )

    @classmethod
    def load(  # type: ignore[override]
        cls: type[SelfBOOM],
        path: str | pathlib.Path | io.BufferedIOBase,
        env: GymEnv | None = None,
        device: th.device | str = "auto",
        custom_objects: dict[str, Any] | None = None,
        print_system_info: bool = False,
        force_reset: bool = True,
        **kwargs: Any,
    ) -> SelfBOOM:
        """
        Load a BOOM model saved with ``save``; extra keyword arguments set attributes (for example
        ``use_planner=False`` to act with the policy prior only).
        """
        check_model_archive(path)
        start = path.tell() if isinstance(path, io.IOBase) else None
        data, _, _ = load_from_zip_file(path, custom_objects=custom_objects, device=get_device("cpu"))
        if start is not None:
            path.seek(start)  # type: ignore[union-attr]
        policy_class = (data or {}).get("policy_class")
        if not (isinstance(policy_class, type) and issubclass(policy_class, WorldModelPolicy)):
            name = getattr(policy_class, "__name__", repr(policy_class))
            raise ValueError(f"{path!r} is not a BOOM model: it was saved with policy class {name}, not a WorldModelPolicy.")
        cls._check_saved_settings(data, path)
        model = super().load(path, env, device, custom_objects, print_system_info, force_reset, **kwargs)
        if model._saved_plan_mean is not None:
            model._plan_mean = th.as_tensor(model._saved_plan_mean, device=model.device)
            model._saved_plan_mean = None
        return model  # type: ignore[return-value]

    @classmethod
    def _check_saved_settings(cls, data: dict[str, Any], path: Any) -> None:
        """
        Refuse a model saved with a setting this class does not take: ``authors_quirks``, which older
        versions of BOOM took and the study class ``AuthorsScheduleBOOM`` now holds.

        :param data: the saved model's data
        :param path: where it was loaded from, for the message
        """
        quirks = data.get("authors_quirks")
        if quirks:
            raise ValueError(
                f"{path!r} was saved with authors_quirks={list(quirks)}, a study setting that BOOM no longer takes: "
                "load it with studies.research_switches.AuthorsScheduleBOOM.load (from a checkout of the repository) "
                "to train on with the authors' schedule."
            )

    def export(
        self,
        path: str | pathlib.Path,
        what: str = "prior",
        format: str = "onnx",
        n_envs: int = 1,
        deterministic: bool = True,
    ) -> pathlib.Path:
        """
        Export the policy prior or the whole MPPI planner to one file that runs without SB3 or sb3-boom
        (``onnxruntime`` or plain ``torch``); see docs/export.md and :func:`sb3_boom.export.export_policy`.

        :param path: the file to write (``.onnx`` or ``.pt`` is added if missing)
        :param what: "prior" (encoder + prior mean, any batch size) or "planner" (MPPI, random draws as inputs)
        :param format: "onnx" or "torchscript"
        :param n_envs: the planner's number of environments (fixed in the file)
        :param deterministic: the planner acts as ``predict(deterministic=True)`` (no ``action_noise`` input)
        :return: the path written
        """
        from sb3_boom.export import export_policy  # onnx is an optional dependency (the "export" extra)

        return export_policy(self.policy, path, what, format, n_envs, deterministic)
