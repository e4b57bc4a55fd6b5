"""
The training episodes stored in a BOOM replay buffer: each episode's return and the mean of one
observation column over its last steps, in the order they were collected, and how often episodes end
in the lower of two modes, quarter by quarter of training, with the planner's mean std (its exploration
noise) in each quarter. A local optimum the agent does not leave
(a walker that sits instead of standing) shows as a lower mode that does not shrink.

    python -m studies.training_episodes --checkpoint <reproduce.py --checkpoint-dir>/<run>/checkpoint \\
        --column 0 --last 50

``--column``: an index into the stored (flattened) observation, e.g. 0 = the torso height of the
flattened ``dm_control/walker-*`` observation (its keys sorted: height, orientations, velocity).
``--first N`` adds the column's mean over each episode's first N steps: where it started (``--first 1``
on ``dm_control/pendulum-swingup``'s column 0, the pole's cosine, tells the episodes that start upright).
``--split``: the return that separates the two modes (default: halfway between the lowest and highest).
"""

import argparse
import pathlib
import sys

import numpy as np
from stable_baselines3.common.save_util import load_from_pkl

from sb3_boom.buffers import SequenceReplayBuffer
from sb3_boom.planner import RANDOM_ACTION_STD


def written_slots(buffer: SequenceReplayBuffer, env: int = 0) -> np.ndarray:
    """The slots of env ``env`` that hold data, oldest first."""
    written = min(int(buffer.slots_advanced[env]), buffer.buffer_size)
    return np.arange(int(buffer.env_pos[env]) - written, int(buffer.env_pos[env])) % buffer.buffer_size


def episodes(buffer: SequenceReplayBuffer, env: int = 0) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """
    The complete episodes of one env, oldest first: (rewards, stored observations, the planner's std of each
    action; ``RANDOM_ACTION_STD`` for the random warm-up's actions) per episode.
    """
    order = written_slots(buffer, env)
    steps = buffer.episode_steps[order, env]
    rewards, observations = buffer.rewards[order, env], buffer.observations[order, env]
    planner_stds = buffer.planner_stds[order, env]
    starts = np.flatnonzero(steps == 0)  # an episode whose start was overwritten is left out
    result = []
    for begin, end in zip(starts, [*starts[1:], steps.size], strict=True):
        if steps[end - 1] != -1:  # the slot after an episode's last transition holds its final observation
            continue  # still running
        result.append((rewards[begin : end - 1], observations[begin : end - 1], planner_stds[begin : end - 1]))
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", type=pathlib.Path, required=True, help="folder with replay_buffer.pkl")
    parser.add_argument("--column", type=int, default=None, help="observation column to average over the last steps")
    parser.add_argument("--last", type=int, default=50, help="how many last steps of each episode to average over")
    parser.add_argument("--first", type=int, default=None, help="also average the column over the first N steps")
    parser.add_argument("--split", type=float, default=None, help="return separating the lower and upper modes")
    args = parser.parse_args(argv)
    if args.first is not None and args.column is None:
        parser.error("--first averages an observation column: give it with --column")

    path = args.checkpoint / "replay_buffer.pkl" if args.checkpoint.is_dir() else args.checkpoint
    if not path.is_file():
        sys.exit(f"{path} does not exist: pass the checkpoint folder of a reproduce.py run (it holds replay_buffer.pkl)")
    buffer = load_from_pkl(path)
    if not isinstance(buffer, SequenceReplayBuffer):
        sys.exit(f"{path} holds a {type(buffer).__name__}, not a BOOM SequenceReplayBuffer")
    runs = episodes(buffer)
    if not runs:
        sys.exit(f"{path} holds no complete episode yet")
    returns = np.array([rewards.sum() for rewards, _, _ in runs])
    split = args.split if args.split is not None else (returns.min() + returns.max()) / 2
    header = f"{'episode':>7} {'length':>6} {'return':>8}"
    if args.column is not None:
        header += f" {f'obs[{args.column}], last {args.last}':>18}"
    if args.first is not None:
        header += f" {f'obs[{args.column}], first {args.first}':>18}"
    print(header)
    for index, (rewards, observations, _) in enumerate(runs):
        line = f"{index:>7} {rewards.size:>6} {rewards.sum():>8.1f}"
        if args.column is not None:
            line += f" {observations[-args.last :, args.column].mean():>18.3f}"
        if args.first is not None:
            line += f" {observations[: args.first, args.column].mean():>18.3f}"
        print(line + ("  (lower mode)" if rewards.sum() < split else ""))
    print(f"\nreturn split at {split:.1f}: episodes in the lower mode, by quarter of the {len(runs)} episodes")
    # The planner's std of the actions it chose (its exploration noise), warm-up actions left out: how widely it
    # explored in each part of training.
    for quarter, indices in enumerate(np.array_split(np.arange(len(runs)), 4), start=1):
        if not indices.size:
            continue
        chunk = returns[indices]
        planned = np.concatenate([runs[i][2] for i in indices])
        planned = planned[planned != RANDOM_ACTION_STD]
        noise = f", planner std {planned.mean():.3f}" if planned.size else ", random warm-up only"
        print(f"  quarter {quarter}: {int((chunk < split).sum())}/{chunk.size}  (mean return {chunk.mean():.1f}{noise})")


if __name__ == "__main__":
    main()
