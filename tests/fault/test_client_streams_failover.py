"""The SDK's and the CLI's long transfers outlive the replica serving them.

Two ``corral server`` processes on one PostgreSQL database; the client is given
both URLs, A first. This test acts as the job's executor (claim, output, complete
through B), so the output arrives exactly when the test says.

- Following a job's output: A is killed (SIGKILL) mid-stream, with output stored
  that the follower has not seen yet. The follow goes on from B after the last
  event it passed on: every byte exactly once, then the end event.
- Downloading a file or an artifact: A is killed once the first bytes of the body
  are on disk, so the body is cut off after what was already on its way. The download goes on
  from B with a range starting where the part file ended (B answers 206 with only
  the rest), and the file on disk is the original, byte for byte.
- Downloading from a server that loses its PostgreSQL (one of this test's own,
  stopped as a crash would stop it) mid-body: the body ends short, and the
  download goes on once the database is back, from where it was cut.
- With no replica left, both give up after ``retry_for`` with
  ``CorralConnectionError``, and a download leaves no partial file behind.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
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
    JsonClient,
    OutputEvent,
)
from tests.live import run_server
from tests.pg_server import PgServer
from tests.processes import CORRAL, clean_env, poll
from tests.replicas import Replica, admin_token, start_replicas

pytestmark = [pytest.mark.slow, pytest.mark.fault]

API = "/api/v1"
EXECUTOR = "test-executor"
BIG = 24 << 20  # more than the sockets between A and the client hold: A dies mid-body


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


# ---- downloads -------------------------------------------------------------------------


def original(tmp_path: Path) -> bytes:
    data = os.urandom(BIG)
    (tmp_path / "original.bin").write_bytes(data)
    return data


def saved_artifact(http: httpx.Client, data: bytes) -> tuple[str, str]:
    """A finished job that saved ``data`` as an artifact: the job's id and the artifact's."""
    job_id = running_job(http)
    where: dict[str, str | int] = {"path": "out/big.bin", "executor_id": EXECUTOR, "attempt": 1}
    answer = http.post(f"/jobs/{job_id}/artifacts", params=where, content=data)
    Output(http, job_id).complete()
    artifact_id: str = answer.raise_for_status().json()["id"]
    return job_id, artifact_id


def kill_at_headers(replica: Replica, part: str) -> Any:
    """An httpx response hook: ``replica`` dies as the first answer for ``part`` arrives
    from it (headers read, the body on its way)."""

    def hook(response: httpx.Response) -> None:
        if part in response.request.url.path and response.request.url.port == replica.port:
            replica.kill()

    return hook


def kill_mid_body(replica: Replica, part: str, part_file: Path) -> Any:
    """An httpx response hook: ``replica`` dies once the first bytes of its answer for
    ``part`` are in ``part_file`` (a thread watches), with most of the body to come."""

    def watch() -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if part_file.exists() and part_file.stat().st_size:
                replica.kill()
                return
            time.sleep(0.001)

    def hook(response: httpx.Response) -> None:
        if part in response.request.url.path and response.request.url.port == replica.port:
            threading.Thread(target=watch, daemon=True).start()

    return hook


class Tries:
    """httpx event hooks noting each download request as it leaves (its Range, and how
    much the part file held then) and each answer (status and Content-Length)."""

    def __init__(self, dest: Path, part: str) -> None:
        self.part_file = dest.with_name(dest.name + ".part")
        self.part = part
        self.asked: list[tuple[str | None, int]] = []
        self.answered: list[tuple[int, int, int | None]] = []  # port, status, length

    def request(self, request: httpx.Request) -> None:
        if self.part in request.url.path:
            held = self.part_file.stat().st_size if self.part_file.exists() else 0
            self.asked.append((request.headers.get("range"), held))

    def response(self, response: httpx.Response) -> None:
        if self.part in response.request.url.path:
            length = response.headers.get("content-length")
            port = response.request.url.port or 0
            self.answered.append((port, response.status_code, int(length) if length else None))

    def assert_resumed(self, port: int, size: int) -> None:
        """The last try was a range from where the part file ended, answered on ``port``
        with only the rest: the SDK did not start over from byte 0."""
        (first, _), *_, (last, held) = self.asked
        assert first is None and 0 < held < size, self.asked
        assert last == f"bytes={held}-", self.asked
        assert self.answered[-1] == (port, 206, size - held), self.answered


def test_a_download_cut_off_with_its_replica_goes_on_from_the_other(
    pair: tuple[Replica, Replica, str], http: httpx.Client, tmp_path: Path
) -> None:
    a, b, token = pair
    data = original(tmp_path)
    stored = http.post("/files", params={"filename": "big.bin"}, content=data).raise_for_status()
    file_id = stored.json()["id"]
    dest = tmp_path / "got" / "big.bin"
    dest.parent.mkdir()
    tries = Tries(dest, f"/files/{file_id}")
    with CorralClient(f"{a.url},{b.url}", token) as corral:
        corral.http.event_hooks["request"] = [tries.request]
        killer = kill_mid_body(a, "/files/", tries.part_file)
        corral.http.event_hooks["response"] = [tries.response, killer]
        assert corral.download_file(file_id, dest) == dest
    assert a.process is not None and a.process.poll() is not None  # A died mid-body
    tries.assert_resumed(b.port, len(data))
    assert any('" 206' in line for line in b.requests(tries.part))  # in B's access log
    assert hashlib.sha256(dest.read_bytes()).digest() == hashlib.sha256(data).digest()
    assert [p.name for p in dest.parent.iterdir()] == ["big.bin"]


async def test_an_async_artifact_download_goes_on_from_the_other(
    pair: tuple[Replica, Replica, str], http: httpx.Client, tmp_path: Path
) -> None:
    a, b, token = pair
    data = original(tmp_path)
    job_id, artifact_id = saved_artifact(http, data)
    dest = tmp_path / "big.bin"
    tries = Tries(dest, f"/artifacts/{artifact_id}")

    async def on_request(request: httpx.Request) -> None:
        tries.request(request)

    killer = kill_mid_body(a, "/artifacts/", tries.part_file)

    async def on_response(response: httpx.Response) -> None:
        tries.response(response)
        killer(response)

    async with AsyncCorralClient(f"{a.url},{b.url}", token) as corral:
        corral.http.event_hooks["request"] = [on_request]
        corral.http.event_hooks["response"] = [on_response]
        await corral.download_artifact(job_id, artifact_id, dest)
    assert a.process is not None and a.process.poll() is not None
    tries.assert_resumed(b.port, len(data))
    assert any('" 206' in line for line in b.requests(tries.part))  # in B's access log
    assert dest.read_bytes() == data


def test_a_download_with_no_replica_left_fails_and_leaves_no_partial_file(
    pair: tuple[Replica, Replica, str], http: httpx.Client, tmp_path: Path
) -> None:
    """``JsonClient``, as ``corral artifacts --download`` uses it: the file that was at
    ``dest`` before is left as it was, and no part file stays beside it."""
    a, _, token = pair
    data = original(tmp_path)
    file_id = http.post("/files", params={"filename": "big.bin"}, content=data).json()["id"]
    dest = tmp_path / "got" / "big.bin"
    dest.parent.mkdir()
    dest.write_bytes(b"the old copy")
    with JsonClient(a.url, token, retry_for=1.0) as client:
        client.http.event_hooks["response"] = [kill_at_headers(a, "/files/")]
        with pytest.raises(CorralConnectionError, match=f"cannot reach {a.url}"):
            client.download_file(file_id, dest)
    assert [p.name for p in dest.parent.iterdir()] == ["big.bin"]
    assert dest.read_bytes() == b"the old copy"


@pytest.fixture
def own_database() -> Iterator[tuple[PgServer, str]]:
    """A PostgreSQL of this test's own: stopping the shared one would upset the others."""
    pg = PgServer(durable=True)  # a commit survives the crash, as in production
    pg.start()
    try:
        yield pg, asyncio.run(pg.new_database(migrated=False))
    finally:
        pg.stop()


