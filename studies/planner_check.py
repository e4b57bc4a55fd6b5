"""
Check a trained BOOM model's MPPI planner against its policy prior, and probe where the planner's
value estimate goes wrong.

    python -m studies.planner_check --model runs/model.zip --env dm_control/cartpole-swingup-v0
    python -m studies.planner_check --model runs/model.zip --env dm_control/cartpole-swingup-v0 \\
        --episodes 10 --probe-step 40

1. Returns, episode by episode, each episode from its own initial state (env seeds ``--seed``,
   ``--seed + 1``, ...): the planner without exploration noise (what evaluations use), the planner
   with it (what training uses, weights frozen here) and the policy prior's mean action. Episodes
   below ``--fail-below`` are counted as failures.
2. With ``--probe-step K`` (``dm_control/*`` tasks, whose physics state can be restored): play the
   noise-free planner for K steps of the first episode, then, from that state, score a few action
   sequences of the planner's horizon (the prior's own closed-loop actions and constant sequences)
   twice with the planner's value, ``sum_t gamma^t R(z_t, a_t) + gamma^H Q(z_H, pi(z_H))``:

   - ``model``: on the latents the dynamics model rolls out from the encoded state, as the planner does;
   - ``real``: with the rewards the real env returns for those actions, and Q on the encoder's latent
     of the real observation reached after them.

   Equal ``model`` and ``real`` columns with a wrong ranking point at Q; different ones at the model.
   ``Q`` is the expectation the planner samples: the mean over all Q heads and over 64 policy samples.
   ``Q(z_0, a_0)`` is the root Q of each sequence's first action (mean over all heads), the value the
   policy prior is trained to climb.

``--only noisy random`` plays the planner's training-mode episodes beside uniformly random actions from
the same initial states: whether exploration noise finds what random actions find.

``--set num_samples=512 num_elites=64 num_pi_trajs=24 iterations=6`` checks the same model with another
planner (here the paper's), ``--only planner`` runs only the noise-free planner: whether a larger planner
fixes the failures tells a planner that is too weak from a model or value that is wrong.

The env is built as ``benchmarks/reproduce.py`` builds it (action repeat 2 on ``dm_control/*``).
"""

import argparse
import sys
from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np
import torch as th

from benchmarks.reproduce import default_action_repeat, make_env
from sb3_boom import BOOM
from sb3_boom.boom import PLANNER_SETTINGS
from sb3_boom.losses import two_hot_inv
from sb3_boom.planner import estimate_value, plan
from sb3_boom.policies import WorldModelPolicy

MODES = ("planner, no noise", "planner, with noise", "prior, mean")
# A yardstick, run only when asked for (--only random): what undirected exploration finds from the same states.
RANDOM_MODE = "uniform random"
MODE_NAMES = {**dict(zip(("planner", "noisy", "prior"), MODES, strict=True)), "random": RANDOM_MODE}
POLICY_SAMPLES = 64


def run_episode(model: BOOM, env: gym.Env, seed: int, mode: str, max_steps: int | None) -> float:
    """Return of one episode from the initial state of ``env.reset(seed=seed)``."""
    if mode == RANDOM_MODE:
        space = env.action_space
        rng = np.random.default_rng(seed)  # its own draws per episode: the same actions whatever ran before
        return play_episode(lambda *_: rng.uniform(space.low, space.high).astype(space.dtype), env, seed, max_steps)

    def act(observation: np.ndarray, step: int) -> np.ndarray:
        action, _ = model.policy.predict(
            observation,
            episode_start=np.array([step == 0]),
            deterministic=mode != "planner, with noise",
            use_planner=mode != "prior, mean",
        )
        return action

    return play_episode(act, env, seed, max_steps)


def play_episode(act: Callable[[np.ndarray, int], np.ndarray], env: gym.Env, seed: int, max_steps: int | None = None) -> float:
    """Return of one episode from ``env.reset(seed=seed)`` with ``act(observation, step)`` choosing the env's actions."""
    observation, _ = env.reset(seed=seed)
    episode_return, step, done = 0.0, 0, False
    while not done and (max_steps is None or step < max_steps):
        observation, reward, terminated, truncated, _ = env.step(act(observation, step))
        episode_return += float(reward)
        done = terminated or truncated
        step += 1
    return episode_return


def expected_q(policy: WorldModelPolicy, z: th.Tensor) -> float:
    """``Q(z, pi(z))`` averaged over all heads and :data:`POLICY_SAMPLES` policy samples (one latent ``[1, L]``)."""
    latents = z.expand(POLICY_SAMPLES, -1)
    logits = policy.q_logits(latents, policy.sample_action(latents))
    return float(two_hot_inv(logits, policy.bins).mean())


