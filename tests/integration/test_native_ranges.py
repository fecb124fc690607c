"""Byte ranges of native downloads over real HTTP, on both stores: RFC 9110's single
ranges (206), ranges past the end (416), ``If-Range``, and headers ignored as allowed.

A file of a few stored chunks is uploaded once per store; each test asks for parts
of it and checks the bytes against the original, so a range read from the wrong
chunk or sliced one byte off fails.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from corral.domain.files import CHUNK_SIZE
from tests.integration.test_native_api import API, assert_error, claim_one, submit
from tests.live import LiveServer, run_server_on

DATA = os.urandom(2 * CHUNK_SIZE + 12345)  # two full chunks and a tail
SIZE = len(DATA)
ETAG = f'"{hashlib.sha256(DATA).hexdigest()}"'


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def live(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A server on each store, holding ``DATA`` as an upload; its URL for that file."""
    with run_server_on(request.param, request, tmp_path_factory.mktemp("ranges")) as server:
        with server.client() as http:
            answer = http.post(f"{API}/files", params={"filename": "big.bin"}, content=DATA)
        yield server, f"{API}/files/{answer.raise_for_status().json()['id']}"


@pytest.fixture
def http(live: tuple[LiveServer, str]) -> Iterator[httpx.Client]:
    with live[0].client() as client:
        yield client


def get(http: httpx.Client, url: str, **headers: str) -> httpx.Response:
    return http.get(url, headers={k.replace("_", "-"): v for k, v in headers.items()})


def assert_whole(answer: httpx.Response, data: bytes = DATA) -> None:
    assert answer.status_code == 200, (answer.status_code, answer.text[:200])
    assert answer.content == data
    assert answer.headers["content-length"] == str(len(data))
    assert "content-range" not in answer.headers
    assert answer.headers["accept-ranges"] == "bytes"  # a server that serves ranges chose not to


def assert_part(answer: httpx.Response, first: int, last: int, data: bytes = DATA) -> None:
    """206 with bytes ``first``..``last`` (inclusive) and headers that say so."""
    assert answer.status_code == 206, (answer.status_code, answer.text[:200])
    assert answer.headers["content-range"] == f"bytes {first}-{last}/{len(data)}"
    assert answer.headers["content-length"] == str(last - first + 1)
    assert answer.content == data[first : last + 1]
    # The part still names the whole file: its digest and version, where it lies.
    assert answer.headers["x-content-sha256"] == hashlib.sha256(data).hexdigest()
    assert answer.headers["etag"] == f'"{hashlib.sha256(data).hexdigest()}"'
    assert 'filename="' in answer.headers["content-disposition"]


def test_every_download_names_its_version_and_that_it_takes_ranges(
    live: tuple[LiveServer, str], http: httpx.Client
) -> None:
    answer = get(http, live[1])
    assert_whole(answer)
    assert answer.headers["accept-ranges"] == "bytes"
    assert answer.headers["etag"] == ETAG
    assert answer.headers["x-content-sha256"] == ETAG.strip('"')
    assert 'filename="big.bin"' in answer.headers["content-disposition"]


@pytest.mark.parametrize(
    ("header", "first", "last"),
    [
        ("bytes=0-0", 0, 0),
        ("bytes=5-9", 5, 9),
        (f"bytes={CHUNK_SIZE - 3}-{CHUNK_SIZE + 2}", CHUNK_SIZE - 3, CHUNK_SIZE + 2),
        (f"bytes={CHUNK_SIZE + 7}-", CHUNK_SIZE + 7, SIZE - 1),  # what a resuming SDK sends
        (f"bytes={SIZE - 1}-", SIZE - 1, SIZE - 1),
        ("bytes=-100", SIZE - 100, SIZE - 1),
        (f"bytes=-{SIZE + 100}", 0, SIZE - 1),  # a suffix longer than the file: all of it
        (f"bytes=10-{SIZE * 10}", 10, SIZE - 1),  # a last byte past the end: the end
        ("BYTES=3-4", 3, 4),  # the unit is case-insensitive
        ("bytes=1-2,", 1, 2),  # an empty list element is no second range
    ],
)
def test_one_byte_range_in_each_form_is_206_with_exactly_those_bytes(
    live: tuple[LiveServer, str], http: httpx.Client, header: str, first: int, last: int
) -> None:
    assert_part(get(http, live[1], Range=header), first, last)


