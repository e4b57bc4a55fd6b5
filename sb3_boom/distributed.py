"""
Studies shared by many machines through Optuna's relational storage (PostgreSQL; any SQLAlchemy URL works).

- :func:`sb3_boom.study_storage.make_storage`: Optuna's ``RDBStorage`` with its heartbeat on, so that a trial
  whose worker died (``kill -9``, a lost machine) is failed once its heartbeat is ``grace_s`` old and
  re-enqueued with the same parameters by Optuna's ``RetryFailedTrialCallback``; with ``pool_pre_ping`` and a
  few retried calls so that a worker rides out a database restart (or stops with ``DatabaseUnavailableError``).
- :func:`patch_experiment_manager`: what ``python -m rl_zoo3.train -optimize --storage <URL>`` needs on top
  of rl_zoo3 (installed by :mod:`sb3_boom.zoo`): that storage, a check that the study was made for the same
  ``--algo`` and ``--env``, and a ``--max-total-trials`` that waits for the trials of other workers (one of
  which may die and be retried) instead of stopping while they run.
- :class:`RunQueue`: a fixed grid of runs (``benchmarks/reproduce.py --storage``) as enqueued trials of a
  study: each worker claims the next waiting run, beats its heartbeat while it trains, and writes its
  summary to the trial.
- ``python -m sb3_boom.distributed export-best``: the best trial as an RL Zoo config entry; ``status``: counts.

Heartbeat settings of the RL Zoo workers come from the environment (rl_zoo3's command line has no such
options): ``SB3_BOOM_HEARTBEAT_S`` (default 60), ``SB3_BOOM_GRACE_S`` (default 3 heartbeats),
``SB3_BOOM_MAX_RETRY`` (default 3) and ``SB3_BOOM_RECONNECT_S`` (default 120).
"""

import argparse
import contextlib
import copy
import functools
import hashlib
import json
import os
import shlex
import socket
import sys
import threading
import time
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import optuna
from optuna.storages import RDBStorage
from optuna.study import MaxTrialsCallback
from optuna.trial import FrozenTrial, TrialState

from sb3_boom.study_storage import (
    DatabaseUnavailableError,
    fail_stale_trials,
    is_connection_error,
    is_rdb_url,
    make_storage,
    normalize_url,
    unavailable_message,
    warnings_as_notes,
)

# Study user attributes that tie a tuning study to its algorithm and env.
ALGO_ATTR, ENV_ATTR = "sb3_boom_algo", "sb3_boom_env"
GRID_ATTR, GRID_HASH_ATTR = "sb3_boom_grid", "sb3_boom_grid_hash"
RUN_ATTR = "run"


class StudyMismatchError(ValueError):
    """The study named on the command line belongs to another algorithm, env or grid."""


# --- the RL Zoo's studies ----------------------------------------------------------------------------------


def _command_argument(command: str, *flags: str) -> str | None:
    """The value of the first of ``flags`` in a command line recorded by rl_zoo3 (its ``command`` attribute)."""
    try:
        words = shlex.split(command)
    except ValueError:
        words = command.split()
    for index, word in enumerate(words):
        for flag in flags:
            if word == flag and index + 1 < len(words):
                return words[index + 1]
            if word.startswith(flag + "="):
                return word[len(flag) + 1 :]
    return None


