"""
Fault drill of distributed tuning (docs/scaling.md): RL Zoo workers tune BOOM on one PostgreSQL study while

1. one worker is killed with SIGKILL in the middle of a trial (a lost machine), and a replacement is started;
2. the PostgreSQL server is restarted (fast shutdown: every open connection is cut) for ``--down-s`` seconds;
   a worker that stops on the lost connection is started again with the same command.

It prints the trials completed, failed, retried and lost (trials that ended neither complete nor pruned and
were not retried, trials left running or waiting, and completed trials missing after the restart): lost
must be 0. Without ``--storage`` it starts a throwaway server from the system's binaries.

    python -m studies.fault_drill --workers 2 --trials 6
    python -m studies.fault_drill --storage postgresql://user:password@host/optuna --study-name drill
"""

import argparse
import json
import pathlib
import signal
import subprocess
import tempfile
import time

import optuna
from optuna.trial import TrialState

from sb3_boom.distributed import study_counts
from sb3_boom.local_postgres import LocalPostgres
from sb3_boom.study_storage import normalize_url
from studies.zoo_workers import start_zoo_worker

FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)


def trials(storage: str, study_name: str) -> list[optuna.trial.FrozenTrial]:
    try:
        return optuna.load_study(storage=storage, study_name=study_name).get_trials()
    except KeyError:  # not created yet
        return []
    except Exception:  # the server is down for the drill
        return []


def wait_until(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise SystemExit(f"drill failed: timed out waiting for {what}")
        time.sleep(0.2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--storage", default=None, help="database URL (default: a throwaway local PostgreSQL)")
    parser.add_argument("--study-name", default=f"fault-drill-{int(time.time())}")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--trials", type=int, default=6, help="--max-total-trials of the study")
    parser.add_argument("--down-s", type=float, default=3.0, help="seconds the database stays down")
    parser.add_argument("--heartbeat-s", type=int, default=1)
    parser.add_argument(
        "--grace-s", type=int, default=10, help="longer than the database outage (else live trials are retried)"
    )
    parser.add_argument("--folder", type=pathlib.Path, default=None, help="worker logs (default: a temporary folder)")
    args = parser.parse_args()
    if args.workers < 2:
        parser.error("--workers must be >= 2 (one of them is killed)")

    server = None
    if args.storage is None:
        server = LocalPostgres(durable=True).start()
        args.storage = server.url()
    url = normalize_url(args.storage)
    folder = args.folder or pathlib.Path(tempfile.mkdtemp(prefix="fault-drill-"))
    started = time.perf_counter()
    launches = 0

    def launch(name: str) -> subprocess.Popen:
        nonlocal launches
        launches += 1
        return start_zoo_worker(folder, url, args.study_name, args.trials, f"{name}.log", args.heartbeat_s, args.grace_s)

    try:
        workers = {f"worker{i}": launch(f"worker{i}") for i in range(args.workers)}

        # 1. SIGKILL a worker in the middle of a trial: wait until every worker trains (its trial has all its
        # parameters), so that worker0 holds one of the running trials.
        def training() -> int:
            return sum(t.state == TrialState.RUNNING and "align_temperature" in t.params for t in trials(url, args.study_name))

        wait_until(lambda: training() >= args.workers, 300, "a running trial on every worker")
        time.sleep(1.0)
        running_before = {t.number for t in trials(url, args.study_name) if t.state == TrialState.RUNNING}
        workers["worker0"].send_signal(signal.SIGKILL)
        workers["worker0"].wait()
        print(f"[{time.perf_counter() - started:6.1f} s] killed worker0 (SIGKILL); trials running: {sorted(running_before)}")
        workers["replacement"] = launch("replacement")

        # 2. Restart the database once at least one trial has completed.
        wait_until(
            lambda: any(t.state in FINISHED for t in trials(url, args.study_name)), 300, "a finished trial before the restart"
        )
        finished_before = {t.number: t.state for t in trials(url, args.study_name) if t.state in FINISHED}
        if server is not None:
            server.restart(down_s=args.down_s)
            print(
                f"[{time.perf_counter() - started:6.1f} s] restarted PostgreSQL (down {args.down_s:.0f} s); "
                f"finished trials before: {sorted(finished_before)}"
            )
        else:
            print("note: --storage given: restart the database by hand to drill it")

        # Workers that stopped on the lost connection are started again (the documented recovery).
        restarted = []
        deadline = time.monotonic() + 900
        while any(worker.poll() is None for worker in workers.values()) and time.monotonic() < deadline:
            for name, worker in list(workers.items()):
                if worker.poll() not in (None, 0) and name != "worker0" and name not in restarted:
                    tail = (folder / f"{name}.log").read_text().strip().splitlines()[-1:]
                    print(
                        f"[{time.perf_counter() - started:6.1f} s] {name} stopped ({worker.returncode}): {tail}; started again"
                    )
                    restarted.append(name)
                    workers[f"{name}-again"] = launch(f"{name}-again")
            time.sleep(0.5)
        failed_workers = {
            name: worker.returncode for name, worker in workers.items() if name != "worker0" and worker.returncode != 0
        }
        failed_workers = {name: code for name, code in failed_workers.items() if name not in restarted}

        final = trials(url, args.study_name)
        by_number = {t.number: t for t in final}
        # A retry's retry_history lists every failed trial it replaces (a retry of a retry included).
        retried_numbers = {number for t in final for number in t.system_attrs.get("retry_history", [])}
        lost_failed = [t.number for t in final if t.state == TrialState.FAIL and t.number not in retried_numbers]
        stuck = [t.number for t in final if t.state in (TrialState.RUNNING, TrialState.WAITING)]
        missing = [n for n, state in finished_before.items() if n not in by_number or by_number[n].state != state]
        finished = sum(t.state in FINISHED for t in final)
        counts = study_counts(optuna.load_study(storage=url, study_name=args.study_name))
        result = {
            "trials_target": args.trials,
            "finished": finished,
            "completed": counts["complete"],
            "pruned": counts["pruned"],
            "failed": counts["fail"],
            "retried": counts["retried"],
            "lost": len(lost_failed) + len(stuck) + len(missing) + max(0, args.trials - finished),
            "worker_launches": launches,
            "workers_restarted_after_db_restart": len(restarted),
            "workers_failed": failed_workers,
            "wall_s": round(time.perf_counter() - started, 1),
        }
        print(
            f"trials completed {result['completed']}, pruned {result['pruned']}, failed {result['failed']}, "
            f"retried {result['retried']}, lost {result['lost']} (target {args.trials} finished: {finished})"
        )
        if result["lost"]:
            print(
                f"lost: failed, not retried {lost_failed}; running or waiting {stuck}; "
                f"finished before the restart, gone {missing}"
            )
        print(json.dumps(result))
        print(f"worker logs: {folder}")
        if result["lost"] or failed_workers:
            raise SystemExit(1)
    finally:
        for worker in locals().get("workers", {}).values():
            if worker.poll() is None:
                worker.kill()
        if server is not None:
            server.stop()


if __name__ == "__main__":
    main()