@pytest.mark.parametrize(
    "header",
    [
        f"bytes={SIZE}-",
        f"bytes={SIZE + 5}-{SIZE + 9}",
        "bytes=-0",
        f"bytes={'9' * 5000}-",  # past Python's int-from-text limit: still no 500
    ],
    ids=["at-the-end", "past-the-end", "no-last-bytes", "a-5000-digit-start"],
)
def test_a_range_past_the_end_is_416_naming_the_size(
    live: tuple[LiveServer, str], http: httpx.Client, header: str
) -> None:
    answer = get(http, live[1], Range=header)
    assert_error(answer, 416)
    assert answer.headers["content-range"] == f"bytes */{SIZE}"


def test_if_range_of_another_version_gets_the_whole_file(
    live: tuple[LiveServer, str], http: httpx.Client
) -> None:
    url, tail = live[1], "bytes=100-"
    assert_part(get(http, url, Range=tail, If_Range=ETAG), 100, SIZE - 1)
    assert_whole(get(http, url, Range=tail, If_Range='"' + "0" * 64 + '"'))
    assert_whole(get(http, url, Range=tail, If_Range=f"W/{ETAG}"))  # weak never matches
    assert_whole(get(http, url, Range=tail, If_Range="Wed, 21 Oct 2015 07:28:00 GMT"))
    # Another version's range is not judged against this one: the whole file, no 416.
    assert_whole(get(http, url, Range=f"bytes={SIZE}-", If_Range='"old"'))


@pytest.mark.parametrize(
    "header",
    ["bytes=9-5", "items=0-4", "bytes=a-b", "bytes=-", "bytes=", "bytes=0-1,4-5", "bytes 0-4"],
)
def test_a_malformed_or_multiple_range_is_ignored(
    live: tuple[LiveServer, str], http: httpx.Client, header: str
) -> None:
    assert_whole(get(http, live[1], Range=header))


def test_an_empty_file_is_never_206(live: tuple[LiveServer, str], http: httpx.Client) -> None:
    url = (
        f"{API}/files/"
        + http.post(f"{API}/files", params={"filename": "empty"}, content=b"")
        .raise_for_status()
        .json()["id"]
    )
    assert_whole(get(http, url, Range="bytes=-5"), b"")
    answer = get(http, url, Range="bytes=0-")
    assert_error(answer, 416)
    assert answer.headers["content-range"] == "bytes */0"


def test_artifacts_take_ranges_too(live: tuple[LiveServer, str], http: httpx.Client) -> None:
    job_id = submit(http)["id"]
    claim_one(http, "w1")
    where: dict[str, str | int] = {"path": "out/big.bin", "executor_id": "w1", "attempt": 1}
    stored = http.post(f"{API}/jobs/{job_id}/artifacts", params=where, content=DATA)
    url = f"{API}/jobs/{job_id}/artifacts/{stored.raise_for_status().json()['id']}"
    whole = get(http, url)
    assert_whole(whole)
    assert (whole.headers["accept-ranges"], whole.headers["etag"]) == ("bytes", ETAG)
    assert_part(get(http, url, Range=f"bytes={CHUNK_SIZE}-"), CHUNK_SIZE, SIZE - 1)
    assert_part(get(http, url, Range="bytes=-1", If_Range=ETAG), SIZE - 1, SIZE - 1)
    assert_whole(get(http, url, Range="bytes=1-", If_Range='"other"'))
    assert_whole(get(http, url, Range="bytes=0-0,2-3"))
    assert_error(get(http, url, Range=f"bytes={SIZE}-"), 416)
    assert_error(get(http, f"{API}/jobs/nope/artifacts/x", Range=f"bytes={SIZE}-"), 404)


def test_a_range_does_not_get_past_the_workers_fence(live: tuple[LiveServer, str]) -> None:
    server, _ = live
    with server.client() as http:
        file_id = http.post(f"{API}/files", params={"filename": "in"}, content=DATA).json()["id"]
        job_id = submit(http, input_file_id=file_id)["id"]
    with server.client(server.token("worker")) as worker:
        claim_one(worker, "w9")
        lease = {"job_id": job_id, "executor_id": "w9", "attempt": 1}
        url = f"{API}/files/{file_id}"
        ranged = {"Range": f"bytes={SIZE - 10}-"}
        assert_part(worker.get(url, params=lease, headers=ranged), SIZE - 10, SIZE - 1)
        stale = worker.get(url, params={**lease, "attempt": 2}, headers={"Range": "bytes=0-"})
        assert_error(stale, 409)
        past = {"Range": f"bytes={SIZE}-"}
        assert_error(worker.get(f"{API}/files/nope", params=lease, headers=past), 404)
