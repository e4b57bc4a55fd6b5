"""Smoke test of benchmarks/reproduce.py (train, evaluate, checkpoint, resume) and benchmarks/plot.py."""

import argparse
import csv
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest
import torch as th

ROOT = pathlib.Path(__file__).resolve().parents[1]
COLUMNS = ["method", "task", "step", "reward", "seed", "policy", "wall_s"]


def run_script(script: str, *args: str) -> str:
    """Run ``benchmarks/<script>`` from the repository root; return its stdout (fail with its output otherwise)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        [sys.executable, f"benchmarks/{script}", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, f"{script} exited with {result.returncode}:\n{result.stdout}\n{result.stderr[-4000:]}"
    return result.stdout


def read_csv(path: pathlib.Path) -> list[dict[str, str]]:
    with open(path, newline="") as file:
        reader = csv.DictReader(file)
        assert reader.fieldnames == COLUMNS
        return list(reader)


def steps_of(rows: list[dict[str, str]], policy: str) -> list[int]:
    return [int(row["step"]) for row in rows if row["policy"] == policy]


def test_reproduce_resumes_and_plot_summarises(tmp_path):
    pytest.importorskip("matplotlib")
    pytest.importorskip("pandas")
    out, checkpoints, report = tmp_path / "out", tmp_path / "checkpoints", tmp_path / "report"
    common = ["--tiny", "--methods", "boom", "sac", "--tasks", "Pendulum-v1", "--seeds", "0", "--eval-freq", "100"]
    common += ["--eval-episodes", "2", "--threads", "1", "--out", str(out), "--checkpoint-dir", str(checkpoints)]
    boom_csv, sac_csv = out / "boom__Pendulum-v1__seed0.csv", out / "sac__Pendulum-v1__seed0.csv"

    run_script("reproduce.py", *common, "--budget", "200")
    first = read_csv(boom_csv)
    assert steps_of(first, "planner") == steps_of(first, "prior") == [0, 100, 200]
    assert steps_of(read_csv(sac_csv), "actor") == [0, 100, 200]
    assert {row["method"] for row in first} == {"boom"} and {row["task"] for row in first} == {"Pendulum-v1"}
    assert (checkpoints / "boom__Pendulum-v1__seed0" / "checkpoint" / "replay_buffer.pkl").is_file()

    # A larger budget continues from the checkpoint at 200 env steps: the rows so far are kept as they were.
    stdout = run_script("reproduce.py", *common, "--budget", "300")
    assert stdout.count("resuming from 200 env steps") == 2, stdout
    boom_rows, sac_rows = read_csv(boom_csv), read_csv(sac_csv)
    assert boom_rows[: len(first)] == first
    for rows, policies in ((boom_rows, ("planner", "prior")), (sac_rows, ("actor",))):
        for policy in policies:
            assert steps_of(rows, policy) == [0, 100, 200, 300]  # starts at 0, no duplicated step
        walls = [float(row["wall_s"]) for row in rows]
        assert walls == sorted(walls) and walls[0] == 0.0
        assert all(-2000.0 <= float(row["reward"]) <= 0.0 for row in rows)  # Pendulum-v1 returns over 200 steps

    run_script("plot.py", "--runs", str(out / "*.csv"), "--out", str(report))
    png = (report / "Pendulum-v1.png").read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 10_000
    table = (report / "summary.md").read_text()
    for method, policy in (("boom", "planner"), ("boom", "prior"), ("sac", "actor")):
        assert f"| Pendulum-v1 | {method} | {policy} | 1 | 300 |" in table, table


def write_rows(path: pathlib.Path, method: str, rewards_by_seed: dict[int, list[float]], policy: str = "planner") -> None:
    with open(path, "w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(COLUMNS)
        for seed, rewards in rewards_by_seed.items():
            for index, reward in enumerate(rewards):
                writer.writerow([method, "cartpole-swingup", 10_000 * index, reward, seed, policy, float(index)])


def test_plot_compare_gives_a_verdict_per_step(tmp_path):
    pytest.importorskip("matplotlib")
    pytest.importorskip("pandas")
    # Step 0: level (overlapping seeds); 10k: A clearly above; 20k: A clearly below. The last column is the
    # two-sided Mann-Whitney p: 1.0 for interleaved seeds; 0.1 (= 2 / C(6, 3)) for 3 vs 3 fully separated ones.
    write_rows(tmp_path / "a.csv", "boom", {0: [60, 500, 100], 1: [70, 520, 110], 2: [65, 510, 120]})
    write_rows(tmp_path / "b.csv", "authors", {0: [62, 300, 400], 1: [68, 310, 420], 2: [66, 320, 410]})
    report = tmp_path / "report"
    run_script(
        "plot.py", "--runs", str(tmp_path / "*.csv"), "--out", str(report), "--no-reference", "--compare", "boom", "authors"
    )
    table = (report / "summary.md").read_text()
    assert "## boom vs authors, step by step" in table
    assert "| cartpole-swingup | planner | 0 | 65.0 (60-70) | 65.3 (62-68) | -0.3 | level | 65.0 / 66.0 | 1.00 |" in table, (
        table
    )
    assert (
        "| cartpole-swingup | planner | 10000 | 510.0 (500-520) | 310.0 (300-320) | +200.0 | above"
        " | 510.0 / 310.0 | 0.10 |" in table
    ), table
    assert (
        "| cartpole-swingup | planner | 20000 | 110.0 (100-120) | 410.0 (400-420) | -300.0 | below"
        " | 110.0 / 410.0 | 0.10 |" in table
    ), table
    assert "| cartpole-swingup | authors | 2 | 20000 | 2 | 10000.0 |" in table, table  # wall time of each run

    # Repeated --compare: one table per pair, in the order given.
    write_rows(tmp_path / "c.csv", "boom[alignment=rkl]", {0: [60, 100, 100], 1: [70, 110, 110]})
    run_script(
        "plot.py", "--runs", str(tmp_path / "*.csv"), "--out", str(report), "--no-reference",
        "--compare", "boom[alignment=rkl]", "boom", "--compare", "boom", "authors",
    )  # fmt: skip
    table = (report / "summary.md").read_text()
    first, second = (
        table.index("## boom[alignment=rkl] vs boom, step by step"),
        table.index("## boom vs authors, step by step"),
    )
    assert first < second
    assert (
        "| cartpole-swingup | planner | 10000 | 105.0 (100-110) | 510.0 (500-520) | -405.0 | below"
        " | 105.0 / 510.0 | 0.20 |" in table
    ), table

    # A method with a single policy (SB3's actor) is set against each of BOOM's policies.
    write_rows(tmp_path / "d.csv", "sac", {0: [50, 200, 300], 1: [60, 220, 320]}, policy="actor")
    run_script(
        "plot.py", "--runs", str(tmp_path / "*.csv"), "--out", str(report), "--no-reference", "--compare", "boom", "sac"
    )
    table = (report / "summary.md").read_text()
    assert (
        "| cartpole-swingup | planner / actor | 10000 | 510.0 (500-520) | 210.0 (200-220) | +300.0 | above"
        " | 510.0 / 210.0 | 0.20 |" in table
    ), table


def test_authors_curve_exits_cleanly_without_their_code(tmp_path):
    assert "nothing to run" in run_script("authors_curve.py").lower()
    stdout = run_script("authors_curve.py", "--authors-path", str(tmp_path))
    assert "does not import" in stdout and "Nothing to run" in stdout


def test_cross_check_exits_cleanly_without_their_code(tmp_path):
    args = ["--model", str(tmp_path / "model.zip"), "--env", "dm_control/cartpole-swingup-v0"]
    assert "nothing to compare" in run_script("cross_check.py", *args).lower()
    stdout = run_script("cross_check.py", *args, "--authors-path", str(tmp_path))
    assert "does not import" in stdout and "Nothing to compare" in stdout


def test_cross_check_lays_our_q_heads_out_as_the_authors_ensemble(monkeypatch, tiny_kwargs):
    """Each head rebuilt from the stacked parameters in the authors' order (Linear, LayerNorm, ...) gives our logits."""
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    import cross_check

    from sb3_boom import BOOM

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