def root_q(policy: WorldModelPolicy, z: th.Tensor, action: np.ndarray) -> float:
    """``Q(z, a)`` averaged over all heads (one latent ``[1, L]``, one scaled action)."""
    logits = policy.q_logits(z, th.as_tensor(action, dtype=th.float32).view(1, -1))
    return float(two_hot_inv(logits, policy.bins).mean())


def encode_observation(policy: WorldModelPolicy, observation: np.ndarray) -> th.Tensor:
    """The latent ``[1, L]`` of one flat observation."""
    return policy.encode(th.as_tensor(observation, dtype=th.float32).view(1, -1))


def model_value(
    policy: WorldModelPolicy, z: th.Tensor, actions: list[np.ndarray], gamma: float
) -> tuple[float, float, th.Tensor]:
    """Discounted predicted rewards along the model's rollout, ``Q`` at its last latent, and that latent."""
    rewards, discount = 0.0, 1.0
    for action in actions:
        action_tensor = th.as_tensor(action, dtype=th.float32).view(1, -1)
        rewards += discount * float(policy.predict_reward(z, action_tensor))
        z = policy.next_latent(z, action_tensor)
        discount *= gamma
    return rewards, expected_q(policy, z), z


def real_value(
    policy: WorldModelPolicy, env: gym.Env, state: np.ndarray, actions: list[np.ndarray], gamma: float
) -> tuple[float, float, np.ndarray]:
    """Discounted real rewards from the physics ``state``, ``Q`` at the encoded final observation, and that observation."""
    physics = env.unwrapped._env.physics  # type: ignore[attr-defined]
    physics.set_state(state)
    physics.forward()
    rewards, discount, observation = 0.0, 1.0, None
    for action in actions:
        observation, reward, *_ = env.step(action)
        rewards += discount * float(reward)
        discount *= gamma
    return rewards, expected_q(policy, encode_observation(policy, observation)), observation


def probe(model: BOOM, env: gym.Env, seed: int, steps: int) -> list[dict[str, Any]]:
    """Score the prior's closed-loop sequence and constant sequences with model and real latents (see module doc)."""
    policy, horizon, gamma = model.policy, model.horizon, model.gamma
    low = env.action_space.low  # type: ignore[attr-defined]
    observation, _ = env.reset(seed=seed)
    for step in range(steps):
        action, _ = policy.predict(observation, episode_start=np.array([step == 0]), deterministic=True)
        observation, *_ = env.step(action)
    physics = env.unwrapped._env.physics  # type: ignore[attr-defined]
    state = physics.get_state().copy()
    start = observation

    # The prior's own actions, closed loop in the real env, from the probed state.
    prior_actions, obs = [], start
    for _ in range(horizon):
        prior_actions.append(policy.unscale_action(policy.pi(encode_observation(policy, obs)).mean.numpy()[0]))
        obs, *_ = env.step(prior_actions[-1])
    sequences = {"prior (closed loop)": prior_actions}
    for level in (-1.0, -0.3, 0.0, 0.3, 1.0):
        constant = policy.unscale_action(np.full(low.shape, level, dtype=np.float32))
        sequences[f"constant {level:+.1f}"] = [constant] * horizon

    rows = []
    z0 = encode_observation(policy, start)
    for name, actions in sequences.items():
        scaled = [policy.scale_action(np.asarray(action, dtype=np.float32)) for action in actions]
        model_rewards, model_q, z_model = model_value(policy, z0, scaled, gamma)
        real_rewards, real_q, final = real_value(policy, env, state, actions, gamma)
        latent_error = float((z_model - encode_observation(policy, final)).norm())
        discount = gamma**horizon
        rows.append(
            dict(
                sequence=name,
                first_action=float(np.ravel(scaled[0])[0]),
                root_q=root_q(policy, z0, scaled[0]),
                model_value=model_rewards + discount * model_q,
                real_value=real_rewards + discount * real_q,
                model_rewards=model_rewards,
                real_rewards=real_rewards,
                model_q=model_q,
                real_q=real_q,
                latent_error=latent_error,
            )
        )
    return rows


