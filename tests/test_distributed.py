"""
Studies shared by several workers through a real PostgreSQL server (started here from the system's server
binaries, on a free port): RL Zoo tuning with 2 concurrent workers, a worker killed with SIGKILL, a study of
another env, a database restart, the reproduce.py grid on 2 workers and a killed run resumed, optuna-dashboard
and the export of the best trial. Workers are separate processes, as machines would be.
"""

import json
import os
import pathlib
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.request

import optuna
import pytest
import yaml
from optuna.trial import TrialState

from sb3_boom.distributed import (
    ALGO_ATTR,
    ENV_ATTR,
    RunQueue,
    StudyMismatchError,
    WaitingMaxTrialsCallback,
    check_study_identity,
)
from sb3_boom.local_postgres import LocalPostgres, free_port
from sb3_boom.study_storage import DatabaseUnavailableError, HeartbeatSettings, make_storage
from studies.zoo_workers import start_zoo_worker

ROOT = pathlib.Path(__file__).resolve().parents[1]
# Heartbeat every second, a trial silent for 3 s is failed and retried: dead workers are noticed quickly.
FAST_HEARTBEAT = {"SB3_BOOM_HEARTBEAT_S": "1", "SB3_BOOM_GRACE_S": "3"}
WORKER_ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "MPLBACKEND": "Agg", **FAST_HEARTBEAT}
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)


@pytest.fixture(scope="module")
def postgres():
    """A real PostgreSQL server for this module (fails, never skips, when the server programs are missing)."""
    server = LocalPostgres(durable=False).start()
    yield server
    server.stop()


def load(server: LocalPostgres, study_name: str) -> optuna.Study:
    return optuna.load_study(storage=server.url(), study_name=study_name)


def wait(process: subprocess.Popen, log: pathlib.Path, timeout: float = 240) -> str:
    """Wait for a worker; its output, asserting that it succeeded."""
    try:
        process.wait(timeout=timeout)
    finally:
        if process.poll() is None:
            process.kill()
    output = log.read_text()
    assert process.returncode == 0, f"worker exited with {process.returncode}:\n{output[-4000:]}"
    return output


def trials_in_log(output: str) -> set[int]:
    """Numbers of the trials that a worker finished (Optuna logs one line per trial)."""
    return {int(number) for number in re.findall(r"Trial (\d+) (?:finished|pruned)", output)}


