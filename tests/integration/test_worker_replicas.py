"""The worker's calls given several replicas (``--server A,B``), on real loopback HTTP: a
replica nobody listens on, one that takes each request and closes the connection without
answering (or never answers), and a real dispatcher.

The rules (``corral.agent.replicas``): one round per call, no waiting; a connection that
could not be opened sends any call on to the next replica at once; one cut off after the
request went out sends on only the heartbeat, and any other call raises ``Unreachable``;
either way the replica is marked failed for the heartbeat's pool and the others alike.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from corral.agent.dispatcher import Dispatcher, Unreachable
from corral.agent.machine import machine_info
from tests.live import LiveServer, run_server
from tests.processes import free_port

API = "/api/v1"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with run_server(tmp_path_factory.mktemp("worker-replicas") / "data") as live:
        yield live


@pytest.fixture(scope="module")
def worker_token(server: LiveServer) -> str:
    return server.token("worker")


def dead() -> str:
    """A replica that is down: nothing listens on its port."""
    return f"http://127.0.0.1:{free_port()}"


class Cutter:
    """A replica that reads each request whole, counts it, then closes the connection
    without a word (``hang``: keeps it open, silent)."""

    def __init__(self, *, hang: bool = False) -> None:
        self.hang = hang
        self.requests: list[bytes] = []
        self.url = ""
        self.done = asyncio.Event()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n"):
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        self.requests.append(head + await reader.readexactly(length))
        if self.hang:
            await self.done.wait()
        writer.close()


@asynccontextmanager
async def cutter(*, hang: bool = False) -> AsyncIterator[Cutter]:
    replica = Cutter(hang=hang)
    listener = await asyncio.start_server(replica._serve, "127.0.0.1", 0)
    replica.url = f"http://127.0.0.1:{listener.sockets[0].getsockname()[1]}"
    try:
        yield replica
    finally:
        replica.done.set()
        listener.close()
        await listener.wait_closed()


@asynccontextmanager
async def dispatcher(urls: str, token: str, name: str) -> AsyncIterator[Dispatcher]:
    client = Dispatcher(urls, token, name)
    try:
        yield client
    finally:
        await client.aclose()


def register_info() -> dict[str, object]:
    return machine_info((), 1)


async def test_a_refused_replica_is_passed_at_once_by_any_call(
    server: LiveServer, worker_token: str
) -> None:
    started = time.monotonic()
    async with dispatcher(f"{dead()},{server.url}", worker_token, "w-refused") as client:
        await client.register(register_info())  # a POST: nothing was sent to the dead one
        assert client.endpoints.position == 1
        assert await client.claim(1, 0.0, []) == []
        beat = await client.heartbeat([], False, 5.0)
    assert isinstance(beat, dict)
    assert time.monotonic() - started < 3  # at once: no backoff within the round


async def test_a_heartbeat_cut_off_goes_on_and_the_other_calls_follow(
    server: LiveServer, worker_token: str
) -> None:
    async with dispatcher(server.url, worker_token, "w-beat") as alone:
        await alone.register(register_info())
    async with (
        cutter() as cuts,
        dispatcher(f"{cuts.url},{server.url}", worker_token, "w-beat") as client,
    ):
        beat = await client.heartbeat([], False, 5.0)  # reached the cutter, then the dispatcher
        assert isinstance(beat, dict)
        assert len(cuts.requests) == 1 and b"/heartbeat" in cuts.requests[0]
        assert client.endpoints.position == 1
        assert await client.claim(1, 0.0, []) == []  # the other pool is on B already
        assert len(cuts.requests) == 1


async def test_a_result_cut_off_raises_unreachable_and_the_heartbeat_follows(
    server: LiveServer, worker_token: str
) -> None:
    async with dispatcher(server.url, worker_token, "w-result") as alone:
        await alone.register(register_info())
    report = {"job_id": "j-1", "attempt": 1, "status": "completed", "exit_code": 0}
    async with (
        cutter() as cuts,
        dispatcher(f"{cuts.url},{server.url}", worker_token, "w-result") as client,
    ):
        with pytest.raises(Unreachable):
            await client.results([report])  # may have taken effect: not sent again here
        assert len(cuts.requests) == 1 and b"/jobs/results" in cuts.requests[0]
        assert client.endpoints.position == 1  # but the replica is marked failed ...
        assert isinstance(await client.heartbeat([], False, 5.0), dict)  # ... for both pools
        assert len(cuts.requests) == 1


async def test_a_silent_replica_costs_a_heartbeat_its_limit_then_it_goes_on(
    server: LiveServer, worker_token: str
) -> None:
    async with dispatcher(server.url, worker_token, "w-silent") as alone:
        await alone.register(register_info())
    async with (
        cutter(hang=True) as silent,
        dispatcher(f"{silent.url},{server.url}", worker_token, "w-silent") as client,
    ):
        started = time.monotonic()
        assert isinstance(await client.heartbeat([], False, 0.5), dict)
        assert 0.5 <= time.monotonic() - started < 3
        assert len(silent.requests) == 1 and client.endpoints.position == 1


async def test_every_replica_down_is_one_round_then_unreachable(worker_token: str) -> None:
    async with (
        cutter() as cuts,
        dispatcher(f"{dead()},{cuts.url}", worker_token, "w-down") as client,
    ):
        started = time.monotonic()
        with pytest.raises(Unreachable):
            await client.heartbeat([], False, 5.0)  # refused, then cut off: none left
        assert len(cuts.requests) == 1
        assert client.endpoints.position == 0  # around to the first, for the next call
        with pytest.raises(Unreachable):
            await client.results([])  # refused: on to the cutter, which cuts it off
        assert len(cuts.requests) == 2
        assert time.monotonic() - started < 3


async def test_files_go_both_ways_past_a_refused_replica(
    server: LiveServer, worker_token: str, tmp_path: Path
) -> None:
    data = bytes(range(256)) * 8192  # 2 MiB: more than one piece each way
    with server.client() as http:
        created = http.post(f"{API}/files", params={"filename": "in.bin"}, content=data)
        job_id = http.post(
            f"{API}/jobs", json={"command": "true", "input_file_id": created.json()["id"]}
        ).json()["id"]
    async with dispatcher(f"{dead()},{server.url}", worker_token, "w-files") as client:
        await client.register(register_info())
        [job] = await client.claim(1, 5.0, [])
        assert job["id"] == job_id
        await client.download_input(job_id, 1, job["input_file_id"], tmp_path / "in.bin")
        assert hashlib.sha256((tmp_path / "in.bin").read_bytes()).digest() == (
            hashlib.sha256(data).digest()
        )
        client.endpoints.failed(client.endpoints.current)  # back to the dead one first
        await client.upload_artifact(job_id, 1, "out/copy.bin", tmp_path / "in.bin")
    with server.client() as http:
        [artifact] = http.get(f"{API}/jobs/{job_id}/artifacts").json()
        got = http.get(f"{API}/jobs/{job_id}/artifacts/{artifact['id']}")
    assert (artifact["path"], artifact["size"]) == ("out/copy.bin", len(data))
    assert got.content == data