def test_a_download_cut_off_by_a_database_outage_goes_on_once_it_is_back(
    own_database: tuple[PgServer, str], tmp_path: Path
) -> None:
    """The replica lives on but loses PostgreSQL while it streams the body (read 1 MiB
    at a time), once its first bytes are on disk: the body ends short, the replica
    answers 503 until the database is back, and the download goes on from there."""
    pg, dsn = own_database
    data = original(tmp_path)
    dest = tmp_path / "big.bin"
    tries = Tries(dest, "/files/")
    outages: list[threading.Thread] = []

    def outage() -> None:
        deadline = time.monotonic() + 30
        while not (tries.part_file.exists() and tries.part_file.stat().st_size):
            if time.monotonic() > deadline:
                return
            time.sleep(0.001)
        pg.halt("immediate")
        time.sleep(1)
        pg.start_again()

    def on_response(response: httpx.Response) -> None:
        tries.response(response)
        if "/files/" in response.request.url.path and not outages:
            outages.append(threading.Thread(target=outage))
            outages[0].start()

    with run_server(tmp_path / "data", database_url=dsn) as live:
        with live.client() as http:
            file_id = http.post(f"{API}/files", params={"filename": "big.bin"}, content=data)
        with CorralClient(live.url, live.admin_token) as corral:
            corral.http.event_hooks["request"] = [tries.request]
            corral.http.event_hooks["response"] = [on_response]
            corral.download_file(file_id.raise_for_status().json()["id"], dest)
        tries.assert_resumed(httpx.URL(live.url).port or 0, len(data))
    outages[0].join(30)
    assert dest.read_bytes() == data