def wait_for(condition, timeout: float, what: str, poll: float = 0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(poll)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def running_trial(server: LocalPostgres, study_name: str) -> optuna.trial.FrozenTrial | None:
    try:
        trials = load(server, study_name).get_trials(states=(TrialState.RUNNING,))
    except KeyError:  # the study does not exist yet
        return None
    # The sampler sets align_temperature last: from then on the trial is training.
    return next((trial for trial in trials if "align_temperature" in trial.params), None)


# --- RL Zoo tuning ------------------------------------------------------------------------------------------


def test_zoo_workers_share_one_study(postgres, tmp_path):
    """Two concurrent workers: 4 trials in all (--max-total-trials), each run by one worker, none lost."""
    url = postgres.url(driver="")  # the plain postgresql:// URL of the docs
    workers = [start_zoo_worker(tmp_path, url, "shared", 4, f"worker{i}.log") for i in range(2)]
    outputs = [wait(worker, tmp_path / f"worker{i}.log") for i, worker in enumerate(workers)]

    study = load(postgres, "shared")
    trials = study.get_trials()
    assert all(trial.state in FINISHED for trial in trials), [trial.state for trial in trials]
    # rl_zoo3 counts running trials against the maximum, so two workers finishing at the same moment may
    # start one more, never fewer.
    assert 4 <= len(trials) <= 5
    per_worker = [trials_in_log(output) for output in outputs]
    assert all(per_worker), f"a worker ran no trial: {per_worker}"
    assert not per_worker[0] & per_worker[1], "a trial was run by both workers"
    assert per_worker[0] | per_worker[1] == {trial.number for trial in trials}, "a trial of the study is in no worker's log"
    assert len({json.dumps(trial.params, sort_keys=True) for trial in trials}) == len(trials)
    for trial in trials:
        assert 0.1 * 0.02 <= trial.params["lambda_align"] <= 10 * 0.02  # Pendulum's default A/50, times 0.1 to 10
        if trial.state == TrialState.COMPLETE:
            assert len(trial.intermediate_values) == 2, "one report per evaluation reaches the shared study"
    assert study.user_attrs[ALGO_ATTR] == "boom" and study.user_attrs[ENV_ATTR] == "Pendulum-v1"


def test_zoo_killed_worker_trial_is_retried(postgres, tmp_path):
    """
    A worker killed with SIGKILL mid-trial: its trial is failed by the heartbeat and retried by the next worker,
    which waits for that (the dead trial counts as running) rather than leaving the study unfinished.
    """
    url = postgres.url()
    victim = start_zoo_worker(tmp_path, url, "killed", 1, "victim.log")
    try:
        killed = wait_for(lambda: running_trial(postgres, "killed"), 120, "the victim's first trial")
    finally:
        victim.send_signal(signal.SIGKILL)
        victim.wait()
    survivor = start_zoo_worker(tmp_path, url, "killed", 1, "survivor.log")
    wait(survivor, tmp_path / "survivor.log")

    trials = load(postgres, "killed").get_trials()
    by_number = {trial.number: trial for trial in trials}
    assert by_number[killed.number].state == TrialState.FAIL
    retries = [trial for trial in trials if trial.system_attrs.get("failed_trial") == killed.number]
    assert len(retries) == 1 and retries[0].state in FINISHED, "the killed trial was not retried"
    assert retries[0].params == killed.params == by_number[killed.number].params, "a retry runs the same hyperparameters"
    assert sum(trial.state in FINISHED for trial in trials) == 1
    assert not [trial for trial in trials if trial.state in (TrialState.RUNNING, TrialState.WAITING)]


def test_zoo_worker_refuses_a_study_of_another_env(postgres, tmp_path):
    study = optuna.create_study(storage=postgres.url(), study_name="other-env", direction="maximize")
    study.set_user_attr("command", "python -m rl_zoo3.train --algo boom --env MountainCarContinuous-v0 -optimize")
    worker = start_zoo_worker(tmp_path, postgres.url(), "other-env", 1, "worker.log")
    worker.wait(timeout=120)
    output = (tmp_path / "worker.log").read_text()
    assert worker.returncode != 0
    assert "tunes --algo boom --env MountainCarContinuous-v0" in output and "--study-name" in output, output[-3000:]
    assert not study.get_trials(), "the refused worker must not add trials"


def test_check_study_identity_records_then_compares(postgres):
    study = optuna.create_study(storage=postgres.url(), study_name="identity")
    check_study_identity(study, "boom", "Pendulum-v1")
    check_study_identity(study, "boom", "Pendulum-v1")  # the same worker again: fine
    with pytest.raises(StudyMismatchError, match="tunes --algo boom --env Pendulum-v1.*--algo sac --env Pendulum-v1"):
        check_study_identity(study, "sac", "Pendulum-v1")


def test_check_study_identity_waits_for_a_half_written_record(postgres):
    """A worker that starts while the first one has written the algorithm but not yet the env waits for it."""
    study = optuna.create_study(storage=postgres.url(), study_name="half-written")
    study.set_user_attr(ALGO_ATTR, "boom")
    writer = threading.Timer(0.5, study.set_user_attr, (ENV_ATTR, "Pendulum-v1"))
    writer.start()
    try:
        check_study_identity(study, "boom", "Pendulum-v1")
    finally:
        writer.join()
    # Never completed: after the wait, the half record is another study's, and the message says what it holds.
    lone = optuna.create_study(storage=postgres.url(), study_name="never-completed")
    lone.set_user_attr(ALGO_ATTR, "boom")
    started = time.monotonic()
    with pytest.raises(StudyMismatchError, match="--algo boom --env None"):
        check_study_identity(lone, "boom", "Pendulum-v1", setup_wait_s=0.5)
    assert time.monotonic() - started >= 0.5


@pytest.mark.filterwarnings("ignore:Heartbeat of storage is supposed to be used with Study.optimize")  # ask() stands in
def test_max_total_trials_waits_for_a_dead_trial_then_takes_its_retry(postgres):
    """
    A worker that finds the last trial running elsewhere waits; once that trial's heartbeat is stale it is
    failed and re-enqueued, and the worker gets a slot (the retry); with all trials finished it stops.
    """
    storage = make_storage(postgres.url(), HeartbeatSettings(heartbeat_s=1, grace_s=2))
    study = optuna.create_study(storage=storage, study_name="waiting")
    dead = study.ask({"x": optuna.distributions.FloatDistribution(0, 1)})
    storage.record_heartbeat(dead._trial_id)  # one beat, then its worker "dies"
    gate = WaitingMaxTrialsCallback(1, poll_s=0.2)
    start = time.monotonic()
    assert gate.wait_for_slot(study) is False
    assert time.monotonic() - start >= 1.5, "a trial with a fresh heartbeat was failed"
    states = [trial.state for trial in study.get_trials()]
    assert states == [TrialState.FAIL, TrialState.WAITING]
    retry = study.ask()
    assert retry.params == dead.params
    study.tell(retry, 0.5)
    assert gate.wait_for_slot(study) is True


def test_missing_server_programs_fail_with_the_fix(monkeypatch):
    """No PostgreSQL binaries: an error naming the install line (the fixture errors, it does not skip)."""
    import sb3_boom.local_postgres as local_postgres

    monkeypatch.setenv("SB3_BOOM_PG_BIN", "/nonexistent")
    monkeypatch.setattr(local_postgres.glob, "glob", lambda pattern: [])
    monkeypatch.setattr(local_postgres.shutil, "which", lambda name: None)
    with pytest.raises(FileNotFoundError, match="apt-get install postgresql"):
        local_postgres.find_server_binaries()


def test_heartbeat_settings_reject_bad_input():
    with pytest.raises(ValueError, match="SB3_BOOM_HEARTBEAT_S='soon'"):
        HeartbeatSettings.from_env({"SB3_BOOM_HEARTBEAT_S": "soon"})
    with pytest.raises(ValueError, match="grace period longer than one heartbeat"):
        HeartbeatSettings(heartbeat_s=10, grace_s=5)
    assert HeartbeatSettings.from_env({"SB3_BOOM_HEARTBEAT_S": "7"}).grace_s == 21
    with pytest.raises(ValueError, match="not a database URL"):
        make_storage("optuna.log")


def test_storage_rides_out_a_database_restart(tmp_path):
    """Connections cut by a restart are replaced; a database that stays down gives a clear error."""
    with LocalPostgres(durable=False) as server:
        storage = make_storage(server.url(), HeartbeatSettings(heartbeat_s=1, reconnect_s=30))
        study = optuna.create_study(storage=storage, study_name="restart")
        study.optimize(lambda trial: trial.suggest_float("x", 0, 1), n_trials=2)
        server.restart(down_s=1.0)
        study.optimize(lambda trial: trial.suggest_float("x", 0, 1), n_trials=1)
        assert [trial.state for trial in study.get_trials()] == [TrialState.COMPLETE] * 3, "a completed trial was lost"

        storage.reconnect_s = 2.0
        server._run("pg_ctl", "-D", str(server.data_dir), "-m", "fast", "-w", "stop")
        with pytest.raises(
            DatabaseUnavailableError, match="database .* has been unreachable for more than 2 s.*Start this worker again"
        ):
            study.get_trials()


# --- reproduce.py -------------------------------------------------------------------------------------------


def reproduce_worker(tmp_path: pathlib.Path, url: str, study_name: str, log_name: str, *args: str):
    command = [
        sys.executable, str(ROOT / "benchmarks" / "reproduce.py"), "--tiny", "--methods", "boom", "--tasks", "Pendulum-v1",
        "--eval-freq", "100", "--eval-episodes", "1", "--threads", "1", "--out", str(tmp_path / "out"),
        "--checkpoint-dir", str(tmp_path / "checkpoints"), "--storage", url, "--study-name", study_name,
        "--heartbeat-s", "1", "--grace-s", "3", *args,
    ]  # fmt: skip
    log = open(tmp_path / log_name, "w")
    return subprocess.Popen(command, cwd=ROOT, env=WORKER_ENV, stdout=log, stderr=subprocess.STDOUT, text=True)


def csv_steps(path: pathlib.Path, policy: str) -> list[int]:
    import csv

    with open(path, newline="") as file:
        return [int(row["step"]) for row in csv.DictReader(file) if row["policy"] == policy]


def test_reproduce_grid_on_two_workers(postgres, tmp_path):
    """Two workers finish a grid of 3 tiny runs: every CSV once, every summary on the study, plot.py reads it."""
    args = ("--seeds", "0", "1", "2", "--budget", "200")
    workers = [reproduce_worker(tmp_path, postgres.url(), "grid", f"worker{i}.log", *args) for i in range(2)]
    outputs = [wait(worker, tmp_path / f"worker{i}.log") for i, worker in enumerate(workers)]

    names = [f"boom__Pendulum-v1__seed{seed}" for seed in range(3)]
    assert sorted(path.name for path in (tmp_path / "out").iterdir()) == [f"{name}.csv" for name in names]
    for name in names:
        assert csv_steps(tmp_path / "out" / f"{name}.csv", "planner") == [0, 100, 200]
        claims = sum(output.count(f"[{name}] claimed") for output in outputs)
        assert claims == 1, f"{name} was claimed {claims} times"
    assert all("claimed" in output for output in outputs), "one worker ran no run"

    complete = load(postgres, "grid").get_trials(states=(TrialState.COMPLETE,))
    assert sorted(trial.user_attrs["run"] for trial in complete) == names
    for trial in complete:
        assert trial.value == trial.user_attrs["final_planner"]
        assert trial.user_attrs["peak_planner"] >= trial.user_attrs["final_planner"]
        assert trial.user_attrs["env_steps"] == 200 and trial.user_attrs["wall_s"] > 0 and trial.user_attrs["machine"]
        assert 0 < trial.user_attrs["cpu_s"] <= trial.user_attrs["wall_s"] * os.cpu_count() + 0.5

    # A third worker finds nothing to do; one with another grid is refused.
    late = reproduce_worker(tmp_path, postgres.url(), "grid", "late.log", *args)
    other = reproduce_worker(tmp_path, postgres.url(), "grid", "other.log", "--seeds", "0", "1", "--budget", "200")
    assert "claimed" not in wait(late, tmp_path / "late.log", timeout=120)
    other.wait(timeout=120)
    assert other.returncode != 0 and "holds another grid of runs" in (tmp_path / "other.log").read_text()

    report = tmp_path / "report"
    plot = [sys.executable, "benchmarks/plot.py", "--runs", str(tmp_path / "out" / "*.csv"), "--out", str(report)]
    result = subprocess.run([*plot, "--no-reference"], cwd=ROOT, env=WORKER_ENV, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Pendulum-v1" in (report / "summary.md").read_text() and (report / "Pendulum-v1.png").is_file()


def test_reproduce_run_of_a_killed_worker_is_resumed(postgres, tmp_path):
    """A worker killed after its first checkpoint: the next worker retries the run and resumes the checkpoint."""
    args = ("--seeds", "0", "--budget", "300")
    name = "boom__Pendulum-v1__seed0"
    victim = reproduce_worker(tmp_path, postgres.url(), "resume", "victim.log", *args)
    checkpoint = tmp_path / "checkpoints" / name / "checkpoint" / "state.json"
    try:
        wait_for(lambda: checkpoint.is_file() and json.loads(checkpoint.read_text())["env_steps"] >= 100, 120, "a checkpoint")
    finally:
        victim.send_signal(signal.SIGKILL)
        victim.wait()
    survivor = reproduce_worker(tmp_path, postgres.url(), "resume", "survivor.log", *args)
    output = wait(survivor, tmp_path / "survivor.log")

    assert f"[{name}] resuming from" in output
    assert csv_steps(tmp_path / "out" / f"{name}.csv", "planner") == [0, 100, 200, 300]
    trials = load(postgres, "resume").get_trials()
    assert [trial.state for trial in trials] == [TrialState.FAIL, TrialState.COMPLETE]
    assert trials[1].system_attrs["failed_trial"] == trials[0].number


def test_run_queue_concurrent_claims_take_each_run_once(postgres):
    """Four workers (own connections each) claim a grid of 24 runs as fast as they can: each run exactly once."""
    import threading

    runs = {f"run{i:02d}": {"seed": i} for i in range(24)}
    claimed: list[tuple[str, str]] = []
    errors: list[BaseException] = []

    def worker(index: int) -> None:
        try:
            queue = RunQueue(make_storage(postgres.url(), HeartbeatSettings(heartbeat_s=1)), "claims", runs, poll_s=0.05)
            queue.open()
            while (next_run := queue.claim()) is not None:
                trial, name = next_run
                claimed.append((name, f"worker{index}"))
                queue.complete(trial, 0.0, {"worker": index})
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=worker, args=(index,)) for index in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    assert sorted(name for name, _ in claimed) == sorted(runs), "a run was claimed twice or never"
    assert len({worker for _, worker in claimed}) > 1, "one worker took every run"
    complete = load(postgres, "claims").get_trials(states=(TrialState.COMPLETE,))
    assert sorted(trial.user_attrs["run"] for trial in complete) == sorted(runs)


def test_run_queue_drops_a_duplicate_enqueue(postgres):
    """Two workers enqueueing the same run at once: the lower-numbered trial runs, the other is dropped."""
    storage = make_storage(postgres.url(), HeartbeatSettings(heartbeat_s=1))
    queue = RunQueue(storage, "duplicates", {"a": {}}, poll_s=0.1)
    study = queue.open()
    study.enqueue_trial({"run": "a"}, user_attrs={"run": "a"}, skip_if_exists=False)  # the racing worker's copy
    trial, name = queue.claim()
    assert (name, trial.number) == ("a", 0)
    second = RunQueue(storage, "duplicates", {"a": {}}, poll_s=0.1)
    second.open()
    queue.complete(trial, 1.0, {"final": 1.0})
    assert second.claim() is None, "the duplicate was run"
    assert queue.counts()["duplicate"] == 1


# --- watching and exporting ---------------------------------------------------------------------------------


def boom_study(server: LocalPostgres, name: str) -> optuna.Study:
    """A finished BOOM tuning study made with the Zoo's sampler, without training (fast)."""
    from sb3_boom.zoo import sample_boom_params

    study = optuna.create_study(storage=server.url(), study_name=name, direction="maximize")
    study.set_user_attr(ALGO_ATTR, "boom")
    study.set_user_attr(ENV_ATTR, "Pendulum-v1")
    study.optimize(lambda trial: -abs(sample_boom_params(trial, 1, 1, {})["lambda_align"] - 0.05), n_trials=4)
    return study


def test_dashboard_serves_the_study(postgres):
    study = boom_study(postgres, "watched")
    port = free_port()
    # The documented command: the optuna-dashboard script installed next to this Python (the distributed extra).
    program = pathlib.Path(sys.executable).parent / "optuna-dashboard"
    assert program.is_file(), f"{program} is missing: pip install -e '.[distributed]'"
    command = [str(program), postgres.url(driver=""), "--host", "127.0.0.1", "--port", str(port)]
    dashboard = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    base = f"http://127.0.0.1:{port}"

    def studies():
        try:
            with urllib.request.urlopen(f"{base}/api/studies", timeout=5) as response:
                return json.load(response)["study_summaries"]
        except OSError:
            assert dashboard.poll() is None, f"optuna-dashboard exited: {dashboard.stderr.read()[-2000:]}"
            return None

    try:
        listed = {entry["study_name"]: entry["study_id"] for entry in wait_for(studies, 60, "optuna-dashboard")}
        assert "watched" in listed
        with urllib.request.urlopen(f"{base}/api/studies/{listed['watched']}", timeout=10) as response:
            detail = json.load(response)
        assert len(detail["trials"]) == len(study.trials)
        assert "lambda_align" in json.dumps(detail["trials"][0]["params"])
        with urllib.request.urlopen(f"{base}/dashboard/studies/{listed['watched']}", timeout=10) as response:
            assert response.status == 200 and b"<html" in response.read().lower()
    finally:
        dashboard.terminate()
        dashboard.wait(timeout=30)


def test_best_trial_exports_to_a_zoo_config(postgres, tmp_path):
    study = boom_study(postgres, "exported")
    out = tmp_path / "boom_tuned.yml"
    export = [sys.executable, "-m", "sb3_boom.distributed", "export-best", "--storage", postgres.url(driver="")]
    subprocess.run([*export, "--study-name", "exported", "--out", str(out)], check=True, env=WORKER_ENV, timeout=60)
    entry = yaml.safe_load(out.read_text())["Pendulum-v1"]
    best = study.best_trial.params
    assert entry["lambda_align"] == best["lambda_align"] and entry["num_samples"] == 2 ** best["num_samples_pow"]

    # rl_zoo3 accepts the entry: a few steps of training with it, and the saved config holds the trial's values.
    train = [sys.executable, "-m", "rl_zoo3.train", "--algo", "boom", "--env", "Pendulum-v1", "-conf", str(out)]
    result = subprocess.run(
        [*train, "-n", "20", "--num-threads", "1", "-f", str(tmp_path / "logs")],
        cwd=tmp_path, env=WORKER_ENV, capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    saved = next((tmp_path / "logs" / "boom").glob("Pendulum-v1_*/Pendulum-v1/config.yml"))
    assert str(best["lambda_align"]) in saved.read_text()


# --- the studies of docs/scaling.md ---------------------------------------------------------------------------


def run_study(name: str, *args: str, timeout: float) -> str:
    """``python -m studies.<name> ...`` from the repository root; its output, asserting that it succeeded."""
    result = subprocess.run(
        [sys.executable, "-m", f"studies.{name}", *args], cwd=ROOT, env=WORKER_ENV, capture_output=True, text=True,
        timeout=timeout,
    )  # fmt: skip
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"studies.{name} exited with {result.returncode}:\n{output[-4000:]}"
    return result.stdout


def test_distributed_scaling_study_appends_overheads_and_throughput(postgres, tmp_path):
    out = tmp_path / "scaling.jsonl"
    args = ["--storage", postgres.url(), "--workers", "1", "--trials", "2", "--overhead-trials", "3", "--reports", "2"]
    run_study("distributed_scaling", *args, "--out", str(out), timeout=300)
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [(row["kind"], row.get("storage")) for row in rows[:3]] == [
        ("overhead", "postgresql"),
        ("overhead", "sqlite"),
        ("overhead", "journal-file"),
    ]
    assert rows[3]["kind"] == "throughput" and rows[3]["workers"] == 1 and rows[3]["trials"] == 2


def test_fault_drill_study_loses_no_trial(tmp_path):
    """The drill of docs/scaling.md on its own throwaway server: a worker killed, the database restarted."""
    args = ["--workers", "2", "--trials", "3", "--down-s", "1", "--folder", str(tmp_path)]
    output = run_study("fault_drill", *args, timeout=600)
    result = json.loads(next(line for line in output.splitlines() if line.startswith("{")))
    assert result["lost"] == 0 and result["finished"] >= 3 and not result["workers_failed"], output
