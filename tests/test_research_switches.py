"""The study switches of studies/research_switches.py: the authors' training schedule, saved and loaded."""

import pytest
import torch as th

from sb3_boom import BOOM
from studies.research_switches import AuthorsScheduleBOOM


def _spy_on_training(model: BOOM) -> tuple[list, list]:
    """Record the batches the replay buffer hands out and the batches the updates run on."""
    drawn, used = [], []
    sample, update = model.replay_buffer.sample, model._update

    def recording_sample(*args, **kwargs):
        drawn.append((model.num_timesteps, sample(*args, **kwargs)))
        return drawn[-1][1]

    def recording_update(batch):
        used.append(batch)
        return update(batch)

    model.replay_buffer.sample, model._update = recording_sample, recording_update
    return drawn, used


def test_authors_quirks_switch_the_training_schedule(monkeypatch, tiny_kwargs):
    # Ours: every update on a fresh batch, the pre-training burst included.
    model = BOOM("MlpPolicy", "Pendulum-v1", **tiny_kwargs)
    drawn, used = _spy_on_training(model)
    model.learn(50)  # 40 warm-up steps, a burst of 40 updates, then one per step
    assert len(used) == 49 and [id(b) for b in used] == [id(b) for _, b in drawn]

    model = AuthorsScheduleBOOM("MlpPolicy", "Pendulum-v1", authors_quirks=["pretrain_one_batch"], **tiny_kwargs)
    drawn, used = _spy_on_training(model)
    model.learn(50)
    assert len(used) == 49 and len(drawn) == 10
    assert all(batch is drawn[0][1] for batch in used[:40])  # the whole burst on one batch
    assert [id(b) for b in used[40:]] == [id(b) for _, b in drawn[1:]]

    quirks = ("pretrain_one_batch", "prefetch_100_batches")
    model = AuthorsScheduleBOOM("MlpPolicy", "Pendulum-v1", authors_quirks=quirks, **tiny_kwargs)
    drawn, used = _spy_on_training(model)
    model.learn(120)
    # 100 batches drawn at the first update (step 41) and again at step 100, served in the order drawn.
    assert [step for step, _ in drawn] == [41] * 100 + [100] * 100
    assert len(used) == 40 + 79
    served = [id(b) for _, b in drawn[:59]] + [id(b) for _, b in drawn[100:121]]
    assert [id(used[0])] * 40 + [id(b) for b in used[40:]] == [served[0]] * 40 + served[1:]

    # The world model's clip counts the prior's gradients of the previous update only under the quirk.
    for quirks in ([], ["clip_with_prior_grads"]):
        model = AuthorsScheduleBOOM("MlpPolicy", "Pendulum-v1", authors_quirks=quirks, **tiny_kwargs)
        actor = {id(p) for p in model.policy.actor.parameters()}
        stale_prior_grads_counted = []
        clip = th.nn.utils.clip_grad_norm_

        def recording_clip(parameters, *args, clip=clip, actor=actor, counted=stale_prior_grads_counted, **kwargs):
            parameters = list(parameters)
            if not all(id(p) in actor for p in parameters):  # the world model's clip
                counted.append(any(id(p) in actor and p.grad is not None for p in parameters))
            return clip(parameters, *args, **kwargs)

        monkeypatch.setattr(th.nn.utils, "clip_grad_norm_", recording_clip)
        model.learn(45)
        monkeypatch.undo()
        assert stale_prior_grads_counted == [False] + [bool(quirks)] * 43

    for bad in ("pretrain_one_batch", ["fresh_batches"]):
        with pytest.raises(ValueError, match="authors_quirks"):
            AuthorsScheduleBOOM("MlpPolicy", "Pendulum-v1", authors_quirks=bad, **tiny_kwargs)


def test_authors_schedule_saves_and_loads_its_quirks_and_boom_refuses_them(tmp_path, tiny_kwargs):
    quirks = ["pretrain_one_batch", "clip_with_prior_grads"]
    model = AuthorsScheduleBOOM("MlpPolicy", "Pendulum-v1", authors_quirks=quirks, **tiny_kwargs)
    model.learn(45)
    model.save(tmp_path / "authors")
    loaded = AuthorsScheduleBOOM.load(tmp_path / "authors")
    assert list(loaded.authors_quirks) == quirks  # saved as JSON: a list
    for key, value in model.policy.state_dict().items():
        assert th.equal(loaded.policy.state_dict()[key], value)
    # BOOM itself does not take the study setting: it says which class does instead of ignoring it.
    with pytest.raises(ValueError, match="AuthorsScheduleBOOM"):
        BOOM.load(tmp_path / "authors")
    # A BOOM model loads into the study class, with no quirk on.
    BOOM("MlpPolicy", "Pendulum-v1", **tiny_kwargs).save(tmp_path / "boom")
    assert list(AuthorsScheduleBOOM.load(tmp_path / "boom").authors_quirks) == []
