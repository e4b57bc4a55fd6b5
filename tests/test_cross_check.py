"""
Our training update against the authors' code (molumitu/BOOM_MBRL), without their code: the fixture holds
two of their updates of a small model (inputs, random draws, and what came out), written by
``python -m studies.cross_check --authors-path <their code> --env dm_control/cartpole-swingup-v0
--write-fixture tests/data/authors_updates.pt --seed 0``.
"""

import pathlib

import pytest
import torch as th

from benchmarks.reproduce import default_action_repeat, make_env
from sb3_boom.buffers import SequenceReplayBufferSamples
from studies import cross_check
from studies.research_switches import AuthorsScheduleBOOM

ROOT = pathlib.Path(__file__).resolve().parents[1]
FIXTURE = ROOT / "tests" / "data" / "authors_updates.pt"


def replay_authors_updates(fixture: dict) -> list[dict]:
    """Our model rebuilt with the fixture's settings and weights, updated on its batches with its draws."""
    env_id = fixture["env_id"]
    env = make_env(env_id, default_action_repeat(env_id))
    model = AuthorsScheduleBOOM("MlpPolicy", env, device="cpu", **fixture["kwargs"])
    model.policy.load_state_dict(fixture["state_dict"])
    assert model.gamma == pytest.approx(fixture["discount"])
    batches = [SequenceReplayBufferSamples(**batch) for batch in fixture["batches"]]
    return cross_check.our_updates(model, batches, fixture["noises"], fixture["head_pairs"])


def test_our_update_equals_the_authors_update():
    """Losses, clipped gradients and weights (target Q and value scale included) after each of two updates."""
    fixture = th.load(FIXTURE, weights_only=True)
    ours = replay_authors_updates(fixture)
    assert len(ours) == len(fixture["theirs"]) == 2
    for index, (our_record, their_record) in enumerate(zip(ours, fixture["theirs"], strict=True)):
        for name, value in their_record["stats"].items():
            assert our_record["stats"][name] == pytest.approx(value, rel=1e-5, abs=1e-7), f"update {index + 1}: {name}"
        for part in ("grads", "weights"):
            assert our_record[part].keys() == their_record[part].keys()
            for key, theirs in their_record[part].items():
                message = f"update {index + 1}: {part} {key}"
                th.testing.assert_close(our_record[part][key], theirs, rtol=1e-4, atol=1e-6, msg=message)
