"""Corral against Celery + Redis, side by side on this machine: prints one table.

Both sides run the same job, `true` as a subprocess whose stdout, stderr and exit code
are kept as the result, on one worker with 8 slots:
  - Celery: Debian's redis-server (in memory) as broker and result backend, a worker
    `--pool threads --concurrency 8` whose task is bench/celery_app.py's `run`
    (`subprocess.run(cmd, shell=True, capture_output=True)`), jobs submitted as a group;
  - Corral: a real `corral server` on SQLite and one `corral worker --concurrency 8`,
    jobs submitted in bulk (bench/dispatcher.py and bench/worker.py do the driving),
    twice: at `--isolation none` (like for like: Celery's task runs the command bare)
    and at the default `--isolation auto` (a bubblewrap sandbox and a uid of its own
    per job, where the machine allows: docs/isolation.md), to show what that costs.
Rounds alternate (Celery, Corral, Celery, Corral, ...) so both sides see the same
machine, each round on fresh processes; each side is judged by its best round.

Figures: end-to-end jobs/s; submit-to-running p50/p99 of single jobs on an idle worker,
by the job's own clock (`date +%s.%N` against the time just before the submit); the raw
spawn rate of the job from Python; and the ratios Corral/Celery. Each round's line also
says the CPU one job cost over the round: the side's own processes (Corral's server and
worker; Celery's worker and Redis) and the job's own (`/bin/sh` and what it runs).

It installs what it lacks: redis-server through apt-get (as root), Celery in its own
virtualenv bench/.celery-venv (ignored by git), with py-spy beside it for profiling.

    .venv/bin/python bench/vs_celery.py [--jobs 5000] [--latency-jobs 200] [--rounds 2]

To see where the time goes, run one round under py-spy (which follows the children:
attaching to a running process by pid fails in these containers) and summarise it per
process with bench/profile_summary.py:

    bench/.celery-venv/bin/py-spy record --subprocesses --format raw -o prof.txt -- \
        .venv/bin/python bench/vs_celery.py --rounds 1 --latency-jobs 20
    .venv/bin/python bench/profile_summary.py prof.txt
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent))

from bench.dispatcher import SERVER_PIDS, server  # noqa: E402
from bench.worker import (  # noqa: E402
    latency,
    mint,
    own_and_children_cpu,
    spawn_true,
    throughput,
    wait_for_worker,
    worker,
)
from tests.live import free_port  # noqa: E402

VENV = BENCH / ".celery-venv"
CELERY = "celery[redis]>=5.4,<6"
SPAWN_SAMPLES = 2000


@dataclass
class Round:
    throughput: float  # jobs/s
    p50: float  # ms
    p99: float  # ms
    # CPU ms per job over the round (its throughput and latency jobs): the side's own
    # processes (server and worker; Redis and Celery's worker), and the jobs' processes.
    cpu: float = 0.0
    job_cpu: float = 0.0


def round_cpu(pids: list[int], worker: int) -> tuple[float, float]:
    """CPU so far (s) of ``pids`` together, and of ``worker``'s reaped children."""
    own = sum(own_and_children_cpu(pid)[0] for pid in pids)
    return own, own_and_children_cpu(worker)[1]


def per_job(before: tuple[float, float], after: tuple[float, float], jobs: int) -> list[float]:
    return [(a - b) / jobs * 1000 for a, b in zip(after, before, strict=True)]


def percentiles(waits: list[float]) -> tuple[float, float]:
    """p50 and p99 the way bench/worker.py's ``latency`` takes them."""
    waits = sorted(waits)
    return statistics.median(waits), waits[max(0, int(len(waits) * 0.99) - 1)]


# ---- installing what the Celery side needs -------------------------------------------


def ensure_redis() -> str:
    """Debian's redis-server, installed with apt-get when it is missing."""
    found = shutil.which("redis-server")
    if found:
        return found
    if os.geteuid() != 0:
        sys.exit("redis-server is missing: `apt-get install redis-server` as root, then retry")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "-q", "--no-install-recommends", "redis-server"]
    if subprocess.run(install, env=env).returncode != 0:
        subprocess.run(["apt-get", "update", "-q"], env=env, check=True)
        subprocess.run(install, env=env, check=True)
    return shutil.which("redis-server") or "/usr/bin/redis-server"


