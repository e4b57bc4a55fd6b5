"""
The studies (``python -m studies.<name>``): each one run on a small case, or its core checked, so that a
study documented on the Validation page (and the pages it serves) still runs as documented.
"""

import json
import os
import pathlib
import subprocess
import sys

import gymnasium as gym
import numpy as np
import pytest
import torch as th

from benchmarks.reproduce import make_env
from sb3_boom import BOOM
from sb3_boom.planner import RANDOM_ACTION_STD
from studies import cross_check, planner_check, speed_floor, training_episodes

ROOT = pathlib.Path(__file__).resolve().parents[1]


def run_study(name: str, *args: str, timeout: float = 300) -> str:
    """``python -m studies.<name> ...`` from the repository root; its stdout (fail with its output otherwise)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MPLBACKEND": "Agg"}
    result = subprocess.run(
        [sys.executable, "-m", f"studies.{name}", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout
    )
    assert result.returncode == 0, f"studies.{name} exited with {result.returncode}:\n{result.stdout}\n{result.stderr[-4000:]}"
    return result.stdout


def test_authors_curve_exits_cleanly_without_their_code(tmp_path):
    assert "nothing to run" in run_study("authors_curve").lower()
    stdout = run_study("authors_curve", "--authors-path", str(tmp_path))
    assert "does not import" in stdout and "Nothing to run" in stdout


def test_compare_authors_exits_cleanly_without_their_code(tmp_path):
    assert "nothing to compare" in run_study("compare_authors").lower()
    stdout = run_study("compare_authors", "--authors-path", str(tmp_path), "--output", str(tmp_path / "rows.jsonl"))
    assert "does not import" in stdout and "Nothing compared" in stdout
    assert not (tmp_path / "rows.jsonl").exists()


def test_cross_check_exits_cleanly_without_their_code(tmp_path):
    args = ["--model", str(tmp_path / "model.zip"), "--env", "dm_control/cartpole-swingup-v0"]
    assert "nothing to compare" in run_study("cross_check", *args).lower()
    stdout = run_study("cross_check", *args, "--authors-path", str(tmp_path))
    assert "does not import" in stdout and "Nothing to compare" in stdout


def test_cross_check_lays_our_q_heads_out_as_the_authors_ensemble(tiny_kwargs):
    """Each head rebuilt from the stacked parameters in the authors' order (Linear, LayerNorm, ...) gives our logits."""
    policy = BOOM("MlpPolicy", "Pendulum-v1", **tiny_kwargs).policy
    policy.set_training_mode(False)
    policy.set_q_dropout("train")  # the heads rebuilt below have no dropout
    with th.no_grad():
        for parameter in policy.q_ensemble.parameters():  # no zero or unit parameters to hide a mix-up
            parameter.normal_(std=0.3)
    theirs = cross_check.authors_state_dict(policy)
    z, action = th.rand(32, policy.latent_dim), th.rand(32, policy.action_dim) * 2 - 1
    with th.no_grad():
        ours = policy.q_logits(z, action)
        for head in range(policy.num_q):
            params = [theirs[f"_Qs.params.{i}"][head] for i in range(10)]
            h = th.cat([z, action], dim=-1)
            for layer in range(2):
                weight, bias, norm_weight, norm_bias = params[4 * layer : 4 * layer + 4]
                h = th.nn.functional.mish(
                    th.nn.functional.layer_norm(th.nn.functional.linear(h, weight, bias), bias.shape, norm_weight, norm_bias)
                )
            np.testing.assert_allclose(th.nn.functional.linear(h, params[8], params[9]), ours[head], atol=1e-5)
    assert th.equal(theirs["_encoder.0.weight"], policy.encoder[0].linear.weight)
    assert th.equal(theirs["_reward.0.ln.bias"], policy.reward_head[0].norm.bias)
    assert th.equal(theirs["_pi.2.weight"], policy.actor[2].weight)


