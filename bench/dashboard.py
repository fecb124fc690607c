"""Dashboard benchmark: prints figures, asserts nothing.

Starts the real `corral server` as a subprocess, seeds 100,000 jobs over the API
(bulk submit; part of them claimed and completed or failed in batches, a few
running, some cancelled), signs in through the login form like a browser, then:
  1. the server time of `GET /` (its `X-Response-Time-ms` header) p50/p99 over 50
     requests each: the first page, a deep page by cursor, status filters, text
     filters (common and matching nothing: a full walk), label filters, the live
     fragment;
  2. "a live page costs the server no work while nothing changes": the server
     process's CPU time (/proc/PID/stat) over 10 idle seconds, first with no page
     open, then with 20 `/ui/events?topics=jobs` streams open.
On SQLite and, when PostgreSQL's binaries are present, on PostgreSQL.

    .venv/bin/python bench/dashboard.py [--backend sqlite|postgres|all] [--jobs N]
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.dispatcher import run_benchmark  # noqa: E402
from tests.processes import free_port  # noqa: E402

EMAIL = "bench@example.com"
PASSWORD = "bench-password-123"
SAMPLES = 50
STREAMS = 20
IDLE_SECONDS = 10.0
UNTHROTTLED = {
    "CORRAL_RATE_LIMIT": "off",
    "CORRAL_WORKER_RATE_LIMIT": "off",
    "CORRAL_AUTH_FAILURE_RATE_LIMIT": "off",
    "CORRAL_LOGIN_RATE_LIMIT": "off",
    "CORRAL_ADMIN_EMAIL": EMAIL,
    "CORRAL_ADMIN_PASSWORD": PASSWORD,
}
LABELS = ["linux", "gpu"]  # a claimer with both may take any seeded job


def job(i: int) -> dict[str, object]:
    """Commands and labels with known selectivity: 1 job in 10 carries ``gpu``, 1 in
    1,000 runs ``pytest``; every job carries ``linux``."""
    labels = ["linux", "gpu"] if i % 10 == 0 else ["linux"]
    command = f"pytest tests/t_{i}.py" if i % 1000 == 0 else f"make -C build/{i % 97} step-{i}"
    return {"command": command, "labels": labels, "priority": ["low", "normal", "high"][i % 3]}


@contextlib.contextmanager
def server(data_dir: Path, database_url: str | None) -> Iterator[tuple[str, str, int]]:
    port = free_port()
    cmd = [sys.executable, "-m", "corral.cli.main", "server", "--port", str(port)]
    cmd += ["--data-dir", str(data_dir), "--log-level", "warning"]
    if database_url:
        cmd += ["--database-url", database_url]
    env = {**os.environ, **UNTHROTTLED}
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    url = f"http://127.0.0.1:{port}"
    token_file = data_dir / "admin-token"
    deadline = time.monotonic() + 30
    while True:
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(f"{url}/api/v1/health").status_code == 200 and token_file.exists():
                break
        if time.monotonic() > deadline or proc.poll() is not None:
            stderr = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
            raise RuntimeError(f"server did not start: {stderr}")
        time.sleep(0.05)
    try:
        yield url, token_file.read_text().strip(), proc.pid
    finally:
        proc.terminate()
        proc.wait(timeout=20)


async def seed(http: httpx.AsyncClient, total: int) -> None:
    """``total`` jobs; 1% cancelled while pending, then about 35% claimed and reported
    (1 in 7 of those failed), and 200 left running."""
    batch = 1000
    cancel: list[str] = []
    for start in range(0, total, batch * 4):
        bodies = [
            [job(i) for i in range(s, min(s + batch, total))]
            for s in range(start, min(start + 4 * batch, total), batch)
        ]
        answers = await asyncio.gather(*(http.post("/api/v1/jobs/bulk", json=b) for b in bodies))
        for answer in answers:
            answer.raise_for_status()
            cancel += [j["id"] for j in answer.json()[::100]]
    for start in range(0, len(cancel), 1000):
        r = await http.post(
            "/api/v1/jobs/bulk/cancel", json={"job_ids": cancel[start : start + 1000]}
        )
        r.raise_for_status()
    await asyncio.gather(*(finish_some(http, total * 35 // 100 // 4, f"w{k}") for k in range(4)))
    running = await claim(http, "runner", 200)
    print(f"  seeded {total:,} jobs ({len(cancel)} cancelled, {len(running)} left running)")


async def claim(http: httpx.AsyncClient, executor: str, count: int) -> list[dict[str, object]]:
    claimed: list[dict[str, object]] = []
    while len(claimed) < count:
        body = {"executor_id": executor, "n": min(100, count - len(claimed)), "labels": LABELS}
        r = await http.post("/api/v1/jobs/claim", json=body)
        if r.status_code == 204:
            break
        claimed += r.json()
    return claimed


async def finish_some(http: httpx.AsyncClient, count: int, executor: str) -> None:
    """Claim 100 at a time and report them in one batch: 1 in 7 fails."""
    done = 0
    while done < count:
        jobs = await claim(http, executor, min(100, count - done))
        if not jobs:
            return
        reports = [
            {
                "job_id": j["id"],
                "executor_id": executor,
                "attempt": j["attempt"],
                "status": "failed" if n % 7 == 0 else "completed",
                "exit_code": 1 if n % 7 == 0 else 0,
            }
            for n, j in enumerate(jobs)
        ]
        (await http.post("/api/v1/jobs/results", json=reports)).raise_for_status()
        done += len(jobs)


def sign_in(url: str) -> httpx.Client:
    browser = httpx.Client(base_url=url, follow_redirects=False, timeout=60)
    form = browser.get("/login").text
    csrf = re.search(r'name="csrf" value="([^"]+)"', form)
    assert csrf is not None, "no CSRF field on the login form"
    data = {"email": EMAIL, "password": PASSWORD, "csrf": csrf[1], "next": "/"}
    answer = browser.post("/login", data=data)
    if answer.status_code != 303:
        raise RuntimeError(f"sign-in failed: {answer.status_code}")
    return browser


def server_times(browser: httpx.Client, params: dict[str, str]) -> tuple[float, float, int]:
    """(p50, p99) of the server's own time in ms, and the rows on the page."""
    times = []
    rows = 0
    for _ in range(SAMPLES):
        answer = browser.get("/", params=params)
        if answer.status_code != 200:
            raise RuntimeError(f"GET / {params}: {answer.status_code}")
        times.append(float(answer.headers["X-Response-Time-ms"]))
        rows = answer.text.count("<tr data-job-id=")
    times.sort()
    return statistics.median(times), times[int(len(times) * 0.99) - 1], rows


