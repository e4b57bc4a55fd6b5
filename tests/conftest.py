import os

import pytest
import torch as th

# Two cores on CI: keep torch from oversubscribing them when pytest runs envs in subprocesses.
th.set_num_threads(max(1, min(2, os.cpu_count() or 1)))

# Networks and planner small enough for a unit test to train for a few hundred steps in seconds.
TINY_POLICY = dict(latent_dim=16, mlp_dim=32, enc_dim=32, num_q=2, num_bins=21)
TINY = dict(
    policy_kwargs=TINY_POLICY,
    num_samples=32,
    num_elites=4,
    num_pi_trajs=4,
    iterations=2,
    batch_size=16,
    learning_starts=40,
    buffer_size=5_000,
)


@pytest.fixture
def tiny_kwargs():
    return {**TINY, "policy_kwargs": dict(TINY_POLICY)}