def check_study_identity(study: optuna.Study, algo: str, env_id: str, setup_wait_s: float = 10.0) -> None:
    """
    Record the study's algorithm and env on first use; later, refuse a worker started with others.

    The first worker writes the two attributes one after the other: a worker that finds only one of them
    waits (up to ``setup_wait_s``) for the other instead of taking the half-written record for another study.

    :param setup_wait_s: seconds to wait for a half-written record to be completed
    :raises StudyMismatchError: naming the study's algorithm and env, and the fix
    """
    deadline = time.monotonic() + setup_wait_s
    while True:
        attrs = study.user_attrs
        study_algo, study_env = attrs.get(ALGO_ATTR), attrs.get(ENV_ATTR)
        if study_algo is None and "command" in attrs:  # made by rl_zoo3 without this check
            study_algo = _command_argument(attrs["command"], "--algo")
            study_env = _command_argument(attrs["command"], "--env")
        half_written = (study_algo is None) != (study_env is None)
        if not half_written or time.monotonic() >= deadline:
            break
        time.sleep(0.1)
    if study_algo is None and study_env is None:
        study.set_user_attr(ALGO_ATTR, algo)
        study.set_user_attr(ENV_ATTR, env_id)
        return
    if (study_algo, study_env) != (algo, env_id):
        raise StudyMismatchError(
            f"study {study.study_name!r} tunes --algo {study_algo} --env {study_env}, but this worker was started with "
            f"--algo {algo} --env {env_id}. Start it with the study's --algo and --env, or pass a new --study-name."
        )


class WaitingMaxTrialsCallback(MaxTrialsCallback):
    """
    ``--max-total-trials`` for workers that may die: a worker stops once ``n_trials`` trials have finished
    (complete or pruned). While the remaining ones run on other workers it waits, failing stale trials;
    Optuna's retry callback then re-enqueues them and this worker takes them over.

    :param n_trials: finished trials the study needs
    :param poll_s: seconds between two looks at the study while waiting
    """

    def __init__(self, n_trials: int, poll_s: float = 2.0):
        super().__init__(n_trials, states=(TrialState.COMPLETE, TrialState.PRUNED))
        self.poll_s = poll_s

    def __call__(self, study: optuna.Study, trial: FrozenTrial) -> None:
        if self.wait_for_slot(study):
            study.stop()

    def wait_for_slot(self, study: optuna.Study) -> bool:
        """Wait until this worker may start a trial (False) or the study has all its trials (True)."""
        told = False
        while True:
            fail_stale_trials(study)
            trials = study.get_trials(deepcopy=False)
            states = [t.state for t in trials]
            finished = sum(state in (TrialState.COMPLETE, TrialState.PRUNED) for state in states)
            running = states.count(TrialState.RUNNING)
            if finished >= self._n_trials:
                return True
            if finished + running < self._n_trials or TrialState.WAITING in states:
                return False  # room for another trial here, or a retried one to take over
            if not told:
                # A trial that never beat (made without the heartbeat) cannot be found dead: say what we wait for.
                numbers = [t.number for t in trials if t.state == TrialState.RUNNING]
                print(
                    f"{finished}/{self._n_trials} trials finished; waiting for trials {numbers} of other workers", flush=True
                )
                told = True
            time.sleep(self.poll_s)


class _OptunaForStudy(ModuleType):
    """
    ``optuna`` as rl_zoo3's exp_manager sees it during one tuning run: ``create_study`` / ``load_study`` with
    a storage URL use :func:`make_storage` and check the study's algorithm and env; the rest is Optuna.
    """

    def __init__(self, storage: RDBStorage, algo: str, env_id: str, max_total_trials: int | None = None):
        super().__init__("optuna")
        self._storage, self._algo, self._env_id = storage, algo, env_id
        self._max_total_trials = max_total_trials

    def __getattr__(self, name: str) -> Any:
        return getattr(optuna, name)

    def create_study(self, *args: Any, storage: Any = None, **kwargs: Any) -> optuna.Study:
        study = optuna.create_study(*args, storage=self._storage if is_rdb_url(storage) else storage, **kwargs)
        check_study_identity(study, self._algo, self._env_id)
        # rl_zoo3 starts no trial when finished + running trials reach --max-total-trials. A worker that
        # starts while the trial of a dead worker still looks alive waits for it to be failed and retried
        # (or for the study to finish) instead of leaving at once.
        if self._max_total_trials is not None:
            WaitingMaxTrialsCallback(self._max_total_trials).wait_for_slot(study)
        else:
            fail_stale_trials(study)
        return study

    def load_study(self, *args: Any, storage: Any = None, **kwargs: Any) -> optuna.Study:
        return optuna.load_study(*args, storage=self._storage if is_rdb_url(storage) else storage, **kwargs)


