"""``/health`` and ``/metrics``, shared by the Octaskly and TaskDriver faces.

One health body carries both documents' keys; ``/metrics`` is the native
registry behind the native gate, and it counts every HTTP answer.
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import httpx
import pytest

from corral.errors import Unavailable
from corral.store.sqlite.store import SqliteStore
from tests.live import LiveServer, run_server
from tests.pg_server import PgServer

ISO_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")
NO_CACHE = {
    "cache-control": "no-cache, no-store, must-revalidate",
    "pragma": "no-cache",
    "expires": "0",
}


def sample(text: str, name: str) -> float:
    """The value of one Prometheus sample line, e.g. ``corral_x_total{outcome="error"}``."""
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{name} not in the metrics")


def test_health_satisfies_octaskly_and_taskdriver_without_auth(live_server: LiveServer) -> None:
    answer = httpx.get(f"{live_server.url}/health")
    assert answer.status_code == 200
    body = answer.json()
    # Octaskly
    assert body["status"] == "healthy"
    assert isinstance(body["version"], str) and body["version"]
    assert isinstance(body["uptime_seconds"], int) and body["uptime_seconds"] >= 0
    # TaskDriver
    assert body["success"] is True
    data = body["data"]
    assert data["status"] == "healthy"
    assert ISO_Z.match(data["timestamp"])
    assert isinstance(data["uptime"], int)
    assert data["storage"] == {"healthy": True, "provider": "sqlite"}
    for name, value in NO_CACHE.items():
        assert answer.headers[name] == value
    assert answer.headers["x-request-id"]


def test_health_is_503_in_both_shapes_when_the_database_does_not_answer(
    live_server: LiveServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def down(self: SqliteStore) -> None:
        raise Unavailable("database unreachable")

    # The server runs in a thread of this process: patching the class reaches its store.
    monkeypatch.setattr(SqliteStore, "ping", down)
    answer = httpx.get(f"{live_server.url}/health")
    assert answer.status_code == 503
    assert answer.headers["retry-after"] == "2"  # a load balancer or client knows when
    body = answer.json()
    assert body["status"] == "unhealthy"
    assert body["message"] == "Database connection failed"
    assert body["success"] is False
    assert body["error"] == "Database connection failed"
    assert ISO_Z.match(body["timestamp"])
    assert body["correlationId"] == answer.headers["x-request-id"]
    assert body["data"]["status"] == "unhealthy"
    assert body["data"]["storage"] == {"healthy": False, "provider": "sqlite"}


def test_health_and_stats_on_postgresql(tmp_path: Path, pg_server: PgServer) -> None:
    url = asyncio.run(pg_server.new_database(migrated=False))
    with run_server(tmp_path / "data", database_url=url) as live:
        body = httpx.get(f"{live.url}/health").json()
        with live.client() as http:
            http.post("/api/v1/tasks", json={"command": "true"}).raise_for_status()
            stats = http.get("/api/v1/stats").json()
    assert body["data"]["storage"] == {"healthy": True, "provider": "postgresql"}
    assert stats["database"]["total_tasks"] == 1
    assert stats["database"]["disk_size_mb"] >= 1


def test_metrics_is_the_native_registry_behind_the_native_gate(live_server: LiveServer) -> None:
    anonymous = httpx.get(f"{live_server.url}/metrics")
    assert anonymous.status_code == 401
    body = anonymous.json()
    # Both faces' error keys, like the health body.
    assert body["error"] == "Missing or invalid authentication token"
    assert body["status"] == 401 and body["success"] is False
    assert ISO_Z.match(body["timestamp"])
    assert body["correlationId"] == anonymous.headers["x-request-id"]
    assert anonymous.headers["www-authenticate"] == "Bearer"

    with live_server.client(live_server.token("worker")) as http:
        refused = http.get("/metrics")
    assert refused.status_code == 403
    assert refused.json()["error"] == "Insufficient permissions"

    with live_server.client(live_server.token("viewer")) as http:
        scraped = http.get("/metrics")
        native = http.get("/api/v1/metrics")
    assert scraped.status_code == 200
    assert scraped.headers["content-type"].startswith("text/plain")
    for name, value in NO_CACHE.items():
        assert scraped.headers[name] == value
    for text in (scraped.text, native.text):
        assert "corral_jobs_submitted_total" in text
        assert 'corral_jobs{status="pending"}' in text
        assert "corral_http_requests_total" in text


def test_http_requests_are_counted_by_outcome_with_their_time(live_server: LiveServer) -> None:
    success = 'corral_http_requests_total{outcome="success"}'
    error = 'corral_http_requests_total{outcome="error"}'
    count = "corral_http_response_time_seconds_count"
    with live_server.client() as http:
        before = http.get("/metrics").text
        for _ in range(3):
            assert http.get("/health").status_code == 200
        assert http.get("/api/v1/tasks/nope").status_code == 404
        assert httpx.get(f"{live_server.url}/api/v1/jobs").status_code == 401
        after = http.get("/metrics").text
    # The first scrape itself counts once it is answered: it is in `after`, not `before`.
    assert sample(after, success) - sample(before, success) == 4
    assert sample(after, error) - sample(before, error) == 2
    assert sample(after, count) - sample(before, count) == 6
    assert sample(after, "corral_http_response_time_seconds_sum") > sample(
        before, "corral_http_response_time_seconds_sum"
    )
