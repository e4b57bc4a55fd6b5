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


def _assert_same_state(model, other) -> None:
    """Every tensor of the policy (networks, target Q, running Q scale) and of both optimizers is equal."""
    ours, theirs = model.policy.state_dict(), other.policy.state_dict()
    assert ours.keys() == theirs.keys()
    for name in ours:
        assert th.equal(ours[name], theirs[name]), name
    for optimizer, other_optimizer in (
        (model.policy.optimizer, other.policy.optimizer),
        (model.policy.pi_optimizer, other.policy.pi_optimizer),
    ):
        states, other_states = optimizer.state_dict()["state"], other_optimizer.state_dict()["state"]
        assert states.keys() == other_states.keys() and len(states) > 0
        for index, state in states.items():
            assert state.keys() == other_states[index].keys()
            for key, value in state.items():
                assert th.equal(value, other_states[index][key]), (index, key)


@pytest.fixture
def assert_same_state():
    """Check that two BOOM models hold equal policy tensors and optimizer states (see _assert_same_state)."""
    return _assert_same_state
