"""Submit-to-running, step by step, on Corral and on Celery + Redis: prints figures.

bench/vs_celery.py gives one number per side for single jobs on an idle worker: from
just before the submit to the job's own clock (`date +%s.%N`). This says where that time
goes. Corral runs as there (a real `corral server` on SQLite, one `corral worker
--concurrency 8`, ``--isolation none`` unless asked), started through bench/stamps.py,
which notes when each step of the path begins or ends; Celery as there too (Redis, a
threads pool of 8), its task noting when it began. Printed: the median moment of each
step, in ms after the submit began, over ``--jobs`` single jobs 20 ms apart.

    .venv/bin/python bench/latency_steps.py [--jobs 200] [--isolation none|user|sandbox]

The stamps are wall-clock readings from different processes; each costs a line written
to a file. The steps overlap on two cores (the server answers the submit while the
worker starts the job), so their gaps do not add up to a CPU budget.
"""

from __future__ import annotations

import argparse
import bisect
import os
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import httpx

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent))

from bench import dispatcher  # noqa: E402
from bench.vs_celery import celery_driver, celery_running, ensure_redis, ensure_venv  # noqa: E402
from bench.worker import await_stdout, mint, wait_for_worker, worker  # noqa: E402

CLOCK = "date +%s.%N"
GAP = 0.02  # seconds between jobs, as bench/worker.py's latency: the worker idle at each


def corral_steps(samples: int, isolation: str) -> dict[str, list[float]]:
    with tempfile.TemporaryDirectory() as tmp:
        stamps = Path(tmp) / "stamps"
        stamps.touch()
        os.environ["BENCH_STAMPS"] = str(stamps)  # the server and worker inherit it
        dispatcher.CORRAL = [sys.executable, str(BENCH / "stamps.py")]
        with dispatcher.server(Path(tmp) / "data", None) as (url, admin):
            token = mint(url, admin, "worker")
            auth = {"Authorization": f"Bearer {admin}"}
            with (
                worker(url, token, Path(tmp) / "work", 8, isolation),
                httpx.Client(base_url=url, headers=auth, timeout=60) as http,
            ):
                wait_for_worker(http)
                for _ in range(3):  # warm-up
                    warm = http.post("/api/v1/jobs", json={"command": "true"}).json()
                    await_stdout(http, warm["id"])
                return submit_and_read(http, stamps, samples)


def submit_and_read(http: httpx.Client, stamps: Path, samples: int) -> dict[str, list[float]]:
    """Submit single jobs; each step's moment per job, in ms after its submit began."""
    begun: list[float] = []
    driver: list[dict[str, float]] = []
    skip = len(stamps.read_text().splitlines())  # the warm-up's
    for _ in range(samples):
        t0 = time.time()
        job_id = http.post("/api/v1/jobs", json={"command": CLOCK}).json()["id"]
        answered = time.time()
        running = float(await_stdout(http, job_id))
        begun.append(t0)
        driver.append({"client: submit's answer read": answered, "job running": running})
        time.sleep(GAP)
    firsts: list[dict[str, float]] = [dict(d) for d in driver]
    for line in stamps.read_text().splitlines()[skip:]:
        at, step = line.split(" ", 1)
        job = bisect.bisect_right(begun, float(at)) - 1  # the job whose submit came last
        if job >= 0:
            firsts[job].setdefault(step, float(at))  # its first: the parked claim's answer
    seen: dict[str, list[float]] = defaultdict(list)
    for t0, steps in zip(begun, firsts, strict=True):
        for step, at in steps.items():
            seen[step].append((at - t0) * 1000)
    return seen


def show(title: str, seen: dict[str, list[float]]) -> None:
    print(title)
    medians = sorted((statistics.median(times), step) for step, times in seen.items())
    for median, step in medians:
        print(f"  {median:6.2f}  {step}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--jobs", type=int, default=200)
    parser.add_argument("--isolation", default="none", help="the Corral worker's")
    args = parser.parse_args()
    redis, python = ensure_redis(), ensure_venv()
    print(f"submit to running, ms after the submit began (medians of {args.jobs} single jobs)")
    with celery_running(redis, python) as (env, _):
        celery = celery_driver(python, env, ["--steps", str(args.jobs)])
    show("Celery + Redis (worker --pool threads --concurrency 8)", celery)
    title = f"Corral (SQLite; worker --concurrency 8 --isolation {args.isolation})"
    show(title, corral_steps(args.jobs, args.isolation))


if __name__ == "__main__":
    main()