def test_planner_check_reports_episodes_and_probes_model_against_real_env(tmp_path, tiny_kwargs):
    """studies/planner_check.py on a briefly trained tiny model: every mode is reported, and the probe
    scores each sequence on the model's latents and on the real env's, restarting from one saved state."""
    env_id = "dm_control/cartpole-swingup-v0"
    model = BOOM("MlpPolicy", make_env(env_id, 2), seed=0, **tiny_kwargs).learn(60)
    path = tmp_path / "model.zip"
    model.save(path)
    output = run_study("planner_check", "--model", str(path), "--env", env_id, "--episodes", "2", "--max-episode-steps", "5",
        "--probe-step", "3",
    )  # fmt: skip
    for mode in planner_check.MODES:
        assert f"{mode} " in output and "/2  returns" in output.split(mode)[1].splitlines()[0]
    assert "model V" in output
    output = run_study("planner_check", "--model", str(path), "--env", env_id, "--episodes", "1", "--max-episode-steps", "3",
        "--only", "planner", "--set", "num_samples=48", "iterations=1", "--trace-iterations",
    )  # fmt: skip
    assert "num_samples=48" in output and "iterations=1" in output and "handed on as exploration noise" in output
    policy = BOOM.load(path, device="cpu").policy
    trace = planner_check.iteration_trace(policy, make_env(env_id, 2).reset(seed=0)[0])
    assert len(trace) == policy.planner.iterations + 1  # one row per iteration, then the std handed on
    assert 0.5 < trace[0]["search_std"] < 1.0  # N(mean, max_std = 2) clamped to [-1, 1]
    assert trace[-1]["search_std"] >= policy.planner.min_std and all(np.isfinite(r["value_range"]) for r in trace[:-1])
    assert planner_check.MODES[0] in output and not any(mode in output for mode in planner_check.MODES[1:])
    assert planner_check.RANDOM_MODE not in output  # the yardstick runs only when asked for
    output = run_study("planner_check", "--model", str(path), "--env", env_id, "--episodes", "2", "--only", "random")
    random_returns = output.split(planner_check.RANDOM_MODE)[1].splitlines()[0]
    env = make_env(env_id, 2)
    expected = [planner_check.run_episode(model, env, seed, planner_check.RANDOM_MODE, None) for seed in (5000, 5001)]
    assert f"returns {[round(value, 1) for value in expected]}" in random_returns and expected[0] != expected[1]
    rng = np.random.default_rng(5000)
    env.reset(seed=5000)
    by_hand = sum(float(env.step(rng.uniform(-1, 1, size=1))[1]) for _ in range(500))
    assert expected[0] == pytest.approx(by_hand)  # whole episodes (500 agent steps) of uniform actions

    loaded = BOOM.load(path, device="cpu")
    env = make_env(env_id, 2)
    with th.no_grad():
        rows = planner_check.probe(loaded, env, seed=7, steps=3)
        assert [row["sequence"] for row in rows][:2] == ["prior (closed loop)", "constant -1.0"] and len(rows) == 6
        for row in rows:
            assert all(np.isfinite(value) for key, value in row.items() if key != "sequence")
            assert row["latent_error"] >= 0.0
        # Every sequence starts from the same restored physics state: replaying one gives the same real value.
        physics = env.unwrapped._env.physics
        state = physics.get_state().copy()
        actions = [np.full(1, 0.5, dtype=np.float32)] * loaded.horizon
        first = planner_check.real_value(loaded.policy, env, state, actions, loaded.gamma)
        second = planner_check.real_value(loaded.policy, env, state, actions, loaded.gamma)
        assert first[0] == second[0] and np.array_equal(first[2], second[2])
        other = planner_check.real_value(loaded.policy, env, state, [-a for a in actions], loaded.gamma)
        assert not np.array_equal(first[2], other[2])


def test_precision_check_compares_rankings_and_returns_in_both_precisions(tmp_path, tiny_kwargs):
    """studies/precision_check.py on a briefly trained tiny model's checkpoint: one ranking row per
    spread, and the planner's and prior's returns in float32 and in bf16."""
    model = BOOM("MlpPolicy", "Pendulum-v1", seed=0, **tiny_kwargs).learn(80)
    model.save(tmp_path / "model.zip")
    model.save_replay_buffer(tmp_path / "replay_buffer.pkl")
    output = run_study("precision_check", "--checkpoint", str(tmp_path), "--states", "8", "--samples", "16", "--elites", "4",
        "--spreads", "1.0", "0.1", "--returns-env", "Pendulum-v1", "--episodes", "2",
    )  # fmt: skip
    lines = output.splitlines()
    ranking = [line for line in lines if line.startswith(("| 1.0 |", "| 0.1 |"))]
    assert len(ranking) == 2
    for line in ranking:
        shares = [float(cell) for cell in line.strip("|").split("|")[3::2]]
        assert len(shares) == 3 and all(0.0 <= share <= 1.0 for share in shares)
    returns = {line.split("|")[1].strip(): line for line in lines if line.startswith(("| float32 |", "| bfloat16 |"))}
    assert set(returns) == {"float32", "bfloat16"}
    for line in returns.values():
        planner, prior = (float(cell) for cell in line.strip("|").split("|")[1:])
        assert -2000.0 < planner <= 0.0 and -2000.0 < prior <= 0.0  # Pendulum's returns over 200 steps
    gradients = run_study("precision_check", "--checkpoint", str(tmp_path), "--gradients", "2")
    rows = {
        line.split("|")[1].strip(): [float(cell) for cell in line.strip("|").split("|")[1:]]
        for line in gradients.splitlines()
        if line.startswith("| ") and not line.startswith("| gradients")
    }
    assert set(rows) == {"float32, other draws", "float32, next batch", "bf16", "bf16, bf16 encoder", "bf16 throughout"}
    for label, cells in rows.items():
        cosines, errors = cells[0:10:2], cells[1:10:2]
        assert all(-1.0 <= cosine <= 1.0 + 1e-9 for cosine in cosines) and all(error >= 0.0 for error in errors)
        if label.startswith("bf16"):
            assert min(cosines) > 0.9, (label, cells)  # bf16 rounding, not another gradient
    # The shipped bf16 keeps the encoder in float32: its latents are float32's; with a bf16 encoder they are not.
    assert rows["bf16"][10] == 0.0 and rows["bf16, bf16 encoder"][10] > 0.0
    assert rows["float32, next batch"][10] > 0.0


