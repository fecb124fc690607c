"""The Celery side of bench/vs_celery.py: the task a Celery user would write, and its driver.

Runs only in the Celery virtualenv (bench/.celery-venv, made by vs_celery.py); nothing
in Corral or its tests imports it. The worker is started by vs_celery.py as

    celery -A celery_app worker --pool threads --concurrency 8

and the same module, run as a script, measures one round and prints it as JSON:

    python bench/celery_app.py --jobs 5000 --latency-jobs 200
    python bench/celery_app.py --steps 200    # for bench/latency_steps.py

Broker and result backend are the Redis at $BENCH_REDIS_URL, with Celery's defaults
(results kept in Redis, in memory).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import time

from celery import Celery, group

REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
app = Celery("bench", broker=REDIS_URL, backend=REDIS_URL)

CLOCK = "date +%s.%N"  # the job's own clock, the same command the Corral side runs
GAP = 0.02  # seconds between latency samples, so the worker is idle at each submit


@app.task(name="bench.run")  # one name, whether imported by the worker or run as the driver
def run(cmd: str) -> dict[str, object]:
    """Run a command line through /bin/sh and keep what it printed and how it ended
    (and, for bench/latency_steps.py, when the task began)."""
    entered = time.time()
    done = subprocess.run(cmd, shell=True, capture_output=True)
    return {
        "stdout": done.stdout.decode(errors="replace"),
        "stderr": done.stderr.decode(errors="replace"),
        "exit_code": done.returncode,
        "entered": entered,
    }


def wait_for_worker(timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if app.control.ping(timeout=0.5):
            return
    raise RuntimeError("the Celery worker did not answer a ping")


def throughput(jobs: int) -> float:
    """Submit ``jobs`` `true` jobs as one group and wait for every result: jobs/s."""
    start = time.perf_counter()
    outcomes = group(run.s("true") for _ in range(jobs)).apply_async().get(timeout=600)
    elapsed = time.perf_counter() - start
    failed = sum(1 for outcome in outcomes if outcome["exit_code"] != 0)
    if failed:
        raise RuntimeError(f"{failed} Celery jobs failed")
    return jobs / elapsed


def latency(samples: int) -> list[float]:
    """Submit-to-running of single jobs on an idle worker, in ms, by the job's own clock."""
    waits = []
    for _ in range(samples):
        t0 = time.time()
        outcome = run.delay(CLOCK).get(timeout=60)
        waits.append((float(outcome["stdout"]) - t0) * 1000)
        time.sleep(GAP)
    return waits


def steps(samples: int) -> dict[str, list[float]]:
    """For bench/latency_steps.py: when each step of single jobs came, in ms after
    the submit began."""
    seen: dict[str, list[float]] = {"delay() returned": [], "task began": [], "job running": []}
    for _ in range(samples):
        t0 = time.time()
        result = run.delay(CLOCK)
        sent = time.time()
        outcome = result.get(timeout=60)
        moments = (sent, outcome["entered"], float(outcome["stdout"]))
        for step, at in zip(seen, moments, strict=True):
            seen[step].append((at - t0) * 1000)
        time.sleep(GAP)
    return seen


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=5000)
    parser.add_argument("--latency-jobs", type=int, default=200)
    parser.add_argument("--steps", type=int, help="only the step timeline of this many jobs")
    args = parser.parse_args()
    wait_for_worker()
    if args.steps:
        latency(3)  # warm-up
        print(json.dumps(steps(args.steps)))
        return
    rate = throughput(args.jobs)
    latency(3)  # warm-up, as on the Corral side
    print(json.dumps({"throughput": rate, "latency": latency(args.latency_jobs)}))


if __name__ == "__main__":
    main()
