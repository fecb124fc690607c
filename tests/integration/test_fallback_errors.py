"""Answers no route gave (an unknown path, a wrong method) come in the error shape of
the dialect that owns the path, so each dialect's clients can always parse them."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.live import LiveServer, run_server


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with run_server(tmp_path_factory.mktemp("fallback") / "data") as live:
        yield live


@pytest.mark.parametrize(
    ("method", "path", "status", "keys"),
    [
        ("GET", "/api/v1/nowhere", 404, {"error", "context"}),
        ("PUT", "/api/v1/jobs", 405, {"error", "context"}),
        ("GET", "/api/v1/tasks/a/b", 404, {"error", "status", "timestamp"}),
        ("PUT", "/api/v1/tasks", 405, {"error", "status", "timestamp"}),
        ("GET", "/api/projects/a/b/c", 404, {"success", "error", "timestamp", "correlationId"}),
        ("DELETE", "/api/projects", 405, {"success", "error", "timestamp", "correlationId"}),
        ("GET", "/api/jobs/nowhere", 404, {"error", "message", "details", "code"}),
        ("PATCH", "/api/workers/list", 405, {"error", "message", "details", "code"}),
    ],
)
def test_unknown_routes_answer_in_the_owning_dialects_shape(
    server: LiveServer, method: str, path: str, status: int, keys: set[str]
) -> None:
    with server.client() as http:
        answer = http.request(method, path)
    assert answer.status_code == status
    body = answer.json()
    assert set(body) == keys, body
    if "status" in body:  # Octaskly repeats the status in the body: it must agree
        assert body["status"] == status
    if "correlationId" in body:
        assert body["correlationId"] == answer.headers["x-request-id"]
