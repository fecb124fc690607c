"""Issue 11, item 22: what one caller may hold is bounded, and crossing a bound is a 4xx
in the dialect's own shape. One server with small bounds, over real HTTP."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import ValidationError
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from corral.settings import ServerSettings
from tests.integration.test_cmd_auth import ADMIN, assert_cmd_error, bearer, login
from tests.integration.test_native_api import API, assert_error, claim_one
from tests.integration.test_taskdriver_agents import (
    add_tasks,
    agent_client,
    make_project,
    next_task,
    td_error,
)
from tests.live import LiveServer, run_server

CAP = 1024  # output_cap, and so the largest final-report result
STREAMS = 2
QUOTA = 1000


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    email, password = ADMIN
    with run_server(
        tmp_path_factory.mktemp("bounds") / "data",
        admin_email=email,
        admin_password=password,
        output_cap=CAP,
        max_streams_per_principal=STREAMS,
        upload_quota_bytes=QUOTA,
    ) as live:
        yield live


def submit(http: httpx.Client, **body: Any) -> httpx.Response:
    return http.post(f"{API}/jobs", json={"command": "true", **body})


def jwt(live: LiveServer) -> str:
    answer = login(live, *ADMIN)
    assert answer.status_code == 200, answer.text
    token: str = answer.json()["token"]
    return token


# --- live streams per principal ----------------------------------------------------------


def _follow(stack: ExitStack, http: httpx.Client, job_id: str) -> httpx.Response:
    return stack.enter_context(http.stream("GET", f"{API}/jobs/{job_id}/output/follow"))


def _ws_refusal(live: LiveServer, token: str) -> tuple[int, dict[str, Any]]:
    url = live.url.replace("http://", "ws://") + "/api/jobs/stream?" + f"token={token}"
    with pytest.raises(InvalidStatus) as caught, connect(url, open_timeout=10):
        pass
    response = caught.value.response
    return response.status_code, json.loads(response.body)


def test_item22_live_streams_per_principal_are_bounded(server: LiveServer) -> None:
    """SSE followers and WebSocket watchers share one bound per caller; others are unaffected,
    and a closed stream gives its slot back."""
    with server.client() as http, ExitStack() as stack:
        job_id = submit(http).json()["id"]  # stays pending: its follow stays open
        for _ in range(STREAMS):
            assert _follow(stack, http, job_id).status_code == 200
        refused = http.get(f"{API}/jobs/{job_id}/output/follow")
        body = assert_error(refused, 429)
        assert body["context"]["limit"] == STREAMS and refused.headers["Retry-After"]
        status, cmd_body = _ws_refusal(server, server.admin_token)
        assert status == 429 and cmd_body["code"] == "RATE_LIMITED"
        viewer = stack.enter_context(server.client(server.token("viewer")))
        assert _follow(stack, viewer, job_id).status_code == 200
        stack.close()  # every follower hangs up
        deadline = time.monotonic() + 10
        while True:
            with http.stream("GET", f"{API}/jobs/{job_id}/output/follow") as again:
                if again.status_code == 200:
                    break
            assert time.monotonic() < deadline, "the slots were never given back"
            time.sleep(0.05)
        http.delete(f"{API}/jobs/{job_id}")


def _running(http: httpx.Client) -> str:
    """A job of its own, claimed by executor w1 as attempt 1."""
    submit(http)
    job_id: str = claim_one(http, "w1")["id"]
    return job_id


# --- bulk cancel -------------------------------------------------------------------------


def test_item22_bulk_cancel_takes_at_most_1000_ids(server: LiveServer) -> None:
    with server.client() as http:
        ids = [f"id-{i}" for i in range(1001)]
        body = assert_error(http.post(f"{API}/jobs/bulk/cancel", json={"job_ids": ids}), 400)
        assert body["context"]["field"] == "job_ids"
        fine = http.post(f"{API}/jobs/bulk/cancel", json={"job_ids": ids[:1000]})
        assert fine.status_code == 200 and fine.json()["failed"] == 1000
        schema = http.get("/api/openapi.json").json()["components"]["schemas"]["BulkCancel"]
        assert schema["properties"]["job_ids"]["maxItems"] == 1000


# --- a final report's result -------------------------------------------------------------


def test_item22_a_final_reports_result_is_held_to_the_output_cap(server: LiveServer) -> None:
    """The output cap bounded the streams, but ``result`` (where agents put their whole
    answer) was stored at any size the body limit let through."""
    with server.client() as http:
        job_id = _running(http)
        lease = {"executor_id": "w1", "attempt": 1}
        big = {**lease, "result": "x" * CAP}  # with its quotes, two bytes past the cap
        body = assert_error(http.put(f"{API}/jobs/{job_id}/complete", json=big), 413)
        assert body["context"] == {"field": "result", "limit": CAP}
        assert http.get(f"{API}/jobs/{job_id}").json()["status"] == "running"

        other_id = _running(http)
        reports = [
            {"job_id": job_id, **lease, "status": "completed", "result": ["y" * CAP]},
            {"job_id": other_id, **lease, "status": "failed", "error_message": "e" * 20_000},
        ]
        answers = http.post(f"{API}/jobs/results", json=reports).json()
        codes = [(a["ok"], a.get("code")) for a in answers]
        assert codes == [(False, 413), (True, None)]
        failed = http.get(f"{API}/jobs/{other_id}").json()
        assert len(failed["error_message"]) == 10_000  # cut, not refused

        fits = http.put(f"{API}/jobs/{job_id}/complete", json={**lease, "result": "x" * 100})
        assert fits.status_code == 200, fits.text


def test_item22_output_in_a_final_report_reaches_watchers_only_up_to_the_cap(
    server: LiveServer,
) -> None:
    """The store kept at most the cap of a final report's stdout, but every watcher was
    sent all of it: the report's output went around the cap."""
    with server.client() as http:
        job_id = _running(http)
        url = server.url.replace("http://", "ws://") + "/api/jobs/stream"
        query = f"?jobId={job_id}&token={server.admin_token}"
        with connect(url + query, open_timeout=10) as ws:
            report = {"executor_id": "w1", "attempt": 1, "stdout": "x" * (5 * CAP)}
            assert http.put(f"{API}/jobs/{job_id}/complete", json=report).status_code == 200
            sent = 0
            while (event := json.loads(ws.recv(timeout=10)))["type"] != "job.completed":
                sent += len(event.get("data", ""))
        assert sent == CAP
        stored = http.get(f"{API}/jobs/{job_id}/output", params={"stream": "stdout"}).json()
        assert (stored["size"], stored["truncated"]) == (CAP, True)


