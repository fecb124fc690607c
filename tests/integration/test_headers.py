"""Every response, from any route or error path, carries the common headers."""

from __future__ import annotations

import httpx
import pytest

from tests.live import LiveServer


def assert_common_headers(response: httpx.Response) -> None:
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["cache-control"] == "no-cache, no-store, must-revalidate"
    assert response.headers["pragma"] == "no-cache"
    assert response.headers["expires"] == "0"
    assert float(response.headers["x-response-time-ms"]) >= 0
    assert len(response.headers["x-request-id"]) >= 16


@pytest.mark.parametrize(
    ("method", "path", "body", "status"),
    [
        ("GET", "/api/v1/health", None, 200),
        ("GET", "/api/v1/jobs", None, 200),
        ("POST", "/api/v1/jobs", {"command": "true"}, 201),
        ("POST", "/api/v1/jobs", {"timeout": "x"}, 400),
        ("GET", "/api/v1/jobs/nope", None, 404),
        ("GET", "/api/v1/no-such-route", None, 404),
        ("GET", "/health", None, 200),
        ("GET", "/metrics", None, 200),
        ("GET", "/api/v1/tasks", None, 200),
        ("POST", "/api/v1/tasks", {}, 400),
    ],
)
def test_headers_on_success_and_every_error_path(
    live_server: LiveServer, method: str, path: str, body: object, status: int
) -> None:
    with live_server.client() as http:
        response = http.request(method, path, json=body)
    assert response.status_code == status
    assert_common_headers(response)


def test_unauthenticated_answers_carry_them_too(live_server: LiveServer) -> None:
    response = httpx.get(f"{live_server.url}/api/v1/jobs")
    assert response.status_code == 401
    assert_common_headers(response)


def test_a_callers_request_id_is_echoed_and_a_bad_one_replaced(live_server: LiveServer) -> None:
    with live_server.client() as http:
        echoed = http.get("/api/v1/health", headers={"X-Request-ID": "trace-42"})
        too_long = http.get("/api/v1/health", headers={"X-Request-ID": "x" * 500})
        fresh = [http.get("/api/v1/health").headers["x-request-id"] for _ in range(2)]
    assert echoed.headers["x-request-id"] == "trace-42"
    assert too_long.headers["x-request-id"] != "x" * 500
    assert fresh[0] != fresh[1]


def test_an_answer_with_its_own_cache_control_keeps_it(live_server: LiveServer) -> None:
    """Only answers that say nothing about caching get the no-cache trio (here: SSE)."""
    with live_server.client() as http:
        job_id = http.post("/api/v1/jobs", json={"command": "true"}).json()["id"]
        assert http.delete(f"/api/v1/jobs/{job_id}").status_code == 200
        with http.stream("GET", f"/api/v1/jobs/{job_id}/output/follow") as follow:
            assert follow.status_code == 200
            assert follow.headers["cache-control"] == "no-cache"
            assert "pragma" not in follow.headers
            assert "expires" not in follow.headers
