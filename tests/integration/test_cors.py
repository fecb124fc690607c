"""CORS over real HTTP: only configured origins get credentials-bearing CORS answers."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from pydantic import ValidationError

from tests.live import LiveServer, run_server

ALLOWED = "https://app.example.com"
OTHER = "https://evil.example.net"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[LiveServer]:
    with run_server(tmp_path / "data", cors_origins=[ALLOWED]) as live:
        yield live


def preflight(live: LiveServer, origin: str) -> httpx.Response:
    headers = {
        "Origin": origin,
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, content-type",
    }
    return httpx.options(f"{live.url}/api/v1/jobs", headers=headers)


def test_an_allowed_origin_gets_credentialed_cors_headers(server: LiveServer) -> None:
    with server.client() as http:
        answer = http.get("/api/v1/jobs", headers={"Origin": ALLOWED})
    assert answer.status_code == 200
    assert answer.headers["access-control-allow-origin"] == ALLOWED
    assert answer.headers["access-control-allow-credentials"] == "true"
    exposed = answer.headers["access-control-expose-headers"].lower()
    assert "x-ratelimit-remaining" in exposed and "retry-after" in exposed


def test_an_allowed_preflight_is_answered_with_the_common_headers(server: LiveServer) -> None:
    answer = preflight(server, ALLOWED)
    assert answer.status_code == 200
    assert answer.headers["access-control-allow-origin"] == ALLOWED
    assert "POST" in answer.headers["access-control-allow-methods"]
    assert "authorization" in answer.headers["access-control-allow-headers"].lower()
    assert answer.headers["x-content-type-options"] == "nosniff"


def test_another_origin_gets_no_cors_headers(server: LiveServer) -> None:
    with server.client() as http:
        answer = http.get("/api/v1/jobs", headers={"Origin": OTHER})
    assert answer.status_code == 200
    assert "access-control-allow-origin" not in answer.headers
    refused = preflight(server, OTHER)
    assert refused.status_code == 400
    assert "access-control-allow-origin" not in refused.headers


def test_errors_to_an_allowed_origin_are_readable_by_its_scripts(server: LiveServer) -> None:
    answer = httpx.get(f"{server.url}/api/v1/jobs", headers={"Origin": ALLOWED})
    assert answer.status_code == 401
    assert answer.headers["access-control-allow-origin"] == ALLOWED


def test_no_origins_configured_means_no_cors_at_all(live_server: LiveServer) -> None:
    with live_server.client() as http:
        answer = http.get("/api/v1/jobs", headers={"Origin": ALLOWED})
    assert answer.status_code == 200
    assert not any(name.startswith("access-control-") for name in answer.headers)
    assert "access-control-allow-origin" not in preflight(live_server, ALLOWED).headers


@pytest.mark.parametrize("origins", [["*"], [ALLOWED, "*"], ["https://*.example.com"]])
def test_a_wildcard_origin_refuses_to_start(tmp_path: Path, origins: list[str]) -> None:
    with (
        pytest.raises(ValidationError, match="'\\*' is refused"),
        run_server(tmp_path, cors_origins=origins),
    ):
        pass
