import os

# Off-screen rendering for every test in this process: dm_control picks its OpenGL backend when it is first
# imported, and the first test to import it need not be a pixel test (no display here, nor in CI).
os.environ.setdefault("MUJOCO_GL", "egl")

import pytest  # noqa: E402
import torch as th  # noqa: E402

from sb3_boom.presets import PRESETS  # noqa: E402

# Two cores on CI: keep torch from oversubscribing them when pytest runs envs in subprocesses.
th.set_num_threads(max(1, min(2, os.cpu_count() or 1)))

# Networks and planner small enough for a unit test to train for a few hundred steps in seconds.
TINY = PRESETS["tiny"]
TINY_POLICY = TINY["policy_kwargs"]


@pytest.fixture
def tiny_kwargs():
    return {**TINY, "policy_kwargs": dict(TINY_POLICY)}