def iteration_trace(policy: WorldModelPolicy, observation: np.ndarray) -> list[dict[str, float]]:
    """
    One planning call from ``observation`` (no warm start), iteration by iteration: the spread of the values
    MPPI ranks its samples by, and the std of the first actions it sampled (the search width of that
    iteration; the last row is the std it hands on as exploration noise). MPPI keeps its elites by rank, so
    it narrows its search even where the values differ by rounding error.
    """
    rows: list[dict[str, float]] = []

    def traced_value(model: Any, z: th.Tensor, sampled: th.Tensor, gamma: float, pi_rollout: Any) -> th.Tensor:
        value = estimate_value(model, z, sampled, gamma, pi_rollout)
        first = sampled[0, 0, :, :]  # [samples, A]: the first action of each sampled sequence
        rows.append({"value_range": float(value.max() - value.min()), "search_std": float(first.std(dim=0).mean())})
        return value

    z = encode_observation(policy, observation)
    result = plan(policy, z, policy.planner, policy.gamma, value_fn=traced_value, deterministic=True)
    rows.append({"value_range": float("nan"), "search_std": float(result.std.mean())})
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="a BOOM model saved with save() (.zip)")
    parser.add_argument("--env", required=True, help="the env id it was trained on")
    parser.add_argument("--episodes", type=int, default=10)
    parser.add_argument("--seed", type=int, default=5000, help="env seed of the first episode")
    parser.add_argument("--fail-below", type=float, default=100.0, help="returns below this count as failures")
    parser.add_argument("--max-episode-steps", type=int, default=None, help="cut episodes short (agent steps)")
    parser.add_argument("--probe-step", type=int, default=None, help="probe the planner's value after K agent steps")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument(
        "--set",
        nargs="+",
        default=[],
        metavar="KEY=VALUE",
        help=f"planner settings for this check, e.g. num_samples=512 iterations=6 (any of {sorted(PLANNER_SETTINGS)})",
    )
    parser.add_argument(
        "--trace-iterations",
        action="store_true",
        help="trace one planning call from the first episode's initial state, iteration by iteration",
    )
    parser.add_argument(
        "--only",
        nargs="+",
        choices=sorted(MODE_NAMES),
        default=None,
        help="run these modes only (default: planner, noisy and prior; random: uniform random actions)",
    )
    args = parser.parse_args(argv)

    th.set_num_threads(args.threads)
    th.manual_seed(args.seed)
    env = make_env(args.env, default_action_repeat(args.env))
    model = BOOM.load(args.model, device="cpu")
    model.policy.set_training_mode(False)
    for item in args.set:
        key, _, value = item.partition("=")
        if key not in PLANNER_SETTINGS or not value:
            sys.exit(f"--set {item}: expected KEY=VALUE with KEY one of {sorted(PLANNER_SETTINGS)}")
        setattr(model, key, type(getattr(model, key))(value))  # BOOM passes it on to its planner
    if args.set:
        print(f"planner: {model.policy.planner}")
    modes = MODES if args.only is None else tuple(MODE_NAMES[name] for name in args.only)
    print(f"{args.model} on {args.env}: {args.episodes} episodes, env seeds {args.seed}..{args.seed + args.episodes - 1}")
    with th.no_grad():
        for mode in modes:
            returns = [run_episode(model, env, args.seed + i, mode, args.max_episode_steps) for i in range(args.episodes)]
            failures = sum(value < args.fail_below for value in returns)
            print(
                f"  {mode:20s} mean {np.mean(returns):7.1f}  failures (< {args.fail_below:g}) {failures}/{len(returns)}"
                f"  returns {[round(value, 1) for value in returns]}"
            )
        if args.trace_iterations:
            observation, _ = env.reset(seed=args.seed)
            print(f"\nOne planning call from the initial state of episode seed {args.seed}, iteration by iteration:")
            rows = iteration_trace(model.policy, observation)
            for index, row in enumerate(rows[:-1]):
                print(
                    f"  iteration {index}: value range {row['value_range']:.3g}"
                    f"  std of the sampled first actions {row['search_std']:.3f}"
                )
            print(
                f"  handed on as exploration noise: std {rows[-1]['search_std']:.3f} (min_std {model.policy.planner.min_std})"
            )
        if args.probe_step is not None:
            if not args.env.startswith("dm_control/"):
                sys.exit("--probe-step needs a dm_control/* task (it restores the physics state)")
            print(
                f"\nProbe after {args.probe_step} noise-free planner steps "
                f"(episode seed {args.seed}), horizon {model.horizon}:"
            )
            print(
                f"  {'sequence':20s} {'a_0':>6s} {'model V':>8s} {'real V':>8s} {'model R':>8s} {'real R':>8s}"
                f" {'model Q':>8s} {'real Q':>8s} {'|z_H - h(o_H)|':>15s} {'Q(z_0, a_0)':>12s}"
            )
            for row in probe(model, env, args.seed, args.probe_step):
                print(
                    f"  {row['sequence']:20s} {row['first_action']:6.2f} {row['model_value']:8.2f} {row['real_value']:8.2f}"
                    f" {row['model_rewards']:8.3f} {row['real_rewards']:8.3f} {row['model_q']:8.2f} {row['real_q']:8.2f}"
                    f" {row['latent_error']:15.3f} {row['root_q']:12.2f}"
                )


if __name__ == "__main__":
    main()
