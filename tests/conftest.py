import os

import pytest
import torch as th

from sb3_boom.presets import PRESETS

# Two cores on CI: keep torch from oversubscribing them when pytest runs envs in subprocesses.
th.set_num_threads(max(1, min(2, os.cpu_count() or 1)))

# Networks and planner small enough for a unit test to train for a few hundred steps in seconds.
TINY = PRESETS["tiny"]
TINY_POLICY = TINY["policy_kwargs"]


@pytest.fixture
def tiny_kwargs():
    return {**TINY, "policy_kwargs": dict(TINY_POLICY)}
