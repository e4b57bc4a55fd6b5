"""
What the RL Zoo start-up hook (``sb3_boom_zoo.pth``) costs every Python process of the environment.

Runs ``python -c pass`` many times, interleaving runs with the hook and runs with it switched off
(``SB3_BOOM_DISABLE_ZOO_HOOK=1``), and reports the median wall time of each, their difference with
a bootstrap 95% interval, and the hook's own import time from ``python -X importtime``.

    python -m studies.startup_cost --runs 300
"""

import argparse
import os
import re
import statistics
import subprocess
import sys
import time

import numpy as np


def time_interpreter(env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", "pass"], env=env, check=True)
    return time.perf_counter() - start


def hook_import_microseconds(env: dict[str, str]) -> int:
    stderr = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "pass"], env=env, capture_output=True, text=True, check=True
    ).stderr
    match = re.search(r"import time:\s+\d+ \|\s+(\d+) \|\s+sb3_boom_zoo_hook$", stderr, re.MULTILINE)
    if match is None:
        raise RuntimeError("sb3_boom_zoo_hook was not imported at start-up: is sb3-boom installed in this interpreter?")
    return int(match.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=300, help="interpreter starts per variant")
    args = parser.parse_args()

    # Users have cached bytecode; this machine may disable writing it.
    with_hook = {k: v for k, v in os.environ.items() if k not in ("PYTHONDONTWRITEBYTECODE", "SB3_BOOM_DISABLE_ZOO_HOOK")}
    without_hook = {**with_hook, "SB3_BOOM_DISABLE_ZOO_HOOK": "1"}
    for env in (with_hook, without_hook):  # warm the file cache and write .pyc files
        for _ in range(5):
            time_interpreter(env)

    times = {"with hook": [], "without hook": []}
    for _ in range(args.runs):
        times["with hook"].append(time_interpreter(with_hook))
        times["without hook"].append(time_interpreter(without_hook))
    imports = [hook_import_microseconds(with_hook) for _ in range(21)]

    rng = np.random.default_rng(0)
    on, off = np.array(times["with hook"]), np.array(times["without hook"])
    resampled = [np.median(rng.choice(on, on.size)) - np.median(rng.choice(off, off.size)) for _ in range(2000)]
    low, high = np.percentile(resampled, [2.5, 97.5])
    print(f"python: {sys.executable}  runs per variant: {args.runs}")
    for name, values in times.items():
        print(f"  {name:13s} median {1e3 * statistics.median(values):7.2f} ms   "
              f"(p10 {1e3 * np.percentile(values, 10):.2f}, p90 {1e3 * np.percentile(values, 90):.2f})")  # fmt: skip
    print(f"  difference    median {1e3 * (np.median(on) - np.median(off)):+7.2f} ms   "
          f"(bootstrap 95% interval {1e3 * low:+.2f} .. {1e3 * high:+.2f} ms)")  # fmt: skip
    print(f"  sb3_boom_zoo_hook import (-X importtime, median of 21): {statistics.median(imports)} us")


if __name__ == "__main__":
    main()