def ensure_venv() -> Path:
    """bench/.celery-venv with Celery's Redis transport, and py-spy for profiling."""
    python = VENV / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    wanted = []
    if subprocess.run([python, "-c", "import celery, redis"], capture_output=True).returncode:
        wanted.append(CELERY)
    if not (VENV / "bin" / "py-spy").exists():
        wanted.append("py-spy")
    if wanted:
        subprocess.run([python, "-m", "pip", "install", "-q", *wanted], check=True)
    return python


# ---- the machine's own ceiling -------------------------------------------------------


def spawn_shell(count: int) -> float:
    """The Celery task's own call, repeated: `true` through /bin/sh, output captured."""
    start = time.perf_counter()
    for _ in range(count):
        subprocess.run("true", shell=True, capture_output=True, check=True)
    return count / (time.perf_counter() - start)


# ---- the Celery side -----------------------------------------------------------------


def wait_for_port(port: int, proc: subprocess.Popen[bytes], what: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and proc.poll() is None:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
            return
        time.sleep(0.05)
    raise RuntimeError(f"{what} did not start")


@contextlib.contextmanager
def running(cmd: list[str], **kwargs: Any) -> Iterator[subprocess.Popen[bytes]]:
    """A child process for the duration of the block, stopped (then killed) after it."""
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, **kwargs)
    try:
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextlib.contextmanager
def celery_running(redis: str, python: Path) -> Iterator[tuple[dict[str, str], list[int]]]:
    """Fresh Redis (no persistence) and a fresh Celery worker for the block: the
    environment a driver needs to reach them, and their pids (Redis, the worker)."""
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        redis_cmd = [redis, "--port", str(port), "--bind", "127.0.0.1", "--dir", tmp]
        redis_cmd += ["--save", "", "--appendonly", "no", "--loglevel", "warning"]
        env = {**os.environ, "BENCH_REDIS_URL": f"redis://127.0.0.1:{port}/0"}
        env.pop("PYTHONPATH", None)
        celery = [str(python.parent / "celery"), "-A", "celery_app", "worker"]
        celery += ["--pool", "threads", "--concurrency", "8", "--loglevel", "warning"]
        with running(redis_cmd) as redis_proc:
            wait_for_port(port, redis_proc, "redis-server")
            with running(celery, cwd=BENCH, env=env, stderr=subprocess.DEVNULL) as workers:
                yield env, [redis_proc.pid, workers.pid]


def celery_driver(python: Path, env: dict[str, str], args: list[str]) -> Any:
    """bench/celery_app.py run as the driver with ``args``: what it printed, parsed."""
    driver = [str(python), str(BENCH / "celery_app.py"), *args]
    out = subprocess.run(driver, cwd=BENCH, env=env, capture_output=True, text=True)
    if out.returncode:
        raise RuntimeError(f"the Celery driver failed:\n{out.stderr}")
    return json.loads(out.stdout)


def celery_round(redis: str, python: Path, jobs: int, samples: int) -> Round:
    with celery_running(redis, python) as (env, pids):
        _, workers = pids  # the jobs' processes are the Celery worker's children
        before = round_cpu(pids, workers)
        figures = celery_driver(python, env, ["--jobs", str(jobs), "--latency-jobs", str(samples)])
        after = round_cpu(pids, workers)
    cpu = per_job(before, after, jobs + 3 + samples)
    return Round(figures["throughput"], *percentiles(figures["latency"]), *cpu)


# ---- the Corral side -----------------------------------------------------------------


def corral_round(jobs: int, samples: int, isolation: str) -> Round:
    with tempfile.TemporaryDirectory() as tmp, server(Path(tmp), None) as (url, admin):
        token = mint(url, admin, "worker")
        auth = {"Authorization": f"Bearer {admin}"}
        with (
            worker(url, token, Path(tmp) / "work", 8, isolation) as proc,
            httpx.Client(base_url=url, headers=auth, timeout=60) as http,
        ):
            wait_for_worker(http)
            pids = [SERVER_PIDS[url], proc.pid]
            before = round_cpu(pids, proc.pid)
            rate = throughput(http, jobs)
            latency(http, 3)  # warm-up, as on the Celery side
            p50, p99 = latency(http, samples)
            cpu = per_job(before, round_cpu(pids, proc.pid), jobs + 3 + samples)
            return Round(rate, p50, p99, *cpu)


