"""
Helpers of the distributed studies (distributed_scaling.py, fault_drill.py) and of tests/test_distributed.py:
a tiny BOOM config for Pendulum-v1 and RL Zoo tuning workers started as separate processes, as on separate
machines.
"""

import os
import pathlib
import subprocess
import sys

import yaml

# BOOM small enough for a 200-step trial in seconds on one core; the Zoo's sampler sets the planner,
# lambda_align and the learning rate.
TINY_ZOO_CONFIG = {
    "Pendulum-v1": {
        "policy": "MlpPolicy",
        "n_timesteps": 200,
        "policy_kwargs": "dict(latent_dim=16, mlp_dim=32, enc_dim=32, num_q=2, num_bins=21)",
        "batch_size": 16,
        "learning_starts": 40,
        "buffer_size": 5000,
        # 50-step episodes: an evaluation costs a quarter of Pendulum's 200 steps (the eval env gets them too)
        "env_kwargs": {"max_episode_steps": 50},
    }
}


def worker_env(heartbeat_s: int, grace_s: int) -> dict[str, str]:
    return {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
        "MPLBACKEND": "Agg",
        "SB3_BOOM_HEARTBEAT_S": str(heartbeat_s),
        "SB3_BOOM_GRACE_S": str(grace_s),
    }


def start_zoo_worker(
    folder: pathlib.Path,
    storage: str,
    study_name: str,
    max_total_trials: int,
    log_name: str,
    heartbeat_s: int = 1,
    grace_s: int = 3,
    n_evaluations: int = 2,
) -> subprocess.Popen:
    """``python -m rl_zoo3.train --algo boom --env Pendulum-v1 -optimize`` on the shared study, output in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    config = folder / "tiny.yml"
    if not config.exists():
        config.write_text(yaml.safe_dump(TINY_ZOO_CONFIG))
    command = [
        sys.executable, "-m", "rl_zoo3.train", "--algo", "boom", "--env", "Pendulum-v1", "-conf", str(config),
        "-optimize", "--storage", storage, "--study-name", study_name, "--max-total-trials", str(max_total_trials),
        "--n-evaluations", str(n_evaluations), "--eval-episodes", "1", "--sampler", "random", "--pruner", "median",
        "--n-startup-trials", "2", "--num-threads", "1", "-f", str(folder / "logs"), "--no-optim-plots",
    ]  # fmt: skip
    log = open(folder / log_name, "w")
    return subprocess.Popen(
        command, cwd=folder, env=worker_env(heartbeat_s, grace_s), stdout=log, stderr=subprocess.STDOUT, text=True
    )
