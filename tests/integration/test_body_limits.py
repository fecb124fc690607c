"""Body limits over real HTTP: refused by declared length and while streaming, in each shape.

The JSON limit is set to 64 KiB and the upload limit to 256 KiB so that a few
hundred kilobytes show every case; chunked bodies come from a generator, which
httpx sends without a Content-Length.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from tests.live import LiveServer, run_server

JSON_LIMIT = 64 << 10
UPLOAD_LIMIT = 256 << 10
PIECE = 16 << 10


@pytest.fixture
def server(tmp_path: Path) -> Iterator[LiveServer]:
    limits = {"max_json_bytes": JSON_LIMIT, "max_upload_bytes": UPLOAD_LIMIT}
    with run_server(tmp_path / "data", **limits) as live:
        yield live


def job_with_env(size: int) -> bytes:
    return orjson.dumps({"command": "true", "env": {"BIG": "x" * size}})


def chunked(body: bytes) -> Iterator[bytes]:
    for start in range(0, len(body), PIECE):
        yield body[start : start + PIECE]


def post(live: LiveServer, path: str, content: bytes | Iterator[bytes]) -> httpx.Response:
    with live.client() as http:
        return http.post(path, content=content, headers={"Content-Type": "application/json"})


def job_count(live: LiveServer) -> int:
    with live.client() as http:
        return len(http.get("/api/v1/jobs", params={"limit": 1000}).json())


def assert_native_413(answer: httpx.Response, limit: int) -> None:
    assert answer.status_code == 413, answer.text
    body: dict[str, Any] = answer.json()
    assert set(body) == {"error", "context"}
    assert body["context"] == {"limit": limit}
    assert str(limit) in body["error"]


def assert_cmd_413(answer: httpx.Response, limit: int) -> None:
    assert answer.status_code == 413, answer.text
    body: dict[str, Any] = answer.json()
    assert set(body) == {"error", "message", "details", "code"}
    assert body["code"] == "PAYLOAD_TOO_LARGE"
    assert body["details"] == {"limit": limit}


def test_a_body_just_under_the_limit_is_accepted(server: LiveServer) -> None:
    body = job_with_env(JSON_LIMIT - 1024)
    assert len(body) <= JSON_LIMIT
    assert post(server, "/api/v1/jobs", body).status_code == 201
    assert post(server, "/api/v1/jobs", chunked(body)).status_code == 201


@pytest.mark.parametrize("streamed", [False, True], ids=["content-length", "chunked"])
def test_native_json_over_the_limit_is_413_and_writes_nothing(
    server: LiveServer, streamed: bool
) -> None:
    before = job_count(server)
    body = job_with_env(JSON_LIMIT + PIECE)
    answer = post(server, "/api/v1/jobs", chunked(body) if streamed else body)
    assert_native_413(answer, JSON_LIMIT)
    assert job_count(server) == before
    with server.client() as http:
        assert http.get("/api/v1/health").status_code == 200


@pytest.mark.parametrize("streamed", [False, True], ids=["content-length", "chunked"])
def test_cmd_json_over_the_limit_is_413_in_its_shape(server: LiveServer, streamed: bool) -> None:
    before = job_count(server)
    body = job_with_env(JSON_LIMIT + PIECE)
    answer = post(server, "/api/jobs/submit", chunked(body) if streamed else body)
    assert_cmd_413(answer, JSON_LIMIT)
    assert job_count(server) == before
    assert post(server, "/api/jobs/submit", job_with_env(10)).status_code == 201


def test_an_oversized_login_is_refused_before_any_password_check(server: LiveServer) -> None:
    body = orjson.dumps({"email": "a@x.io", "password": "p" * (JSON_LIMIT + 1)})
    with httpx.Client(base_url=server.url, timeout=30) as http:
        answer = http.post("/api/auth/login", content=body)
    assert_cmd_413(answer, JSON_LIMIT)


def test_upload_routes_get_the_upload_limit(server: LiveServer) -> None:
    data = b"z" * (JSON_LIMIT * 2)  # far over the JSON limit, under the upload limit
    with server.client() as http:
        stored = http.post("/api/v1/files", params={"filename": "a.bin"}, content=chunked(data))
    assert stored.status_code == 201, stored.text
    assert stored.json()["size"] == len(data)


def test_a_streamed_upload_over_its_limit_is_413(server: LiveServer) -> None:
    data = b"z" * (UPLOAD_LIMIT * 2)
    with server.client() as http:
        answer = http.post("/api/v1/files", params={"filename": "a.bin"}, content=chunked(data))
        assert answer.status_code == 413, answer.text
        assert set(answer.json()) == {"error", "context"}
        assert http.get("/api/v1/health").status_code == 200
