"""Every response, from any route or error path, carries the common headers."""

from __future__ import annotations

import httpx
import pytest

from tests.live import LiveServer


def assert_common_headers(response: httpx.Response) -> None:
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["cache-control"] == "no-store"
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
