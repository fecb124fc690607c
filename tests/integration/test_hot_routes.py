"""Issue 13: the executor's hot routes, answered by ``api/native/hotpath.py``, answer
exactly as the FastAPI routes they shortcut.

The shortcut takes only bodies declared as plain ``application/json``; the same body
declared ``application/json; charset=utf-8`` goes through FastAPI. Each case sends one
request both ways, in a state where both must get the same answer, and compares status,
error shape and the headers a client reads.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.integration.test_native_api import API, claim_one, submit
from tests.live import LiveServer

FAST = "application/json"
FASTAPI = "application/json; charset=utf-8"  # not the shortcut's: FastAPI answers


def send(
    http: httpx.Client, method: str, path: str, body: Any, content_type: str
) -> httpx.Response:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return http.request(method, path, content=raw, headers={"Content-Type": content_type})


def both(http: httpx.Client, method: str, path: str, body: Any) -> tuple[httpx.Response, ...]:
    return tuple(send(http, method, path, body, kind) for kind in (FAST, FASTAPI))


def assert_same(
    fast: httpx.Response, slow: httpx.Response, *, ignore: tuple[str, ...] = ()
) -> None:
    assert fast.status_code == slow.status_code, (fast.text, slow.text)
    for header in ("content-type", "www-authenticate", "retry-after", "cache-control"):
        assert fast.headers.get(header) == slow.headers.get(header), header
    if not fast.content or not slow.content:
        assert fast.content == slow.content
        return
    mine, theirs = fast.json(), slow.json()
    if isinstance(mine, dict):
        for key in ignore:
            mine.pop(key, None)
            theirs.pop(key, None)
    assert mine == theirs


@pytest.fixture
def http(live_server: LiveServer) -> Iterator[httpx.Client]:
    with live_server.client() as client:
        yield client


def two_running(http: httpx.Client) -> list[dict[str, Any]]:
    for _ in range(2):
        submit(http)
    return [claim_one(http, "hot-1"), claim_one(http, "hot-1")]


def test_item2_hot_routes_refuse_as_fastapi_does(
    http: httpx.Client, live_server: LiveServer
) -> None:
    running = two_running(http)
    job = running[0]
    cases: list[tuple[str, str, Any]] = [
        ("PUT", f"{API}/jobs/nope/complete", {"executor_id": "hot-1", "attempt": 1}),
        ("PUT", f"{API}/jobs/{job['id']}/complete", {"executor_id": "hot-1", "attempt": 7}),
        ("PUT", f"{API}/jobs/{job['id']}/fail", {"executor_id": "other", "attempt": 1}),
        ("PUT", f"{API}/jobs/{job['id']}/heartbeat", {"executor_id": "hot-1", "attempt": 9}),
        ("PUT", f"{API}/jobs/{job['id']}/complete", {"executor_id": "", "attempt": 1}),
        ("PUT", f"{API}/jobs/{job['id']}/complete", {"executor_id": "hot-1", "exit_code": 2**70}),
        ("PUT", f"{API}/jobs/{job['id']}/complete", b"{not json"),
        ("PUT", f"{API}/jobs/{job['id']}/complete", b""),
        (
            "PUT",
            f"{API}/jobs/{job['id']}/complete",
            {"executor_id": "h", "stdout": "x" * (5 << 20)},
        ),
        ("POST", f"{API}/jobs/claim", {"executor_id": "hot-1", "n": 0}),
        ("POST", f"{API}/jobs/claim", {"executor_id": "hot-1", "wait": 61}),
        ("POST", f"{API}/jobs/claim", {"executor_id": "hot-1"}),  # nothing pending: 204
        ("POST", f"{API}/jobs/results", [{"job_id": "nope", "executor_id": "hot-1"}]),
        ("POST", f"{API}/jobs/results", [{"job_id": "x", "executor_id": "h", "status": "ok"}]),
    ]
    cases += [
        ("POST", f"{API}/jobs", body)
        for body in ({}, {"command": "true", "timeout": 2**70}, {"command": "true", "priority": 9})
    ]
    cases += [
        ("POST", f"{API}/jobs/bulk", body)
        for body in (
            [],
            {"command": "true"},
            [{"command": "true"}, {"command": "true", "timeout": 2**70}],
            [{"command": "true"}, {"command": "true", "concurrency_limit": 2}],
            [{"command": "true"}] * 10001,
        )
    ]
    results = [{"job_id": "nope", "executor_id": "hot-1", "attempt": 1, "status": "completed"}]
    cases.append(("POST", f"{API}/jobs/results", results))
    for method, path, body in cases:
        assert_same(*both(http, method, path, body))
    with httpx.Client(base_url=live_server.url) as anonymous:  # no token: 401
        assert_same(*both(anonymous, "POST", f"{API}/jobs/claim", {"executor_id": "hot-1"}))
    with live_server.client(live_server.token("submitter")) as submitter:  # no right: 403
        assert_same(*both(submitter, "POST", f"{API}/jobs/claim", {"executor_id": "hot-1"}))


def test_item2_hot_routes_succeed_as_fastapi_does(http: httpx.Client) -> None:
    submitted = both(http, "POST", f"{API}/jobs", {"command": "true", "type": "hot"})
    assert submitted[0].status_code == 201, submitted[0].text
    assert_same(*submitted, ignore=("id", "created_at"))
    bulk = both(http, "POST", f"{API}/jobs/bulk", [{"command": "true"}, {"command": "false"}])
    assert bulk[0].status_code == 201, bulk[0].text
    assert [[j["status"] for j in answer.json()] for answer in bulk] == [["pending"] * 2] * 2
    first, second = two_running(http)
    lease = {"executor_id": "hot-1", "attempt": 1}
    for route, ignore in (("heartbeat", ("id", "lease_expires_at")), ("complete", ("id",))):
        answers = [
            send(http, "PUT", f"{API}/jobs/{job['id']}/{route}", {**lease, "exit_code": 0}, kind)
            for job, kind in ((first, FAST), (second, FASTAPI))
        ]
        assert answers[0].status_code == 200, answers[0].text
        assert_same(*answers, ignore=ignore)
    for _ in range(2):
        submit(http)
    claimed = [
        send(http, "POST", f"{API}/jobs/claim", {"executor_id": "hot-2", "n": 1}, kind)
        for kind in (FAST, FASTAPI)
    ]
    assert [len(answer.json()) for answer in claimed] == [1, 1]
    assert set(claimed[0].json()[0]) == set(claimed[1].json()[0])
    reports = [
        [{"job_id": answer.json()[0]["id"], **lease, "executor_id": "hot-2", "status": "failed"}]
        for answer in claimed
    ]
    done = [
        send(http, "POST", f"{API}/jobs/results", report, kind)
        for report, kind in zip(reports, (FAST, FASTAPI), strict=True)
    ]
    assert [answer.json()[0].pop("ok") for answer in done] == [True, True]
    assert [{**d.json()[0], "job_id": ""} for d in done] == [
        {"job_id": "", "ok": True, "status": "failed"}
    ] * 2


def test_hot_answers_are_fastapis_byte_for_byte(http: httpx.Client) -> None:
    """The hot path renders its own JSON: the very bytes FastAPI sends, unicode and
    control characters included."""
    first, second = two_running(http)
    body = {"executor_id": "hot-1", "attempt": 1, "exit_code": 3, "error_message": "é ✓\n\x01"}
    answers = [
        send(http, "PUT", f"{API}/jobs/{job['id']}/fail", body, kind)
        for job, kind in ((first, FAST), (second, FASTAPI))
    ]
    assert answers[0].status_code == 200, answers[0].text
    assert answers[0].content.replace(first["id"].encode(), b"ID") == answers[1].content.replace(
        second["id"].encode(), b"ID"
    )
    assert answers[0].json()["error_message"] == "é ✓\n\x01"
