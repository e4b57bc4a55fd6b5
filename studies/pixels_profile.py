"""
Where the time of an agent step goes when BOOM learns DMC from pixels (docs/pixels.md): rendering
and simulation, planning (MPPI, encoder included), and the update (conv forward/backward of the
pixel encoder on the batch's ``(H + 1) x B`` stacked frames, and the rest of the update).

    python -m studies.pixels_profile --task finger-spin --steps 200 --threads 1

Measured on a model after ``--warmup`` random steps (so that a batch can be drawn), with the preset
``cpu_pixels`` unless ``--boom-kwargs`` changes it. Prints one line per part and the agent steps/s
of a training step (env step + planning + one update) and writes them as JSON with ``--out``.
"""

import argparse
import json
import os
import pathlib
import time

import numpy as np
import torch as th
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.vec_env import VecFrameStack

from benchmarks.reproduce import merge, parse_kwargs
from sb3_boom import BOOM
from sb3_boom.dmc import FRAME_STACK
from sb3_boom.envs import make_dmc
from sb3_boom.presets import PRESETS


def timed(fn, repeats: int) -> float:
    """Mean seconds of ``fn()`` over ``repeats`` calls, after one untimed call (``compile=True`` compiles in it)."""
    fn()
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - start) / repeats


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--task", default="finger-spin", help="<domain>-<task> of the Control Suite")
    parser.add_argument("--steps", type=int, default=100, help="repeats of each measured part")
    parser.add_argument("--warmup", type=int, default=300, help="random agent steps collected first")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--preset", default="cpu_pixels", choices=sorted(PRESETS))
    parser.add_argument("--boom-kwargs", nargs="*", default=[], metavar="KEY=VALUE")
    parser.add_argument("--out", type=pathlib.Path, default=None)
    args = parser.parse_args(argv)
    th.set_num_threads(args.threads)
    env = VecFrameStack(make_vec_env(make_dmc, env_kwargs=dict(env_id=args.task, pixels=True), seed=0), FRAME_STACK)
    kwargs = merge(dict(PRESETS[args.preset]), parse_kwargs(args.boom_kwargs))
    kwargs.update(learning_starts=args.warmup)
    model = BOOM("CnnPolicy", env, seed=0, **kwargs)
    model.learn(args.warmup)  # random steps only: fills the buffer without updates
    policy, batch_size = model.policy, model.batch_size

    obs = env.reset()
    actions = np.zeros((1, *env.action_space.shape), dtype=np.float32)
    env_step = timed(lambda: env.step(actions), args.steps)
    render = timed(lambda: env.envs[0].unwrapped.render(), args.steps)  # one frame, as each agent step renders

    obs_tensor, _ = policy.obs_to_tensor(obs)
    flat = policy.flatten_observation(obs_tensor)
    policy.set_training_mode(False)
    plan = timed(lambda: policy.plan(flat), args.steps)

    batch = model.replay_buffer.sample(batch_size)
    policy.set_training_mode(True)
    sample = timed(lambda: model.replay_buffer.sample(batch_size), args.steps)
    update = timed(lambda: model._update(model.replay_buffer.sample(batch_size)), args.steps) - sample

    # The pixel encoder alone on the batch's frames: forward (online + target encodings, as the loss) and backward.
    def conv_forward_backward() -> None:
        with th.no_grad():
            policy.encode(batch.observations[1:])
        policy.encode(batch.observations[0]).sum().backward()

    def conv_forward() -> None:
        with th.no_grad():
            policy.encode(batch.observations)

    conv_fwd = timed(conv_forward, args.steps)
    conv_fwd_bwd = timed(conv_forward_backward, args.steps)
    policy.optimizer.zero_grad(set_to_none=True)
    step = env_step + plan + sample + update
    result = dict(
        env_step_s=env_step,
        render_s=render,
        plan_s=plan,
        sample_s=sample,
        update_s=update,
        conv_forward_s=conv_fwd,
        conv_forward_backward_s=conv_fwd_bwd,
        agent_steps_per_s=1.0 / step,
        batch_size=batch_size,
        threads=args.threads,
    )
    print(f"{args.task}, preset {args.preset} {args.boom_kwargs}, batch {batch_size}, {args.threads} thread(s)", end="")
    print(f", {os.cpu_count()} cpus")
    for key, label in [
        ("env_step_s", "env step (2 physics steps + 1 render)"),
        ("render_s", "  of which one 64x64 render"),
        ("plan_s", "planning (MPPI, encoder included)"),
        ("sample_s", "replay sample (stacks rebuilt)"),
        ("update_s", "update (world model + prior)"),
        ("conv_forward_backward_s", "  conv encoder share: fwd on (H+1)B, bwd on B"),
    ]:
        print(f"  {label:48s} {1e3 * result[key]:8.1f} ms  ({100 * result[key] / step:5.1f}% of a step)")
    print(f"  agent steps/s (training step = env + plan + sample + update): {result['agent_steps_per_s']:.2f}")
    if args.out:
        args.out.write_text(json.dumps(result, indent=2))
    env.close()
    return result


if __name__ == "__main__":
    main()