# Times a tuning worker goes on after losing the trial in hand (database restarts, a trial failed by the heartbeat).
MAX_OPTIMIZE_RESTARTS = 20


def _was_failed_meanwhile(error: BaseException | None) -> bool:
    """Whether Optuna could not finish a trial because another worker had failed it (its heartbeat looked stale)."""
    while error is not None:
        if isinstance(error, optuna.exceptions.UpdateFinishedTrialError) or "Cannot tell a FAIL trial" in str(error):
            return True
        error = error.__cause__ or error.__context__
    return False


def _last_message(error: BaseException) -> str:
    messages = []
    while error is not None and len(messages) < 3:
        messages.append(f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}")
        error = error.__cause__ or error.__context__
    return " <- ".join(messages)


def patch_experiment_manager(exp_manager_module: ModuleType) -> None:
    """
    Make ``ExperimentManager.hyperparameters_optimization`` of ``rl_zoo3.exp_manager`` use a shared database
    safely when ``--storage`` is a database URL (any ``--algo``): heartbeat and retries (:func:`make_storage`),
    the study's algorithm and env checked, ``--max-total-trials`` that outlives dead workers, and a clear
    error when the database stays unreachable.
    """
    manager_class = exp_manager_module.ExperimentManager
    if getattr(manager_class, "_sb3_boom_distributed", False):
        return
    original = manager_class.hyperparameters_optimization

    @functools.wraps(original)
    def hyperparameters_optimization(self: Any) -> None:
        if not is_rdb_url(self.storage):
            return original(self)
        try:
            storage = make_storage(self.storage)
        except DatabaseUnavailableError as error:
            raise SystemExit(f"error: {error}") from error
        env_id = getattr(self.env_name, "gym_id", str(self.env_name))
        if any(arg == "--seed" or arg.startswith("--seed=") for arg in sys.argv):
            print(
                "warning: the sampler is seeded with --seed: workers started with the same seed draw the same "
                "hyperparameters. Give each worker its own --seed, or leave it out (a random one).",
                file=sys.stderr,
                flush=True,
            )
        module_optuna = exp_manager_module.optuna
        module_callback = exp_manager_module.MaxTrialsCallback
        exp_manager_module.optuna = _OptunaForStudy(storage, self.algo, env_id, self.max_total_trials)
        exp_manager_module.MaxTrialsCallback = lambda n_trials, states=None: WaitingMaxTrialsCallback(n_trials)
        try:
            for restart in range(MAX_OPTIMIZE_RESTARTS + 1):
                try:
                    return original(self)
                except DatabaseUnavailableError:
                    raise
                except Exception as error:
                    # The trial in hand could not be finished: the database was away when it ended, or the trial
                    # was failed (and retried) by another worker while this one ran it. Either way the trial is
                    # retried elsewhere: go on with the next one (a database that stays away ends the worker).
                    if restart == MAX_OPTIMIZE_RESTARTS or not (is_connection_error(error) or _was_failed_meanwhile(error)):
                        raise
                    print(f"warning: the trial in hand is lost ({_last_message(error)}); it is retried. Going on.", flush=True)
        except (DatabaseUnavailableError, StudyMismatchError) as error:
            raise SystemExit(f"error: {error}") from error
        except Exception as error:
            if is_connection_error(error):
                raise SystemExit(f"error: {unavailable_message(storage.url, storage.reconnect_s)}") from error
            raise
        finally:
            exp_manager_module.optuna = module_optuna
            exp_manager_module.MaxTrialsCallback = module_callback

    manager_class.hyperparameters_optimization = hyperparameters_optimization
    manager_class._sb3_boom_distributed = True


