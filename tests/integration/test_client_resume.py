"""The SDK goes on with a cut-off download from where its part file ends, and starts
over whenever the answer to that ranged retry is not the rest of the same file.

Real HTTP on loopback: a dispatcher, and the fault-injecting proxy in front of it,
which cuts the first answer's body off half way (``CUT``) and logs the headers of
every request, so a test reads the ``Range`` each retry carried. Its ``rewrite``
plays the servers and middleboxes a ranged retry may meet: one that drops
``Range`` (200), a file that changed (``If-Range`` no longer matches: 200), a range
that comes back starting elsewhere, a 416.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from corral.client import AsyncCorralClient, CorralClient
from corral.domain.files import CHUNK_SIZE
from tests.faultproxy import CUT, PASS, Call, Countdown, FaultProxy, Headers
from tests.live import LiveServer, run_server

API = "/api/v1"
DATA = os.urandom(3 * CHUNK_SIZE + 777)
HALF = len(DATA) // 2  # what the proxy lets through of the first answer
ETAG = f'"{hashlib.sha256(DATA).hexdigest()}"'


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with run_server(tmp_path_factory.mktemp("resume") / "data") as live:
        yield live


@pytest.fixture(scope="module")
def file_id(server: LiveServer) -> str:
    with server.client() as http:
        stored = http.post(f"{API}/files", params={"filename": "big.bin"}, content=DATA)
    return str(stored.raise_for_status().json()["id"])


def cut_first(part: str) -> Callable[[Call], str]:
    """A proxy rule: the first answer for a path holding ``part`` is cut off half way."""
    once = Countdown(1)
    return lambda call: CUT if part in call.path and once.take() else PASS


def ranged(call: Call) -> tuple[str | None, str | None]:
    return call.header("range"), call.header("if-range")


class PartSizes:
    """An httpx request hook: the size of the part file as each request leaves, which is
    where a resuming retry must ask to start (the SDK writes in pieces of up to 1 MiB, so
    the last piece of a cut body may never reach the file)."""

    def __init__(self, dest: Path) -> None:
        self.part = dest.with_name(dest.name + ".part")
        self.sizes: list[int] = []

    def __call__(self, request: object) -> None:
        self.sizes.append(self.part.stat().st_size if self.part.exists() else 0)

    async def hook(self, request: object) -> None:
        self(request)


def test_a_cut_download_goes_on_from_where_its_part_file_ends(
    server: LiveServer, file_id: str, tmp_path: Path
) -> None:
    dest = tmp_path / "big.bin"
    sizes = PartSizes(dest)
    with (
        FaultProxy(server.url, cut_first("/files/")) as proxy,
        CorralClient(proxy.url, server.admin_token) as corral,
    ):
        corral.http.event_hooks["request"] = [sizes]
        assert corral.download_file(file_id, dest) == dest
    assert dest.read_bytes() == DATA
    first, second = proxy.seen(f"/files/{file_id}")
    assert (first.action, first.status, ranged(first)) == (CUT, 200, (None, None))
    held = sizes.sizes[1]
    assert 0 < held <= HALF  # some of the first half was kept...
    assert ranged(second) == (f"bytes={held}-", ETAG)  # ...and only the rest asked for
    assert second.status == 206
    assert len(second.answer) == len(DATA) - held
    assert [p.name for p in tmp_path.iterdir()] == ["big.bin"]


async def test_an_async_artifact_download_goes_on_from_where_it_was_cut(
    server: LiveServer, tmp_path: Path
) -> None:
    with server.client() as http:
        job_id = http.post(f"{API}/jobs", json={"command": "true"}).raise_for_status().json()
        http.post(f"{API}/jobs/claim", json={"executor_id": "w1"}).raise_for_status()
        where: dict[str, str | int] = {"path": "big.bin", "executor_id": "w1", "attempt": 1}
        url = f"{API}/jobs/{job_id['id']}/artifacts"
        artifact_id = http.post(url, params=where, content=DATA).raise_for_status().json()["id"]
    dest = tmp_path / "big.bin"
    sizes = PartSizes(dest)
    with FaultProxy(server.url, cut_first("/artifacts/")) as proxy:
        async with AsyncCorralClient(proxy.url, server.admin_token) as corral:
            corral.http.event_hooks["request"] = [sizes.hook]
            await corral.download_artifact(job_id["id"], artifact_id, dest)
    assert dest.read_bytes() == DATA
    first, second = proxy.seen(f"/artifacts/{artifact_id}")
    assert (first.action, ranged(first)) == (CUT, (None, None))
    assert 0 < sizes.sizes[1] <= HALF
    assert (second.status, ranged(second)) == (206, (f"bytes={sizes.sizes[1]}-", ETAG))


def without_range(headers: Headers) -> Headers:
    """A server (or proxy) that serves no ranges: it never sees the header."""
    return [(k, v) for k, v in headers if k.lower() not in ("range", "if-range")]


def another_version(headers: Headers) -> Headers:
    """The file changed since the first answer: its If-Range no longer matches."""
    return [(k, '"' + "0" * 64 + '"' if k.lower() == "if-range" else v) for k, v in headers]


def elsewhere(headers: Headers) -> Headers:
    """The range comes back starting one byte past where it was asked from."""
    return [(k, f"bytes={HALF + 1}-" if k.lower() == "range" else v) for k, v in headers]


def past_the_end(headers: Headers) -> Headers:
    """The range asked for is past the end of the file: 416."""
    return [(k, f"bytes={len(DATA)}-" if k.lower() == "range" else v) for k, v in headers]


@pytest.mark.parametrize(
    ("rewrite", "statuses"),
    [
        (without_range, [200, 200]),
        (another_version, [200, 200]),
        (elsewhere, [200, 206, 200]),  # the part is refused, and the file asked for whole
        (past_the_end, [200, 416, 200]),
    ],
)
@pytest.mark.parametrize("kind", ["sync", "async"])
async def test_a_ranged_retry_that_is_not_answered_with_the_rest_starts_over(
    server: LiveServer,
    file_id: str,
    tmp_path: Path,
    rewrite: Callable[[Headers], Headers],
    statuses: list[int],
    kind: str,
) -> None:
    """Whatever the answer, the file on disk is the original: nothing appended to the
    half that arrived first, unless the answer says it is the rest of that file."""
    dest = tmp_path / "big.bin"
    sizes = PartSizes(dest)
    with FaultProxy(server.url, cut_first("/files/"), rewrite) as proxy:
        if kind == "sync":
            with CorralClient(proxy.url, server.admin_token) as corral:
                corral.http.event_hooks["request"] = [sizes]
                corral.download_file(file_id, dest)
        else:
            async with AsyncCorralClient(proxy.url, server.admin_token) as acorral:
                acorral.http.event_hooks["request"] = [sizes.hook]
                await acorral.download_file(file_id, dest)
    assert hashlib.sha256(dest.read_bytes()).digest() == hashlib.sha256(DATA).digest()
    calls = proxy.seen(f"/files/{file_id}")
    assert [c.status for c in calls] == statuses
    assert sizes.sizes[1] > 0
    assert ranged(calls[1]) == (f"bytes={sizes.sizes[1]}-", ETAG)  # what the SDK asked for
    if len(calls) == 3:  # the refused part: asked for again whole, straight away
        assert ranged(calls[2]) == (None, None)
    assert await asyncio.to_thread(os.listdir, tmp_path) == ["big.bin"]
