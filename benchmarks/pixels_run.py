"""
Learning curves of BOOM from pixels on the DeepMind Control Suite (docs/pixels.md): benchmarks/reproduce.py
with the pixel envs of :mod:`sb3_boom.dmc` (64x64 RGB, TD-MPC2's camera, action repeat 2, 3 frames
stacked by ``VecFrameStack``), the ``CnnPolicy`` and the ``cpu_pixels`` preset. Same CSV columns
(``method,task,step,reward,seed,policy,wall_s,cpu_s``; ``step`` in env steps), same checkpoints and resuming.
Every option of reproduce.py applies; ``--tasks`` takes ``dmc_pixels/<domain>-<task>-v0`` ids.

    MUJOCO_GL=egl nice -n 10 python benchmarks/pixels_run.py --tasks dmc_pixels/finger-spin-v0 --seeds 0 \
        --budget 100000 --eval-freq 10000 --eval-episodes 5 --threads 1 \
        --out benchmarks/results/pixels --checkpoint-dir /work/pixel_logs/checkpoints
"""

import sys

from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.vec_env import VecEnv, VecFrameStack

from sb3_boom.dmc import ACTION_REPEAT, FRAME_STACK, NAMESPACE
from sb3_boom.envs import make_dmc

if __package__:  # imported as benchmarks.pixels_run
    from benchmarks import reproduce
else:  # python benchmarks/pixels_run.py: this folder is sys.path[0]
    import reproduce

PREFIX = NAMESPACE + "/"
_task_name = reproduce.task_name


def task_name(env_id: str) -> str:
    """``dmc_pixels/finger-spin-v0`` -> ``finger-spin`` (the reference curves' name); other ids as reproduce.py."""
    if env_id.startswith(PREFIX):
        return env_id[len(PREFIX) :].rsplit("-v", 1)[0]
    return _task_name(env_id)


def make_venv(spec: reproduce.RunSpec, n_envs: int, seed: int) -> VecEnv:
    """Pixel envs (action repeat ``spec.action_repeat`` inside, one frame per agent step), 3 frames stacked."""
    if not spec.env_id.startswith(PREFIX):
        raise SystemExit(f"pixels_run.py takes {PREFIX}<domain>-<task>-v0 ids, got {spec.env_id}")
    env_kwargs = dict(env_id=spec.env_id, action_repeat=spec.action_repeat, pixels=True)
    return VecFrameStack(make_vec_env(make_dmc, n_envs=n_envs, seed=seed, env_kwargs=env_kwargs), FRAME_STACK)


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    defaults = {
        "--preset": "cpu_pixels",
        "--action-repeat": str(ACTION_REPEAT),
        "--tasks": PREFIX + "finger-spin-v0",
    }
    for flag, value in defaults.items():
        if flag not in argv:
            argv += [flag, value]
    if not any(item.startswith("policy=") for item in argv):
        if "--boom-kwargs" in argv:
            argv.insert(argv.index("--boom-kwargs") + 1, "policy=CnnPolicy")
        else:
            argv += ["--boom-kwargs", "policy=CnnPolicy"]
    if "--name" not in argv:
        argv += ["--name", "boom-pixels"]
    reproduce.task_name = task_name
    reproduce.make_venv = make_venv
    reproduce.main(argv)


if __name__ == "__main__":
    main()
