"""
Scaling of distributed tuning (docs/scaling.md), on whatever machine runs it:

- ``throughput``: a tiny-budget RL Zoo tuning study of BOOM on Pendulum-v1 (200 steps, 2 evaluations per
  trial) with 1, 2 and 4 workers on one PostgreSQL study: finished trials per minute, wall time from the
  workers' start to their exit (Python and torch start-up included).
- ``overhead``: the storage's cost per trial (ask, BOOM's search space sampled, tell) and per pruning report
  (``trial.report`` + ``trial.should_prune`` with the median pruner) in milliseconds, with no training, on
  PostgreSQL (heartbeat on, as the workers use it), SQLite and Optuna's JournalStorage (file).

Without ``--storage`` it starts a throwaway PostgreSQL (fsync on) from the system's binaries. One JSON line
per measurement is appended to ``--out``.

    python -m studies.distributed_scaling --workers 1 2 4 --trials 8
    python -m studies.distributed_scaling --skip-throughput --overhead-trials 50 --reports 20
"""

import argparse
import json
import os
import pathlib
import platform
import statistics
import tempfile
import time

import optuna
from optuna.trial import TrialState

from sb3_boom.local_postgres import LocalPostgres
from sb3_boom.study_storage import HeartbeatSettings, make_storage, normalize_url, warnings_as_notes
from sb3_boom.zoo import sample_boom_params
from studies.zoo_workers import start_zoo_worker


def throughput(url: str, workers: int, trials: int, folder: pathlib.Path) -> dict:
    """Start ``workers`` tuning workers on a new study of ``trials`` trials; time them to the end."""
    study_name = f"scaling-{workers}w-{int(time.time())}"
    started = time.perf_counter()
    processes = [start_zoo_worker(folder / study_name, url, study_name, trials, f"worker{i}.log") for i in range(workers)]
    codes = [process.wait() for process in processes]
    wall_s = time.perf_counter() - started
    if any(codes):
        raise SystemExit(f"a worker failed ({codes}): see {folder / study_name}")
    finished = [t for t in optuna.load_study(storage=url, study_name=study_name).get_trials() if t.state != TrialState.FAIL]
    trial_s = [(t.datetime_complete - t.datetime_start).total_seconds() for t in finished]
    return dict(
        kind="throughput",
        workers=workers,
        trials=len(finished),
        pruned=sum(t.state == TrialState.PRUNED for t in finished),
        wall_s=round(wall_s, 1),
        trials_per_min=round(len(finished) / wall_s * 60, 2),
        trial_s_median=round(statistics.median(trial_s), 2),
    )


def overhead(name: str, storage, n_trials: int, reports: int) -> dict:
    """Milliseconds per trial (ask + BOOM's search space + tell) and per report (report + should_prune)."""
    with warnings_as_notes():
        study = optuna.create_study(
            storage=storage,
            study_name=f"overhead-{int(time.time() * 1000)}",
            direction="maximize",
            sampler=optuna.samplers.RandomSampler(seed=0),
            pruner=optuna.pruners.MedianPruner(n_startup_trials=2),
        )
    per_trial, per_report = [], []
    for number in range(n_trials):
        start = time.perf_counter()
        trial = study.ask()
        sample_boom_params(trial, 1, 1, {})
        asked = time.perf_counter()
        pruned = False
        for step in range(reports):
            before = time.perf_counter()
            trial.report(float(number + step), step)
            pruned = trial.should_prune()
            per_report.append(time.perf_counter() - before)
            if pruned:
                break
        before_tell = time.perf_counter()
        study.tell(trial, None if pruned else float(number), state=TrialState.PRUNED if pruned else TrialState.COMPLETE)
        per_trial.append(asked - start + time.perf_counter() - before_tell)
    return dict(
        kind="overhead",
        storage=name,
        trials=n_trials,
        reports=len(per_report),
        ms_per_trial=round(1e3 * statistics.median(per_trial), 2),
        ms_per_trial_mean=round(1e3 * statistics.mean(per_trial), 2),
        ms_per_report=round(1e3 * statistics.median(per_report), 2),
        ms_per_report_mean=round(1e3 * statistics.mean(per_report), 2),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--storage", default=None, help="PostgreSQL URL (default: a throwaway local server)")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--trials", type=int, default=8, help="trials of each throughput study")
    parser.add_argument("--overhead-trials", type=int, default=40)
    parser.add_argument("--reports", type=int, default=10, help="pruning reports per trial in the overhead study")
    parser.add_argument("--skip-throughput", action="store_true")
    parser.add_argument("--out", type=pathlib.Path, default=pathlib.Path("benchmarks/results/distributed_scaling.jsonl"))
    args = parser.parse_args()

    server = None
    if args.storage is None:
        server = LocalPostgres(durable=True).start()
        args.storage = server.url()
    url = normalize_url(args.storage)
    folder = pathlib.Path(tempfile.mkdtemp(prefix="distributed-scaling-"))
    machine = dict(host=platform.node(), cpus=os.cpu_count(), python=platform.python_version(), optuna=optuna.__version__)
    results = []
    try:
        with warnings_as_notes():
            postgres = make_storage(url, HeartbeatSettings(heartbeat_s=60))
        journal = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(folder / "journal.log")))
        for name, storage in (
            ("postgresql", postgres),
            ("sqlite", f"sqlite:///{folder / 'optuna.db'}"),
            ("journal-file", journal),
        ):
            results.append(overhead(name, storage, args.overhead_trials, args.reports))
            print(json.dumps(results[-1]), flush=True)
        if not args.skip_throughput:
            for workers in args.workers:
                results.append(throughput(url, workers, args.trials, folder))
                print(json.dumps(results[-1]), flush=True)
    finally:
        if server is not None:
            server.stop()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with open(args.out, "a") as file:
        for result in results:
            file.write(json.dumps({**result, **machine, "time": time.strftime("%Y-%m-%d %H:%M")}) + "\n")
    print(f"appended {len(results)} lines to {args.out}")


if __name__ == "__main__":
    main()