def cpu_seconds(pid: int) -> float:
    """utime + stime of the process, from /proc/PID/stat (fields 14 and 15, in ticks)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat.rsplit(")", 1)[1].split()  # the command name may hold spaces
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def idle_cpu(url: str, cookies: httpx.Cookies, pid: int, streams: int) -> float:
    """CPU seconds the server spends over ``IDLE_SECONDS`` with ``streams`` live pages open."""
    client = httpx.AsyncClient(base_url=url, cookies=cookies, timeout=None)
    async with client as http, contextlib.AsyncExitStack() as stack:
        for _ in range(streams):
            answer = await stack.enter_async_context(
                http.stream("GET", "/ui/events", params={"topics": "jobs"})
            )
            if answer.status_code != 200:
                raise RuntimeError(f"/ui/events: {answer.status_code}")
        await asyncio.sleep(1.0)  # let the opening requests' own work settle
        before = cpu_seconds(pid)
        await asyncio.sleep(IDLE_SECONDS)
        return cpu_seconds(pid) - before


def deep_cursor(browser: httpx.Client) -> str:
    """The cursor of a page near the oldest end: the first page of the oldest-first walk
    gives the seq of its 50th-oldest job."""
    html = browser.get("/", params={"sort": "oldest"}).text
    found = re.search(r"after=(\d+)", html)
    assert found is not None, "no Newer link on the oldest page"
    return found[1]


CASES: list[tuple[str, dict[str, str]]] = [
    ("first page", {}),
    ("first page, oldest first", {"sort": "oldest"}),
    ("live fragment, first page", {"fragment": "rows"}),
    ("status=running (200 rows in 100k)", {"status": "running"}),
    ("status=completed", {"status": "completed"}),
    ("text q=make (matches most)", {"q": "make"}),
    ("text q=pytest (1 in 1,000)", {"q": "pytest"}),
    ("text q=no-such-text (walks all)", {"q": "no-such-text"}),
    ("label=gpu (1 in 10)", {"label": "gpu"}),
    ("label=no-such-label (walks all)", {"label": "no-such-label"}),
    ("worker=runner (200 rows)", {"worker": "runner"}),
    ("status=pending&label=gpu&q=make", {"status": "pending", "label": "gpu", "q": "make"}),
]


async def run_backend(name: str, database_url: str | None, jobs: int) -> None:
    with tempfile.TemporaryDirectory() as tmp, server(Path(tmp), database_url) as (url, token, pid):
        headers = {"Authorization": f"Bearer {token}"}
        async with httpx.AsyncClient(base_url=url, headers=headers, timeout=120) as http:
            started = time.perf_counter()
            await seed(http, jobs)
            print(f"[{name}] seeding took {time.perf_counter() - started:.1f} s")
        browser = sign_in(url)
        cases = [*CASES, ("deep page by cursor", {"before": deep_cursor(browser)})]
        for label, params in cases:
            p50, p99, rows = server_times(browser, params)
            print(f"[{name}] GET / {label}: p50 {p50:.1f} ms, p99 {p99:.1f} ms ({rows} rows)")
        quiet = await idle_cpu(url, browser.cookies, pid, 0)
        live = await idle_cpu(url, browser.cookies, pid, STREAMS)
        print(
            f"[{name}] server CPU over {IDLE_SECONDS:.0f} s idle: {quiet * 1000:.0f} ms with no "
            f"page open, {live * 1000:.0f} ms with {STREAMS} live pages open"
        )
        browser.close()


def main() -> None:
    run_benchmark("dashboard", run_backend, 100_000)


if __name__ == "__main__":
    main()