def test_item22_cmd_submit_result_is_held_to_the_output_cap(server: LiveServer) -> None:
    with server.client() as http:
        job_id = _running(http)
    with bearer(server, jwt(server)) as cmd:
        report = {"jobId": job_id, "workerId": "w1", "exitCode": 0, "result": "r" * CAP}
        body = assert_cmd_error(cmd.post("/api/jobs/submit-result", json=report), 413)
        assert body["details"]["limit"] == CAP


# --- upload quota ------------------------------------------------------------------------


def _owned(live: LiveServer) -> int:
    with sqlite3.connect(live.settings.sqlite_path) as db:
        return int(db.execute("SELECT count(*) FROM files").fetchone()[0])


def test_item22_uploads_are_held_to_a_per_user_quota(server: LiveServer) -> None:
    with server.client(server.token("submitter")) as http:
        first = http.post(f"{API}/files", params={"filename": "a"}, content=b"a" * 600)
        assert first.status_code == 201, first.text
        before = _owned(server)
        over = http.post(f"{API}/files", params={"filename": "b"}, content=b"b" * 600)
        body = assert_error(over, 413)
        assert body["context"] == {"quota": QUOTA, "used": 600}
        assert "quota" in body["error"] and _owned(server) == before  # nothing kept
        rest = http.post(f"{API}/files", params={"filename": "c"}, content=b"c" * 400)
        assert rest.status_code == 201, rest.text
        full = http.post(f"{API}/files", params={"filename": "d"}, content=b"d")
        assert assert_error(full, 413)["context"]["used"] == QUOTA
    with bearer(server, jwt(server)) as cmd:  # another user: a quota of its own
        files = {"file": ("p.bin", b"p" * 900)}
        assert cmd.post("/api/files/upload", files=files).status_code == 201
        refused = cmd.post("/api/files/upload", files={"file": ("q.bin", b"q" * 200)})
        assert assert_cmd_error(refused, 400)["code"] == "QUOTA_EXCEEDED"


# --- projects ----------------------------------------------------------------------------


def test_item22_jobs_join_only_existing_open_projects(server: LiveServer) -> None:
    with server.client() as http:
        unknown = assert_error(submit(http, project_id="no-such-project"), 400)
        assert unknown["context"]["field"] == "project_id"
        made = http.post("/api/projects", json={"name": "bounds-project"})
        assert made.status_code == 201, made.text
        project_id = made.json()["data"]["id"]
        assert submit(http, project_id=project_id).status_code == 201
        closed = http.put(f"/api/projects/{project_id}", json={"status": "closed"})
        assert closed.status_code == 200, closed.text
        body = assert_error(submit(http, project_id=project_id), 400)
        assert "closed" in body["error"]
        bulk = [{"command": "true"}, {"command": "true", "project_id": "no-such-project"}]
        total = int(http.get(f"{API}/jobs", params={"limit": 1}).headers["X-Total-Count"])
        assert_error(http.post(f"{API}/jobs/bulk", json=bulk), 400)
        after = int(http.get(f"{API}/jobs", params={"limit": 1}).headers["X-Total-Count"])
        assert after == total  # all or nothing


def test_item22_bounds_are_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Documented defaults, read from CORRAL_* like every other setting."""
    defaults = ServerSettings(data_dir=tmp_path)
    assert (defaults.max_streams_per_principal, defaults.upload_quota_bytes) == (32, 10 << 30)
    monkeypatch.setenv("CORRAL_MAX_STREAMS_PER_PRINCIPAL", "3")
    monkeypatch.setenv("CORRAL_UPLOAD_QUOTA_BYTES", "4096")
    configured = ServerSettings(data_dir=tmp_path)
    assert (configured.max_streams_per_principal, configured.upload_quota_bytes) == (3, 4096)
    monkeypatch.setenv("CORRAL_MAX_STREAMS_PER_PRINCIPAL", "0")
    with pytest.raises(ValidationError):
        ServerSettings(data_dir=tmp_path)


def test_item22_taskdriver_complete_is_held_to_the_output_cap(server: LiveServer) -> None:
    """An agent's whole answer goes into ``result``: beyond the cap it is a 413 in
    TaskDriver's shape, the task stays leased, and a smaller answer completes it."""
    project = make_project(server)
    [task_id] = add_tasks(server, project)
    with agent_client(server, "bot", project) as http:
        next_task(http, "bot", project)
        url = f"/api/tasks/{task_id}/complete"
        too_big = http.post(url, json={"result": "r" * CAP, "outputs": {}})
        td_error(too_big, 413)
        unstorable = http.post(url, json={"result": "ok", "outputs": {"n": 2**70}})
        td_error(unstorable, 422)
        done = http.post(url, json={"result": "ok", "outputs": {"n": 1}})
        assert done.status_code == 200, done.text
