"""
Does the world model's latent collapse on a task's stored data? Trains a fresh BOOM on a replay buffer
saved by a run (no env steps: updates only) and reports, every ``--every`` updates, how much the latents
of stored observations differ from each other and whether the reward head tells the rewarded transitions
from the others. A latent that hardly depends on the observation (its spread over observations near 0)
gives the reward and Q heads nothing to tell states apart, and the planner nothing to steer by.

    python -m studies.latent_collapse --checkpoint <run's checkpoint folder> --env dmc_pixels/finger-spin-v0 \\
        --episodes 5 --updates 2500 --every 250 [--boom-kwargs "dict(consistency_coef=2.0)"]

``--trained --updates 0`` probes the run's own model (``model.zip`` beside the buffer) as it was saved.
``--episodes 5`` keeps only the random warm-up's episodes: the data of the pre-training burst. A state run
(``--env dm_control/finger-spin-v0 --preset cpu --policy-kwargs "dict(model_size='cpu')"``) on its own
buffer gives the same comparison for states.

Columns: ``spread``: std over 512 stored observations of each latent coordinate, averaged over the
coordinates (SimNorm latents lie in [0, 1]); ``reward+`` / ``reward0``: mean predicted reward on the
transitions rewarded above ``--threshold`` (default 0) and on up to 512 of the others; ``consistency``,
``reward loss``: the training losses of the last block of updates.
"""

import argparse
import pathlib
import time

import numpy as np
import torch as th
from stable_baselines3.common.logger import Logger
from stable_baselines3.common.save_util import load_from_pkl
from stable_baselines3.common.vec_env import DummyVecEnv, VecFrameStack

from benchmarks.reproduce import make_env
from sb3_boom import BOOM
from sb3_boom.buffers import SequenceReplayBuffer
from sb3_boom.dmc import ACTION_REPEAT, FRAME_STACK, NAMESPACE
from sb3_boom.envs import make_dmc
from sb3_boom.presets import PRESETS
from studies.training_episodes import written_slots


def stored_slots(buffer: SequenceReplayBuffer, env: int = 0) -> np.ndarray:
    """Slots of env ``env`` that hold a transition (not an episode's final observation or older frames)."""
    slots = written_slots(buffer, env)
    return slots[buffer.episode_steps[slots, env] >= 0]


def keep_first_episodes(buffer: SequenceReplayBuffer, episodes: int) -> None:
    """Rewind env 0 of a buffer that never wrapped to the end of its first ``episodes`` episodes (the rest unseen)."""
    if buffer.n_envs != 1 or buffer.slots_advanced[0] > buffer.buffer_size:
        raise SystemExit("--episodes takes a one-env buffer that has not wrapped around.")
    starts = np.flatnonzero(buffer.episode_steps[: int(buffer.env_pos[0]), 0] == 0)
    if starts.size <= episodes:
        raise SystemExit(f"The buffer holds {starts.size} episode starts; --episodes must be fewer.")
    # From the next episode's first transition on, nothing is seen; its older frames (pixels) sit just before it.
    buffer.env_pos[0] = buffer.slots_advanced[0] = starts[episodes]
    buffer.current_episode_step[0] = 0