def test_speed_floor_counts_each_transcendental_element_of_forward_and_backward():
    """studies/speed_floor.py's counter: one count per output element of each transcendental
    operator, backward passes included, nothing for the arithmetic around them."""
    x = th.randn(4, 101, requires_grad=True)

    def loss_and_backward() -> None:
        loss = th.exp(x).sum() + th.log_softmax(x, dim=-1).sum() + th.tanh(2.0 * x[:2] + 1.0).sum()
        loss.backward()

    counts = speed_floor.count_transcendentals(loss_and_backward)
    # exp's and tanh's backward passes reuse their outputs (no transcendental); log-softmax's takes an exp.
    assert counts == {"exp": 404, "log_softmax": 404, "log_softmax_backward": 404, "tanh": 202}
    assert all(0.0 < speed_floor.seconds_per_element(family, repeats=3) < 1e-6 for family in counts)


def test_startup_cost_times_the_zoo_hook():
    output = run_study("startup_cost", "--runs", "2")
    assert "with hook" in output and "without hook" in output and "sb3_boom_zoo_hook import" in output


def test_ab_speedups_times_both_variants_of_a_comparison():
    """The smallest comparison (q_dropout), timed once."""
    output = run_study("ab_speedups", "--model-size", "cpu", "--threads", "1", "--repeats", "1", "--only", "q-dropout")
    for line in ("update, q_dropout=train", "plan, q_dropout=train", "update, q_dropout=always", "plan, q_dropout=always"):
        assert line in output, output


def test_pixels_profile_times_each_part_of_a_pixel_training_step(tmp_path):
    from studies import pixels_profile

    out = tmp_path / "profile.json"
    result = pixels_profile.main(
        ["--task", "reacher-easy", "--steps", "2", "--warmup", "40", "--preset", "tiny", "--out", str(out)]
    )
    assert all(result[key] > 0 for key in ("env_step_s", "render_s", "plan_s", "update_s", "conv_forward_backward_s"))
    assert json.loads(out.read_text())["batch_size"] == result["batch_size"]


def test_pixels_dot_check_trains_and_evaluates_on_the_dot_task():
    from studies import pixels_dot_check

    before, after = pixels_dot_check.main(["--steps", "205"])  # past the 200 random steps: a few updates
    assert -20.0 <= before <= 0.0 and -20.0 <= after <= 0.0  # 20 steps, each rewarded in [-1, 0]


