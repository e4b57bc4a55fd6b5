"""
Named BOOM configurations: a model size plus planner and batch settings, used as
``BOOM("MlpPolicy", env, **PRESETS["cpu"])`` and mirrored in ``hyperparams/boom.yml``.
"""

from typing import Any

PRESETS: dict[str, dict[str, Any]] = {
    # The paper's setting (BOOM's defaults): 5M model, 512 samples, 64 elites, 6 (8) iterations.
    "paper": dict(policy_kwargs=dict(model_size=5)),
    # For machines without a GPU: measured on 2 CPU cores in docs/benchmarks.md (>= 25 agent
    # steps/s on cartpole-swingup, where it still learns).
    "cpu": dict(
        policy_kwargs=dict(model_size="cpu"),
        num_samples=128,
        num_elites=16,
        num_pi_trajs=8,
        iterations=3,
        batch_size=128,
    ),
}
