"""Job environment rules and secret values over real HTTP, on SQLite and PostgreSQL.

Refused environments answer 400 in the native shape and store nothing; a
secret's value is returned only to the executor holding the lease, and never
written to the server's log.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from corral.cli.logs import JsonFormatter
from tests.integration.test_native_api import API, assert_error, total_jobs
from tests.live import LiveServer, run_server_on

SECRET = "s3cr3t-Value-4711"  # distinctive, so a leak anywhere is found by a substring search
MASK = "********"


@pytest.fixture(params=["sqlite", "postgres"])
def server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[LiveServer]:
    """One dispatcher per test, on each backend: both read the spec through one codec."""
    with run_server_on(request.param, request, tmp_path) as live:
        yield live


def secret_job(**extra: Any) -> dict[str, Any]:
    return {
        "command": 'echo "$MY_SECRET"',
        "env_variables": {"PLAIN": "visible"},
        "secret_env": {"MY_SECRET": SECRET},
        **extra,
    }


@pytest.mark.parametrize(
    ("field", "env"),
    [
        ("env_variables", {"LD_PRELOAD": "/tmp/evil.so"}),
        ("env_variables", {"BASH_ENV": "/tmp/evil.sh"}),
        ("env_variables", {"1BAD": "x"}),
        ("env_variables", {"OK": "a\x00b"}),
        ("secret_env", {"LD_AUDIT": "/tmp/evil.so"}),
        ("secret_env", {"TOKEN": "a\x00b"}),
        ("secret_env", {"BAD-NAME": "x"}),
    ],
)
def test_refused_environments_answer_400_and_store_nothing(
    live_server: LiveServer, field: str, env: dict[str, str]
) -> None:
    with live_server.client(live_server.token("submitter")) as http:
        before = total_jobs(http)
        one = assert_error(http.post(f"{API}/jobs", json={"command": "true", field: env}), 400)
        bulk = [{"command": "true"}, {"command": "true", field: env}]
        many = assert_error(http.post(f"{API}/jobs/bulk", json=bulk), 400)
        assert total_jobs(http) == before
    assert one["context"]["field"] == "env"
    assert many["context"]["field"] == "env"


def test_a_name_in_both_maps_is_refused(live_server: LiveServer) -> None:
    body = {"command": "true", "env_variables": {"T": "a"}, "secret_env": {"T": "b"}}
    with live_server.client(live_server.token("submitter")) as http:
        assert "both" in assert_error(http.post(f"{API}/jobs", json=body), 400)["error"]


def test_secrets_are_masked_for_readers_and_real_in_the_claim(
    server: LiveServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    submitter = server.client(server.token("submitter"))
    viewer = server.client(server.token("viewer"))
    worker = server.client(server.token("worker"))
    seen: list[str] = []
    with submitter, viewer, worker:

        def read(http: httpx.Client, method: str, path: str, **kw: Any) -> Any:
            answer = http.request(method, f"{API}{path}", **kw)
            assert answer.status_code < 300, answer.text
            seen.append(answer.text)
            return answer.json()

        key = {"Idempotency-Key": "secret-once"}
        created = read(submitter, "POST", "/jobs", json=secret_job(), headers=key)
        replayed = read(submitter, "POST", "/jobs", json=secret_job(), headers=key)
        assert replayed == created
        bulk = read(submitter, "POST", "/jobs/bulk", json=[secret_job(), secret_job()])
        job_id = created["id"]
        for http in (submitter, viewer):
            shown = read(http, "GET", f"/jobs/{job_id}")
            assert shown["secret_env"] == {"MY_SECRET": MASK}
            assert shown["env_variables"] == {"PLAIN": "visible"}
            read(http, "GET", "/jobs", params={"limit": 10})
        claim = worker.post(f"{API}/jobs/claim", json={"executor_id": "w1", "n": 3})
        claimed = claim.raise_for_status().json()
        for job in bulk:
            read(viewer, "GET", f"/jobs/{job['id']}")
        read(viewer, "GET", f"/jobs/{job_id}")  # while running, leased to w1
    assert all(SECRET not in text for text in seen), "a read path leaked the secret"
    assert {j["id"] for j in claimed} == {job_id, *(j["id"] for j in bulk)}
    assert all(j["secret_env"] == {"MY_SECRET": SECRET} for j in claimed)
    log_lines = [JsonFormatter().format(r) for r in caplog.records]
    assert log_lines, "the server logged nothing: the capture is not working"
    assert not [line for line in log_lines if SECRET in line]


def test_claim_answers_carry_secrets_only_to_the_claimer(live_server: LiveServer) -> None:
    """A second executor asking afterwards gets nothing; readers still see the mask."""
    with live_server.client(live_server.token("submitter")) as http:
        job_id = http.post(f"{API}/jobs", json=secret_job()).raise_for_status().json()["id"]
    with live_server.client(live_server.token("worker")) as http:
        first = http.post(f"{API}/jobs/claim", json={"executor_id": "w1"})
        second = http.post(f"{API}/jobs/claim", json={"executor_id": "w2"})
    assert first.json()["id"] == job_id and first.json()["secret_env"]["MY_SECRET"] == SECRET
    assert second.status_code == 204
    with live_server.client(live_server.token("viewer")) as http:
        assert http.get(f"{API}/jobs/{job_id}").json()["secret_env"] == {"MY_SECRET": MASK}