def test_training_episodes_reads_each_episode_of_the_buffer_in_order(tmp_path, tiny_kwargs):
    """studies/training_episodes.py: the buffer's episodes are those the env played (Monitor's returns, in order)."""
    from stable_baselines3.common.monitor import Monitor

    env = Monitor(gym.make("Pendulum-v1", max_episode_steps=50))
    # 4 episodes and 30 steps into a 5th, 51 slots per episode (its final observation): 234 slots, of which the
    # buffer keeps the last 120: the end of episode 2, episode 3 and the running one; then episode 4 completes.
    model = BOOM("MlpPolicy", env, seed=0, **{**tiny_kwargs, "buffer_size": 120}).learn(230)
    assert len(training_episodes.episodes(model.replay_buffer)) == 1
    model.learn(20, reset_num_timesteps=False)
    played = env.get_episode_rewards()
    stored = training_episodes.episodes(model.replay_buffer)
    assert [round(float(rewards.sum()), 3) for rewards, _, _ in stored] == [round(r, 3) for r in played[-len(stored) :]]
    assert len(stored) == 2 and all(rewards.size == 50 and obs.shape == (50, 3) for rewards, obs, _ in stored)
    assert all(stds.shape == (50, 1) and (stds < RANDOM_ACTION_STD).all() for _, _, stds in stored)  # planned, not warm-up
    model.save_replay_buffer(tmp_path / "replay_buffer.pkl")
    output = run_study("training_episodes", "--checkpoint", str(tmp_path), "--column", "2", "--last", "10")
    rows = [line.split() for line in output.split("return split")[0].strip().splitlines()[1:]]
    assert [row[:3] for row in rows] == [[str(i), "50", f"{r.sum():.1f}"] for i, (r, _, _) in enumerate(stored)]
    assert [float(row[3]) for row in rows] == [round(float(obs[-10:, 2].mean()), 3) for _, obs, _ in stored]
    assert "obs[2], last 10" in output
    output = run_study("training_episodes", "--checkpoint", str(tmp_path), "--column", "0", "--first", "3")
    rows = [line.split() for line in output.split("return split")[0].strip().splitlines()[1:]]
    assert [float(row[4]) for row in rows] == [round(float(obs[:3, 0].mean()), 3) for _, obs, _ in stored]
    assert "obs[0], first 3" in output
    for quarter, (_, _, stds) in enumerate(stored, start=1):  # two episodes: one per quarter, the planner's std of each
        assert f"quarter {quarter}: " in output and f"planner std {stds.mean():.3f})" in output


def test_latent_collapse_trains_on_the_first_episodes_of_a_saved_buffer(tmp_path, tiny_kwargs):
    """studies/latent_collapse.py: rewound to its first episodes, the buffer samples only from them, and the study
    trains a fresh model on them and reports each block."""
    from stable_baselines3.common.save_util import load_from_pkl

    from studies import latent_collapse

    env = gym.make("Pendulum-v1", max_episode_steps=50)
    model = BOOM("MlpPolicy", env, seed=0, **tiny_kwargs).learn(160)  # 3 episodes and 10 steps of a 4th
    buffer = model.replay_buffer
    model.save_replay_buffer(tmp_path / "replay_buffer.pkl")
    assert latent_collapse.stored_slots(buffer).size == 160
    # 51 slots per episode (its final observation): slots 0-101 hold the first two.
    first_two = {tuple(row) for row in buffer.observations[:102, 0]}
    latent_collapse.keep_first_episodes(buffer, 2)
    assert latent_collapse.stored_slots(buffer).size == 100
    for _ in range(20):  # every window, its last observation included, lies in the first two episodes
        observations = buffer.sample(16).observations.reshape(-1, 3).numpy()
        assert {tuple(row) for row in observations} <= first_two
    with pytest.raises(SystemExit, match="episode starts"):
        latent_collapse.keep_first_episodes(buffer, 2)  # only 2 episodes left

    args = ["--checkpoint", str(tmp_path), "--env", "Pendulum-v1", "--action-repeat", "1", "--preset", "tiny"]
    output = run_study("latent_collapse", *args, "--episodes", "2", "--threshold", "-1", "--updates", "4", "--every", "2")
    assert "100 transitions" in output
    rows = [line.split() for line in output.split("s/update")[1].strip().splitlines()]
    assert [row[0] for row in rows] == ["0", "2", "4"]
    assert all(float(row[1]) > 0 for row in rows)  # a fresh state encoder's latents differ between observations
    assert rows[0][4] == "nan" and all(row[4] != "nan" for row in rows[1:])  # losses once it has trained
    model.save(tmp_path / "model")  # --trained probes the saved model as it is: the same latents as in-process
    output = run_study("latent_collapse", *args, "--trained", "--threshold", "-1", "--updates", "0")
    model.policy.set_training_mode(False)
    saved = load_from_pkl(tmp_path / "replay_buffer.pkl")  # all 160 transitions (the one above was rewound)
    slots = latent_collapse.stored_slots(saved)
    rng, others = np.random.default_rng(0), slots[saved.rewards[slots, 0] <= -1]
    rng.choice(others, min(512, others.size), replace=False)  # the study draws its unrewarded slots first
    spread_slots = rng.choice(slots, min(512, slots.size), replace=False)
    with th.no_grad():
        spread = model.policy.encode(th.as_tensor(saved.observations[spread_slots, 0])).std(0).mean()
    assert "160 transitions" in output and output.split("s/update")[1].split()[:2] == ["0", f"{float(spread):.4f}"]
    command = [sys.executable, "-m", "studies.latent_collapse", *args, "--threshold", "100"]
    refused = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    assert refused.returncode == 1 and "nothing to tell apart" in refused.stderr