def test_ablations_expand_to_the_papers_variants(monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    import reproduce

    started = []
    monkeypatch.setattr(
        reproduce, "Run", lambda spec, args: type("FakeRun", (), {"train": lambda self: started.append(spec)})()
    )
    reproduce.main(["--methods", "boom", "sac", "--ablations", "--boom-kwargs", "batch_size=64", "--seeds", "0", "1"])
    boom = [spec for spec in started if spec.algo == "boom"]
    assert len(boom) == 12 and len([spec for spec in started if spec.algo == "sac"]) == 2
    methods = list(dict.fromkeys(spec.method for spec in boom))
    assert methods == [
        "boom[batch_size=64]",
        "boom[batch_size=64,alignment=rkl]",
        "boom[batch_size=64,alignment=none]",
        "boom[batch_size=64,align_weighting=uniform]",
        "boom[batch_size=64,lambda_align_scale=0.1]",
        "boom[batch_size=64,lambda_align_scale=10]",
    ]
    assert all(spec.hyperparams["batch_size"] == 64 for spec in boom)
    assert [spec.hyperparams.get("alignment") for spec in boom[2:6]] == ["rkl"] * 2 + ["none"] * 2
    assert len({spec.name for spec in started}) == len(started)  # one CSV and checkpoint folder per run


def test_planner_check_reports_episodes_and_probes_model_against_real_env(tmp_path, tiny_kwargs):
    """benchmarks/planner_check.py on a briefly trained tiny model: every mode is reported, and the probe
    scores each sequence on the model's latents and on the real env's, restarting from one saved state."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import planner_check
    from reproduce import make_env

    from sb3_boom import BOOM

    env_id = "dm_control/cartpole-swingup-v0"
    model = BOOM("MlpPolicy", make_env(env_id, 2), seed=0, **tiny_kwargs).learn(60)
    path = tmp_path / "model.zip"
    model.save(path)
    output = run_script(
        "planner_check.py", "--model", str(path), "--env", env_id, "--episodes", "2", "--max-episode-steps", "5",
        "--probe-step", "3",
    )  # fmt: skip
    for mode in planner_check.MODES:
        assert f"{mode} " in output and "/2  returns" in output.split(mode)[1].splitlines()[0]
    assert "model V" in output

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
    """benchmarks/precision_check.py on a briefly trained tiny model's checkpoint: one ranking row per
    spread, and the planner's and prior's returns in float32 and in bf16."""
    from sb3_boom import BOOM

    model = BOOM("MlpPolicy", "Pendulum-v1", seed=0, **tiny_kwargs).learn(80)
    model.save(tmp_path / "model.zip")
    model.save_replay_buffer(tmp_path / "replay_buffer.pkl")
    output = run_script(
        "precision_check.py", "--checkpoint", str(tmp_path), "--states", "8", "--samples", "16", "--elites", "4",
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
    gradients = run_script("precision_check.py", "--checkpoint", str(tmp_path), "--gradients", "2")
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


def test_speed_floor_counts_each_transcendental_element_of_forward_and_backward(monkeypatch):
    """benchmarks/speed_floor.py's counter: one count per output element of each transcendental
    operator, backward passes included, nothing for the arithmetic around them."""
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    import speed_floor

    x = th.randn(4, 101, requires_grad=True)

    def loss_and_backward() -> None:
        loss = th.exp(x).sum() + th.log_softmax(x, dim=-1).sum() + th.tanh(2.0 * x[:2] + 1.0).sum()
        loss.backward()

    counts = speed_floor.count_transcendentals(loss_and_backward)
    # exp's and tanh's backward passes reuse their outputs (no transcendental); log-softmax's takes an exp.
    assert counts == {"exp": 404, "log_softmax": 404, "log_softmax_backward": 404, "tanh": 202}
    assert all(0.0 < speed_floor.seconds_per_element(family, repeats=3) < 1e-6 for family in counts)


def test_zoo_preset_gives_unlisted_dm_control_ids_the_derived_entry(monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    import reproduce

    from sb3_boom.presets import PRESETS
    from sb3_boom.zoo import dmc_hyperparams

    # The parsed command line boom_spec reads (reproduce.py builds its parser inside main()).
    args = argparse.Namespace(boom_kwargs=[], preset="zoo", tiny=False, name=None, action_repeat=None, device="cpu")
    unlisted = reproduce.boom_spec(args, "dm_control/hopper-stand-v0", seed=0)
    derived = dmc_hyperparams("dm_control/hopper-stand-v0", "cpu")
    assert unlisted.hyperparams["policy"] == "MlpPolicy"  # not the YAML's default entry
    assert unlisted.hyperparams["policy_kwargs"] == derived["policy_kwargs"] == PRESETS["cpu"]["policy_kwargs"]
    assert unlisted.action_repeat == 2
    listed = reproduce.boom_spec(args, "dm_control/walker-walk-v0", seed=0)
    assert listed.hyperparams["num_samples"] == 128