# --- a grid of runs as a queue of trials ---------------------------------------------------------------------


def _grid_hash(runs: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(runs, sort_keys=True, default=str).encode()).hexdigest()[:16]


class RunQueue:
    """
    A fixed grid of named runs as the trials of one study: one enqueued (waiting) trial per run; a worker
    claims a waiting trial (Optuna's atomic waiting -> running switch), beats its heartbeat while it works
    and completes it with the run's summary. A dead worker's trial is failed by the heartbeat of the others
    and re-enqueued by Optuna's retry callback, and the next worker resumes it.

    :param storage: e.g. :func:`make_storage`
    :param study_name: the grid's study
    :param runs: run name -> what defines the run (every worker of a study must pass the same grid)
    :param poll_s: seconds between two looks at the study while other workers finish
    :param wait_for_grid_s: how long a worker waits for the worker that creates the study to record the grid
    """

    def __init__(
        self,
        storage: RDBStorage,
        study_name: str,
        runs: dict[str, Any],
        poll_s: float = 2.0,
        wait_for_grid_s: float = 60.0,
    ):
        if not runs:
            raise ValueError("the grid has no runs")
        self.storage = storage
        self.study_name = study_name
        self.runs = runs
        self.poll_s = poll_s
        self.wait_for_grid_s = wait_for_grid_s
        self.study: optuna.Study | None = None

    def open(self) -> optuna.Study:
        """Create the study and enqueue the grid, or join it (checking that it is the same grid)."""
        try:
            with warnings_as_notes():
                self.study = optuna.create_study(storage=self.storage, study_name=self.study_name, direction="maximize")
            # The grid is enqueued before it is recorded: the workers that join wait for the record.
            self._enqueue_missing()
            self.study.set_user_attr(GRID_ATTR, sorted(self.runs))
            self.study.set_user_attr(GRID_HASH_ATTR, _grid_hash(self.runs))
        except optuna.exceptions.DuplicatedStudyError:
            self.study = optuna.load_study(storage=self.storage, study_name=self.study_name)
            self._check_grid()
            fail_stale_trials(self.study)
            self._enqueue_missing()
        return self.study

    def _check_grid(self) -> None:
        assert self.study is not None
        deadline = time.monotonic() + self.wait_for_grid_s
        while GRID_HASH_ATTR not in self.study.user_attrs:  # its creator is about to write it
            if time.monotonic() > deadline:
                raise StudyMismatchError(
                    f"study {self.study_name!r} exists but records no grid of runs (another kind of study, or its first "
                    "worker died while creating it): pass another --study-name, or delete it with "
                    "optuna delete-study --storage <URL> --study-name <name>"
                )
            time.sleep(0.5)
        attrs = self.study.user_attrs
        if attrs[GRID_HASH_ATTR] != _grid_hash(self.runs):
            theirs, ours = set(attrs.get(GRID_ATTR, [])), set(self.runs)
            details = f"only in the study: {sorted(theirs - ours)[:5]}; only in this command: {sorted(ours - theirs)[:5]}"
            if theirs == ours:
                details = "same runs, other settings (budget, eval frequency or hyperparameters)"
            raise StudyMismatchError(
                f"study {self.study_name!r} holds another grid of runs ({details}). Start every worker with the same "
                "arguments, or pass a new --study-name."
            )

    def _trials_by_run(self) -> dict[str, list[FrozenTrial]]:
        assert self.study is not None
        by_run: dict[str, list[FrozenTrial]] = {name: [] for name in self.runs}
        for trial in self.study.get_trials(deepcopy=False):
            name = trial.user_attrs.get(RUN_ATTR)
            if name in by_run:
                by_run[name].append(trial)
        return by_run

    def _enqueue_missing(self) -> None:
        """Enqueue every run with no waiting, running or complete trial (a new grid, or runs that failed)."""
        assert self.study is not None
        live = (TrialState.WAITING, TrialState.RUNNING, TrialState.COMPLETE)
        for name, trials in self._trials_by_run().items():
            if not any(trial.state in live for trial in trials):
                # Two workers may enqueue the same run at once: claim() keeps the lowest-numbered trial.
                self.study.enqueue_trial({RUN_ATTR: name}, user_attrs={RUN_ATTR: name}, skip_if_exists=False)

    def pending(self) -> list[str]:
        """Runs that are neither complete nor given up (failed with no retry left)."""
        pending = []
        for name, trials in self._trials_by_run().items():
            states = {trial.state for trial in trials}
            if TrialState.COMPLETE not in states and states & {TrialState.WAITING, TrialState.RUNNING}:
                pending.append(name)
        return pending

    def pending_or_failed(self) -> list[str]:
        """Runs with no complete trial."""
        return [
            name for name, trials in self._trials_by_run().items() if not any(t.state == TrialState.COMPLETE for t in trials)
        ]

    def _pop_waiting(self) -> optuna.trial.Trial | None:
        assert self.study is not None
        study_id = self.storage.get_study_id_from_name(self.study_name)
        for frozen in self.storage.get_all_trials(study_id, deepcopy=False, states=(TrialState.WAITING,)):
            try:
                # Optuna's own claim: the switch succeeds in exactly one worker.
                if not self.storage.set_trial_state_values(frozen._trial_id, state=TrialState.RUNNING):
                    continue
            except optuna.exceptions.UpdateFinishedTrialError:
                continue
            return optuna.trial.Trial(self.study, frozen._trial_id)
        return None

    def _is_duplicate(self, trial: optuna.trial.Trial, name: str) -> bool:
        """Whether a lower-numbered trial of the same run is waiting, running or complete (it wins)."""
        live = (TrialState.WAITING, TrialState.RUNNING, TrialState.COMPLETE)
        return any(other.number < trial.number and other.state in live for other in self._trials_by_run()[name])

    def claim(self) -> tuple[optuna.trial.Trial, str] | None:
        """
        The next run: a trial switched from waiting to running by this worker, and its run name. Waits while
        other workers hold the last runs (one may die); None when every run is complete or given up.
        """
        assert self.study is not None, "call open() first"
        told: list[str] = []
        while True:
            fail_stale_trials(self.study)
            trial = self._pop_waiting()
            if trial is not None:
                name = trial.user_attrs.get(RUN_ATTR)
                if name not in self.runs:
                    self.study.tell(trial, state=TrialState.FAIL)
                    raise StudyMismatchError(
                        f"trial {trial.number} of study {self.study_name!r} is run {name!r}, not in this grid"
                    )
                if self._is_duplicate(trial, name):
                    trial.set_user_attr("duplicate", True)
                    self.study.tell(trial, state=TrialState.FAIL)
                    continue
                trial.suggest_categorical(RUN_ATTR, sorted(self.runs))  # the enqueued value: shown as a parameter
                trial.set_user_attr("machine", f"{socket.gethostname()}:{os.getpid()}")
                return trial, name
            pending = self.pending()
            if not pending:
                return None
            if pending != told:
                print(f"waiting for runs held by other workers: {pending}", flush=True)
                told = pending
            time.sleep(self.poll_s)

    @contextlib.contextmanager
    def heartbeat(self, trial: optuna.trial.Trial) -> Iterator[None]:
        """Beat the trial's heartbeat every ``heartbeat_interval`` seconds while the block runs."""
        interval = self.storage.get_heartbeat_interval()
        if interval is None:
            yield
            return
        stop = threading.Event()

        def beat() -> None:
            while not stop.is_set():
                try:
                    self.storage.record_heartbeat(trial._trial_id)
                except Exception as error:  # a database blip: the next beat tries again
                    print(f"warning: heartbeat of trial {trial.number} failed: {error}", file=sys.stderr, flush=True)
                stop.wait(interval)

        thread = threading.Thread(target=beat, name=f"heartbeat-{trial.number}", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join()

    def complete(self, trial: optuna.trial.Trial, value: float, summary: dict[str, Any]) -> None:
        """Record the run's summary as user attributes and complete its trial with ``value``."""
        assert self.study is not None
        for key, item in summary.items():
            trial.set_user_attr(key, item)
        self.study.tell(trial, value)

    def fail(self, trial: optuna.trial.Trial, error: BaseException) -> None:
        """Fail the trial with the error (it is not retried: a new worker start re-enqueues the run)."""
        assert self.study is not None
        trial.set_user_attr("error", f"{type(error).__name__}: {error}"[:2000])
        self.study.tell(trial, state=TrialState.FAIL)

    def counts(self) -> dict[str, int]:
        return study_counts(self.study)


def study_counts(study: optuna.Study | None) -> dict[str, int]:
    """Trials per state, and retried trials (re-enqueued copies of failed ones)."""
    assert study is not None
    trials = study.get_trials(deepcopy=False)
    counts = {state.name.lower(): sum(trial.state == state for trial in trials) for state in TrialState}
    counts["retried"] = sum(1 for trial in trials if "failed_trial" in trial.system_attrs)
    counts["duplicate"] = sum(1 for trial in trials if trial.user_attrs.get("duplicate"))
    return counts


# --- export and command line -----------------------------------------------------------------------------


def best_trial_entry(study: optuna.Study, env_id: str | None = None) -> dict[str, Any]:
    """
    The best trial of a BOOM tuning study as an RL Zoo config (``{env_id: entry}``): the shipped entry of
    the env (hyperparams/boom.yml) updated with the trial's hyperparameters, as BOOM arguments.
    """
    import yaml

    from sb3_boom.zoo import convert_boom_params, shipped_hyperparams_path

    env_id = env_id or study.user_attrs.get(ENV_ATTR) or _command_argument(study.user_attrs.get("command", ""), "--env")
    if not env_id:
        raise ValueError(f"study {study.study_name!r} does not record its env: pass --env")
    algo = study.user_attrs.get(ALGO_ATTR) or _command_argument(study.user_attrs.get("command", ""), "--algo")
    if algo not in (None, "boom"):
        raise StudyMismatchError(
            f"study {study.study_name!r} tunes --algo {algo}, not boom: its trials are not BOOM arguments"
        )
    best = study.best_trial
    with open(shipped_hyperparams_path()) as file:
        table = yaml.safe_load(file)
    entry = copy.deepcopy(table.get(env_id) or table.get("default") or {})
    entry.update(convert_boom_params(best.params))
    return {env_id: entry}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m sb3_boom.distributed", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    export = commands.add_parser("export-best", help="the best trial as an RL Zoo config entry (YAML)")
    status = commands.add_parser("status", help="trials per state (and failed trials retried)")
    for sub in (export, status):
        sub.add_argument("--storage", required=True, help="database URL, e.g. postgresql://user:password@host:5432/optuna")
        sub.add_argument("--study-name", required=True)
    export.add_argument("--env", default=None, help="env id of the entry (default: the study's)")
    export.add_argument("--out", default=None, help="YAML file to write (default: print it)")
    args = parser.parse_args(argv)
    import yaml

    study = optuna.load_study(storage=normalize_url(args.storage), study_name=args.study_name)
    if args.command == "status":
        print(json.dumps(study_counts(study)))
        return
    text = yaml.safe_dump(best_trial_entry(study, args.env), sort_keys=False)
    if args.out:
        with open(args.out, "w") as file:
            file.write(text)
        print(f"wrote the best trial ({study.best_trial.number}, value {study.best_value:.2f}) to {args.out}")
    else:
        print(text, end="")


if __name__ == "__main__":
    main()
