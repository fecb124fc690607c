"""The SDK's and the CLI's long transfers outlive the replica serving them.

Two ``corral server`` processes on one PostgreSQL database; the client is given
both URLs, A first. This test acts as the job's executor (claim, output, complete
through B), so the output arrives exactly when the test says.

- Following a job's output: A is killed (SIGKILL) mid-stream, with output stored
  that the follower has not seen yet. The follow goes on from B after the last
  event it passed on: every byte exactly once, then the end event.
- With no replica left, it gives up after ``retry_for`` with
  ``CorralConnectionError``.
"""

from __future__ import annotations

import asyncio
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from corral.client import (
    AsyncCorralClient,
    CorralClient,
    CorralConnectionError,
    EndEvent,
    OutputEvent,
)
from tests.pg_server import PgServer
from tests.processes import CORRAL, clean_env, poll
from tests.replicas import Replica, admin_token, start_replicas

pytestmark = [pytest.mark.slow, pytest.mark.fault]

API = "/api/v1"
EXECUTOR = "test-executor"


@pytest.fixture(scope="module")
def replicas(pg_server: PgServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    dsn = asyncio.run(pg_server.new_database(migrated=False))
    started = start_replicas(tmp_path_factory.mktemp("streams-failover"), dsn, "a", "b")
    try:
        yield started, admin_token(started)
    finally:
        for replica in started:
            replica.kill()


@pytest.fixture
def pair(replicas: Any) -> tuple[Replica, Replica, str]:
    """A and B serving (A again, if an earlier test killed it), and an admin token."""
    (a, b), token = replicas
    for replica in (a, b):
        if replica.process is None or replica.process.poll() is not None:
            replica.start()
            replica.wait_healthy()
    return a, b, token


@pytest.fixture
def http(pair: tuple[Replica, Replica, str]) -> Iterator[httpx.Client]:
    """An admin's plain HTTP client on B: the test's executor and uploader."""
    _, b, token = pair
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=f"{b.url}{API}", headers=headers, timeout=30) as client:
        yield client


# ---- the test as executor ------------------------------------------------------------------


def running_job(http: httpx.Client) -> str:
    job_id: str = http.post("/jobs", json={"command": "true"}).raise_for_status().json()["id"]
    claimed = http.post("/jobs/claim", json={"executor_id": EXECUTOR}).raise_for_status()
    assert claimed.json()["id"] == job_id
    return job_id


class Output:
    """A job's output as its executor sends it, and what was sent so far."""

    def __init__(self, http: httpx.Client, job_id: str) -> None:
        self.http, self.job_id = http, job_id
        self.sent = {"stdout": "", "stderr": ""}

    def write(self, text: str, stream: str = "stdout") -> None:
        call = {
            "executor_id": EXECUTOR,
            "attempt": 1,
            "stream": stream,
            "data": text,
            "offset": len(self.sent[stream].encode()),
        }
        self.http.post(f"/jobs/{self.job_id}/output", json=call).raise_for_status()
        self.sent[stream] += text

    def lines(self, first: int, last: int) -> None:
        for i in range(first, last):
            self.write(f"line {i}\n")

    def complete(self) -> None:
        call = {"executor_id": EXECUTOR, "attempt": 1, "exit_code": 0}
        self.http.put(f"/jobs/{self.job_id}/complete", json=call).raise_for_status()


def assert_exactly_once(events: list[OutputEvent | EndEvent], sent: dict[str, str]) -> None:
    """Every byte of each stream once, in order (offsets meet end to end), then the end."""
    assert isinstance(events[-1], EndEvent) and events[-1].status == "completed", events[-1:]
    outputs = [e for e in events[:-1] if isinstance(e, OutputEvent)]
    assert len(outputs) == len(events) - 1
    for stream, text in sent.items():
        mine = [e for e in outputs if e.stream == stream]
        starts = [0, *(e.offset + len(e.data.encode()) for e in mine)][: len(mine)]
        assert [e.offset for e in mine] == starts, stream
        assert "".join(e.data for e in mine) == text


# ---- following -------------------------------------------------------------------------


def test_a_follow_goes_on_from_the_other_replica_when_its_own_dies(
    pair: tuple[Replica, Replica, str], http: httpx.Client
) -> None:
    a, b, token = pair
    job = Output(http, running_job(http))
    job.lines(0, 10)
    with CorralClient(f"{a.url},{b.url}", token) as corral:
        events = corral.follow(job.job_id)
        seen: list[OutputEvent | EndEvent] = []
        while "".join(e.data for e in seen if isinstance(e, OutputEvent)) != job.sent["stdout"]:
            seen.append(next(events))
        job.lines(10, 20)  # stored, and on its way from A or not: never seen
        job.write("a warning\n", "stderr")
        a.kill()
        job.lines(20, 30)  # stored while A is dead
        job.complete()
        seen.extend(events)
    assert_exactly_once(seen, job.sent)
    assert a.requests("/output/follow") and b.requests("/output/follow")


async def test_the_async_follow_goes_on_from_the_other_replica_too(
    pair: tuple[Replica, Replica, str], http: httpx.Client
) -> None:
    a, b, token = pair
    job = Output(http, running_job(http))
    job.lines(0, 5)
    seen: list[OutputEvent | EndEvent] = []
    async with AsyncCorralClient(f"{a.url},{b.url}", token) as corral:
        async for event in corral.follow(job.job_id):
            seen.append(event)
            if isinstance(event, OutputEvent) and event.data.endswith("line 4\n"):
                job.lines(5, 10)
                a.kill()
                job.lines(10, 15)
                job.complete()
    assert_exactly_once(seen, job.sent)
    assert b.requests("/output/follow")


def test_corral_logs_follow_goes_on_from_the_other_replica(
    pair: tuple[Replica, Replica, str], http: httpx.Client, tmp_path: Path
) -> None:
    a, b, token = pair
    job = Output(http, running_job(http))
    job.lines(0, 10)
    env = clean_env(
        CORRAL_URL=f"{a.url},{b.url}", CORRAL_TOKEN=token, XDG_CONFIG_HOME=str(tmp_path)
    )
    command = [*CORRAL, "logs", "--follow", "--stream", "stdout", job.job_id]
    printed: list[bytes] = []
    with (
        (tmp_path / "logs.err").open("wb") as errors,
        subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=errors) as logs,
    ):
        reader = threading.Thread(target=lambda: printed.extend(logs.stdout or []), daemon=True)
        reader.start()
        try:
            poll(lambda: b"line 9\n" in printed, 30, "corral logs to print the first lines")
            poll(lambda: a.requests("/output/follow"), 10, "corral logs to follow through A")
            job.lines(10, 20)
            a.kill()
            job.lines(20, 30)
            job.complete()
            assert logs.wait(60) == 0, (tmp_path / "logs.err").read_text()
        finally:
            if logs.poll() is None:
                logs.kill()
        reader.join(10)
    assert b"".join(printed).decode() == job.sent["stdout"]


def test_a_follow_with_no_replica_left_gives_up_after_retry_for(
    pair: tuple[Replica, Replica, str], http: httpx.Client
) -> None:
    a, _, token = pair
    job = Output(http, running_job(http))
    job.lines(0, 3)
    with CorralClient(a.url, token, retry_for=2.0) as corral:
        events = corral.follow(job.job_id)
        assert isinstance(next(events), OutputEvent)
        a.kill()
        started = time.monotonic()
        with pytest.raises(CorralConnectionError, match=f"cannot reach {a.url}"):
            next(events)
    assert 1.0 < time.monotonic() - started < 10
    job.complete()
