"""Where submit-to-running goes, step by step, for single jobs on an idle worker.

A real ``corral server`` (SQLite) and one real ``corral worker --isolation none`` run
``date +%s.%N`` jobs one at a time, as the latency half of bench/worker.py does. The
worker is this file run as ``traced-worker``: the real CLI with three of its functions
wrapped to write a timestamp each (the claim's answer handed to the runner, the
attempt's start, the spawn's start and end), so each job's submit-to-running splits into:

  submit round trip   POST /api/v1/jobs until its answer (the driver's own wait)
  submit -> claimed   from before the submit to the claim's answer in the worker
  claimed -> run      the runner: slot, lease, the attempt's task
  run -> spawn        the attempt's bookkeeping: directory, cgroup, environment
  spawn               subprocess.Popen (vfork, exec of /bin/sh)
  spawned -> date     /bin/sh up, its cgroup join, exec of date, date reading its clock

    .venv/bin/python bench/start_split.py [--jobs 40] [--isolation none]

Medians and 90th percentiles in ms. Timestamps are wall clock (time.time), as the job's.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.dispatcher import server  # noqa: E402
from bench.worker import await_stdout, mint, wait_for_worker  # noqa: E402

STEPS = (
    "submit round trip",
    "submit -> claimed",
    "claimed -> run",
    "run -> spawn",
    "spawn",
    "spawned -> date",
    "total",
)


def traced_worker() -> None:
    """The worker CLI with timestamps written to $TRACE_LOG: ``event job_id time...``."""
    import corral.agent.executor as executor
    import corral.agent.runner as runner
    from corral.cli.main import app

    out = Path(os.environ["TRACE_LOG"]).open("a", buffering=1)  # noqa: SIM115
    names = vars(executor)  # spawn is imported there from process.py: wrapped where used
    start, spawn, run = runner.JobRunner.start, names["spawn"], executor.Execution.run

    def traced_start(self: Any, job: dict[str, Any], since: float) -> None:
        out.write(f"claimed {job['id']} {time.time():.6f}\n")
        start(self, job, since)

    def traced_spawn(argv: Any, *, cwd: Path, env: Any) -> Any:
        began = time.time()
        group = spawn(argv, cwd=cwd, env=env)
        out.write(f"spawn {env['CORRAL_JOB_ID']} {began:.6f} {time.time():.6f}\n")
        return group

    async def traced_run(self: Any) -> Any:
        out.write(f"run {self.job.job_id} {time.time():.6f}\n")
        return await run(self)

    runner.JobRunner.start = traced_start  # type: ignore[method-assign]
    names["spawn"] = traced_spawn
    executor.Execution.run = traced_run  # type: ignore[method-assign]
    sys.argv = ["corral", *sys.argv[2:]]
    app()


def events(log: Path, job_id: str) -> dict[str, list[float]]:
    found = {}
    for line in log.read_text().splitlines():
        name, job, *times = line.split()
        if job == job_id:
            found[name] = [float(t) for t in times]
    return found


def one_job(http: httpx.Client, log: Path) -> tuple[float, ...]:
    t0 = time.time()
    answer = http.post("/api/v1/jobs", json={"command": "date +%s.%N"})
    answered = time.time()
    job_id = answer.json()["id"]
    started = float(await_stdout(http, job_id).strip())
    time.sleep(0.05)  # the worker goes idle again, its trace written
    seen = events(log, job_id)
    claimed, run, (spawning, spawned) = seen["claimed"][0], seen["run"][0], seen["spawn"]
    return (
        answered - t0,
        claimed - t0,
        run - claimed,
        spawning - run,
        spawned - spawning,
        started - spawned,
        started - t0,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--jobs", type=int, default=40)
    parser.add_argument("--isolation", default="none")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, server(Path(tmp), None) as (url, admin):
        log = Path(tmp) / "trace.log"
        env = {**os.environ, "CORRAL_LOG_LEVEL": "warning", "TRACE_LOG": str(log)}
        cmd = [sys.executable, __file__, "traced-worker", "worker", "--server", url]
        cmd += ["--token", mint(url, admin, "worker"), "--concurrency", "8"]
        cmd += ["--work-dir", str(Path(tmp) / "work"), "--isolation", args.isolation]
        worker = subprocess.Popen(cmd, env=env, stderr=subprocess.DEVNULL)
        auth = {"Authorization": f"Bearer {admin}"}
        try:
            with httpx.Client(base_url=url, headers=auth, timeout=60) as http:
                wait_for_worker(http)
                for _ in range(3):  # warm-up
                    one_job(http, log)
                rows = [one_job(http, log) for _ in range(args.jobs)]
        finally:
            worker.terminate()
            worker.wait(30)
    print(f"submit-to-running of {args.jobs} single jobs, isolation {args.isolation}:")
    for step, values in zip(STEPS, zip(*rows, strict=True), strict=True):
        ms = sorted(v * 1000 for v in values)
        p90 = ms[int(len(ms) * 0.9)]
        print(f"  {step:18} p50 {statistics.median(ms):6.2f} ms   p90 {p90:6.2f} ms")


if __name__ == "__main__":
    if sys.argv[1:2] == ["traced-worker"]:
        traced_worker()
    else:
        main()
