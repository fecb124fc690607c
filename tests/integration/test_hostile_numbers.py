"""Issue 11, item 23: each 500 the fuzzer reported, as a request that now gets a 4xx in its
dialect's shape. Integers past 64 bits reached SQLite or were echoed into an error
body that orjson could not render."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest

from corral.api.responses import JSON, plain
from tests.integration.test_cmd_auth import assert_cmd_error
from tests.integration.test_native_api import API, assert_error, claim_one
from tests.live import LiveServer, run_server

HUGE = 2**70  # past 64 bits: neither SQLite nor orjson takes it


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with run_server(tmp_path_factory.mktemp("numbers") / "data") as live:
        yield live


def td_error(answer: httpx.Response, field: str) -> dict[str, Any]:
    """TaskDriver's 422, naming the field, with the value quoted as text."""
    assert answer.status_code == 422, answer.text
    body: dict[str, Any] = answer.json()
    assert body["success"] is False
    [detail] = [d for d in body["validationDetails"] if d["field"] == field]
    return detail


def test_item23_cmd_worker_register_refuses_integers_past_64_bits(server: LiveServer) -> None:
    with server.client() as http:
        for body in (
            {"workerId": "w-huge", "totalMemoryMb": HUGE},
            {"workerId": "w-huge", "metadata": {"gpus": [HUGE]}},
            {"workerId": "w-huge", "metadata": {"note": "\ud800"}},  # a lone surrogate
        ):
            raw = json.dumps(body).encode()  # escaped as \ud800: valid JSON text
            headers = {"Content-Type": "application/json"}
            answer = http.post("/api/workers/register", content=raw, headers=headers)
            assert_cmd_error(answer, 400)
        assert http.get("/api/workers/w-huge").status_code == 404  # nothing stored


def test_item23_cmd_worker_list_bounds_limit_and_offset(server: LiveServer) -> None:
    with server.client() as http:
        for params in ({"limit": HUGE}, {"offset": HUGE}, {"limit": 2**63}):
            assert_cmd_error(http.get("/api/workers/list", params=params), 400)
            assert_cmd_error(http.get("/api/jobs/list", params=params), 400)
        big = http.get("/api/workers/list", params={"limit": 10**18, "offset": 10**18})
        assert big.status_code == 200, big.text  # lowered to a page, as before


def test_item23_taskdriver_bodies_refuse_huge_numbers_and_quote_them(server: LiveServer) -> None:
    with server.client() as http:
        made = http.post("/api/projects", json={"name": "numbers"}).json()["data"]
        pid = made["id"]
        kind = http.post(f"/api/projects/{pid}/task-types", json={"name": "t", "template": "x"})
        type_id = kind.json()["data"]["id"]
        task = http.post(f"/api/projects/{pid}/tasks", json={"typeId": type_id})
        task_id = task.json()["data"]["id"]

        bad_project = {"name": "numbers2", "config": {"defaultMaxRetries": HUGE}}
        detail = td_error(http.post("/api/projects", json=bad_project), "config.defaultMaxRetries")
        assert detail["value"] == str(HUGE)
        bad_type = {"name": "t2", "template": "x", "maxRetries": HUGE}
        td_error(http.post(f"/api/projects/{pid}/task-types", json=bad_type), "maxRetries")
        td_error(http.put(f"/api/task-types/{type_id}", json={"maxRetries": HUGE}), "maxRetries")
        td_error(
            http.put(f"/api/task-types/{type_id}", json={"leaseDurationMinutes": 1e308}),
            "leaseDurationMinutes",
        )
        bulk = {"tasks": [{"typeId": type_id, "variables": {"n": HUGE}}]}
        assert http.post(f"/api/projects/{pid}/tasks/bulk", json=bulk).status_code == 422
        change = {"variables": {"n": [HUGE]}}
        assert http.put(f"/api/tasks/{task_id}", json=change).status_code == 422
        assert http.get(f"/api/tasks/{task_id}").status_code == 200  # unchanged, readable


def test_item23_native_numbers_have_ranges(server: LiveServer) -> None:
    with server.client() as http:
        for body in (
            {"command": "true", "timeout": HUGE},
            {"command": "true", "max_retries": 2**40},
            {"command": "true", "lease_seconds": 1e308},
            {"command": "true", "variables": {"n": HUGE}},
        ):
            assert_error(http.post(f"{API}/jobs", json=body), 400)
        http.post(f"{API}/jobs", json={"command": "true"})
        job_id = claim_one(http, "w1")["id"]
        lease = {"executor_id": "w1", "attempt": 1}
        url = f"{API}/jobs/{job_id}/complete"
        assert_error(http.put(url, json={**lease, "exit_code": 2**40}), 400)
        assert_error(http.put(url, json={"executor_id": "w1", "attempt": HUGE}), 400)
        assert_error(http.put(url, json={**lease, "result": {"n": HUGE}}), 400)
        assert http.put(url, json={**lease, "exit_code": -(2**31)}).status_code == 200
        assert_error(http.get(f"{API}/files/x", params={"attempt": HUGE}), 400)


def test_item23_octaskly_limit_is_bounded(server: LiveServer) -> None:
    with server.client() as http:
        answer = http.get(f"{API}/tasks", params={"limit": HUGE})
        assert answer.status_code == 400, answer.text
        assert http.get(f"{API}/tasks", params={"limit": 5000}).json()["limit"] == 1000


def test_item23_an_error_body_renders_whatever_it_quotes() -> None:
    """The last line of defence: content orjson refuses is rendered with those values as text."""
    content = {"value": HUGE, "text": "a\ud800b", "nan": float("nan"), 3: {1, 2}, "ok": [1, "x"]}
    rendered = orjson.loads(JSON(content, status_code=422).body)
    assert rendered == {
        "value": str(HUGE),
        "text": "a?b",
        "nan": "nan",
        "3": "{1, 2}",
        "ok": [1, "x"],
    }
    assert plain([-(2**63), 2**63 - 1]) == [-(2**63), 2**63 - 1]  # in range: unchanged