# ---- the table -----------------------------------------------------------------------

# Each side of the table: how it runs a round. Corral twice: at ``--isolation none``, like
# for like with Celery's bare ``subprocess.run``, and at the default (``auto``: a
# bubblewrap sandbox and a uid of its own per job where the machine allows), to show
# what isolation costs.
SIDES = ("Celery", "Corral", "Corral auto")
ISOLATION = {"Corral": "none", "Corral auto": "auto"}


def best(rounds: list[Round]) -> Round:
    """Each figure from the side's best round for that figure."""
    return Round(
        max(r.throughput for r in rounds), min(r.p50 for r in rounds), min(r.p99 for r in rounds)
    )


def table(sides: dict[str, Round], jobs: int, samples: int) -> str:
    celery, corral, auto = (sides[name] for name in SIDES)
    rows = [
        (f"end to end, {jobs:,} jobs (jobs/s)", "throughput", "higher"),
        (f"submit-to-running p50, {samples} jobs (ms)", "p50", "lower"),
        (f"submit-to-running p99, {samples} jobs (ms)", "p99", "lower"),
    ]
    lines = [
        f"{'':42} {'Celery+Redis':>12} {'Corral':>8} {'ratio':>6} {'Corral auto':>11} {'ratio':>6}",
        f"{'':42} {'':>12} {'(none)':>8} {'':>6} {'(sandbox)':>11}",
    ]
    for label, field, better in rows:
        theirs, ours, iso = (getattr(r, field) for r in (celery, corral, auto))
        digits = 0 if theirs > 100 else 1
        lines.append(
            f"{label:42} {theirs:>12,.{digits}f} {ours:>8,.{digits}f} {ours / theirs:>5.2f}x "
            f"{iso:>11,.{digits}f} {iso / theirs:>5.2f}x  ({better} is better)"
        )
    return "\n".join(lines)


def run_round(name: str, redis: str, python: Path, jobs: int, samples: int) -> Round:
    if name == "Celery":
        return celery_round(redis, python, jobs, samples)
    return corral_round(jobs, samples, ISOLATION[name])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--jobs", type=int, default=5000, help="a multiple of 1,000")
    parser.add_argument("--latency-jobs", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=2, help="rounds per side, alternating")
    args = parser.parse_args()
    if args.jobs < 1000 or args.jobs % 1000:
        parser.error("--jobs: a multiple of 1,000 (Corral's side submits 1,000 per request)")
    redis, python = ensure_redis(), ensure_venv()
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    version = sys.version.split()[0]
    print(f"Corral vs Celery+Redis, {when}, {os.cpu_count()} cores, python {version}")
    spawn, shell = spawn_true(SPAWN_SAMPLES), spawn_shell(SPAWN_SAMPLES)
    print(f"raw spawn from Python: /bin/true {spawn:,.0f}/s; sh -c true, captured {shell:,.0f}/s")
    sides: dict[str, list[Round]] = {name: [] for name in SIDES}
    for n in range(1, args.rounds + 1):
        for name in SIDES:
            figures = run_round(name, redis, python, args.jobs, args.latency_jobs)
            sides[name].append(figures)
            print(
                f"  round {n} {name:11}: {figures.throughput:,.0f} jobs/s, "
                f"p50 {figures.p50:.1f} ms, p99 {figures.p99:.1f} ms; CPU per job "
                f"{figures.cpu:.2f} ms, its own processes {figures.job_cpu:.2f} ms",
                flush=True,
            )
    bests = {name: best(rounds) for name, rounds in sides.items()}
    print(table(bests, args.jobs, args.latency_jobs))
    print(f"(best of {args.rounds} alternating rounds per side; ratio: Corral / Celery)")


if __name__ == "__main__":
    main()