def probe(
    model: BOOM, buffer: SequenceReplayBuffer, spread_slots: np.ndarray, rewarded: np.ndarray, unrewarded: np.ndarray
) -> dict[str, float]:
    """Latent spread over ``spread_slots`` and the mean predicted reward on rewarded and unrewarded slots."""
    policy = model.policy
    policy.set_training_mode(False)

    def encode(slots: np.ndarray) -> th.Tensor:
        observations = buffer._observations_at(slots, np.zeros_like(slots))
        return policy.encode(th.as_tensor(observations, device=policy.device))

    def reward(slots: np.ndarray) -> float:
        actions = th.as_tensor(buffer.actions[slots, 0], device=policy.device)
        return float(policy.predict_reward(encode(slots), actions).mean())

    with th.no_grad():
        spread = float(encode(spread_slots).std(0).mean())
        return {"spread": spread, "reward+": reward(rewarded), "reward0": reward(unrewarded)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", type=pathlib.Path, required=True, help="folder with replay_buffer.pkl")
    parser.add_argument("--env", required=True, help="the run's env id (dmc_pixels/<task>-v0: 3 frames stacked)")
    parser.add_argument("--action-repeat", type=int, default=ACTION_REPEAT, help="of a state env (pixel envs: 2)")
    parser.add_argument("--trained", action="store_true", help="start from the run's model.zip instead of a fresh model")
    parser.add_argument("--preset", default="cpu_pixels", choices=sorted(PRESETS))
    parser.add_argument("--policy-kwargs", default=None, help="replaces the preset's policy_kwargs (a Python dict)")
    parser.add_argument("--boom-kwargs", default=None, help="BOOM arguments replacing the preset's (a Python dict)")
    parser.add_argument("--episodes", type=int, default=None, help="keep only the first N episodes (5: the random warm-up)")
    parser.add_argument("--threshold", type=float, default=0.0, help="a transition rewarded above it counts as rewarded")
    parser.add_argument("--updates", type=int, default=3000)
    parser.add_argument("--every", type=int, default=250)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    th.set_num_threads(args.threads)

    buffer = load_from_pkl(args.checkpoint / "replay_buffer.pkl")
    if args.episodes is not None:
        keep_first_episodes(buffer, args.episodes)
    pixels = args.env.startswith(NAMESPACE + "/")
    if pixels:
        venv = VecFrameStack(DummyVecEnv([lambda: make_dmc(args.env, action_repeat=ACTION_REPEAT, pixels=True)]), FRAME_STACK)
    else:
        venv = DummyVecEnv([lambda: make_env(args.env, args.action_repeat)])
    # A literal dict, as the RL Zoo's YAML writes them: dict(key=value, ...).
    overrides = eval(args.boom_kwargs, {"dict": dict}) if args.boom_kwargs else {}
    if args.trained:  # the run's own settings, with --boom-kwargs over them
        model = BOOM.load(args.checkpoint / "model.zip", env=venv, device="cpu", **overrides)
        kwargs = overrides
    else:
        kwargs = dict(PRESETS[args.preset])
        if args.policy_kwargs:
            kwargs["policy_kwargs"] = eval(args.policy_kwargs, {"dict": dict})
        kwargs.update(overrides)
        model = BOOM("CnnPolicy" if pixels else "MlpPolicy", venv, seed=args.seed, **kwargs)
    model.set_logger(Logger(folder=None, output_formats=[]))
    model.replay_buffer = buffer
    model._pretrained = True  # updates in blocks of --every, no burst

    slots = stored_slots(buffer)
    rng = np.random.default_rng(args.seed)
    above = buffer.rewards[slots, 0] > args.threshold
    if above.all() or not above.any():
        raise SystemExit(f"All or none of the stored rewards are above --threshold {args.threshold}: nothing to tell apart.")
    rewarded, others = slots[above], slots[~above]
    unrewarded = rng.choice(others, min(512, others.size), replace=False)
    spread_slots = rng.choice(slots, min(512, slots.size), replace=False)
    print(f"{slots.size} transitions, {rewarded.size} rewarded; settings {kwargs}")
    print(
        f"{'updates':>8} {'spread':>8} {'reward+':>8} {'reward0':>8} {'consistency':>12} {'reward loss':>12} {'s/update':>9}"
    )
    done = 0
    while True:
        row = probe(model, buffer, spread_slots, rewarded, unrewarded)
        consistency, reward_loss = (
            model.logger.name_to_value.get(f"train/{key}", np.nan) for key in ("consistency_loss", "reward_loss")
        )
        line = f"{done:>8} {row['spread']:>8.4f} {row['reward+']:>8.3f} {row['reward0']:>8.3f}"
        print(f"{line} {consistency:>12.4f} {reward_loss:>12.4f}", end="", flush=True)
        if done >= args.updates:
            print()
            break
        start = time.perf_counter()
        model.train(args.every, model.batch_size)
        print(f" {(time.perf_counter() - start) / args.every:>9.3f}", flush=True)
        done += args.every


if __name__ == "__main__":
    main()
