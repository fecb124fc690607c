"""CMD Executor's ``ws /api/jobs/stream`` over a real socket: events in order, filters, refusals."""

from __future__ import annotations

import contextlib
import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import ClientConnection, connect

from tests.integration.test_cmd_auth import ADMIN, login
from tests.integration.test_native_api import API, ISO_Z, claim_one
from tests.live import LiveServer, run_server
from tests.processes import CORRAL, clean_env, free_port, poll

STREAM = "/api/jobs/stream"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[LiveServer]:
    email, password = ADMIN
    with run_server(tmp_path / "data", admin_email=email, admin_password=password) as live:
        yield live


def jwt(live: LiveServer) -> str:
    answer = login(live, *ADMIN)
    assert answer.status_code == 200, answer.text
    token: str = answer.json()["token"]
    return token


def ws_url(live: LiveServer, **params: str) -> str:
    query = str(httpx.QueryParams(params))
    return live.url.replace("http://", "ws://") + STREAM + (f"?{query}" if query else "")


def watch(
    live: LiveServer, headers: dict[str, str] | None = None, **params: str
) -> ClientConnection:
    return connect(ws_url(live, **params), additional_headers=headers, open_timeout=10)


def next_event(ws: ClientConnection) -> dict[str, Any]:
    event: dict[str, Any] = json.loads(ws.recv(timeout=10))
    return event


def submit(http: httpx.Client, command: str = "echo hi") -> str:
    answer = http.post(f"{API}/jobs", json={"command": command})
    assert answer.status_code == 201, answer.text
    job_id: str = answer.json()["id"]
    return job_id


def run_job(live: LiveServer, worker_token: str, executor_id: str = "w1") -> str:
    """Submit one job, claim it, stream a line of output and complete it."""
    with live.client() as admin:
        job_id = submit(admin)
    with live.client(worker_token) as w:
        claimed = claim_one(w, executor_id)
        assert claimed["id"] == job_id
        lease = {"executor_id": executor_id, "attempt": claimed["attempt"]}
        out = {**lease, "stream": "stdout", "data": "hello\n"}
        assert w.post(f"{API}/jobs/{job_id}/output", json=out).status_code == 200
        done = w.put(f"{API}/jobs/{job_id}/complete", json={**lease, "exit_code": 0})
        assert done.status_code == 200, done.text
    return job_id


def test_started_output_and_completed_arrive_in_order(server: LiveServer) -> None:
    with watch(server, token=jwt(server)) as ws:
        job_id = run_job(server, server.token("worker"))
        started, output, completed = next_event(ws), next_event(ws), next_event(ws)
    assert started == {
        "type": "job.started",
        "jobId": job_id,
        "workerId": "w1",
        "timestamp": started["timestamp"],
    }
    assert output == {
        "type": "job.output",
        "jobId": job_id,
        "stream": "stdout",
        "data": "hello\n",
        "timestamp": output["timestamp"],
    }
    assert completed == {
        "type": "job.completed",
        "jobId": job_id,
        "status": "completed",
        "exitCode": 0,
        "timestamp": completed["timestamp"],
    }
    assert all(ISO_Z.match(e["timestamp"]) for e in (started, output, completed))


def test_the_bearer_header_and_the_login_cookie_also_authenticate(server: LiveServer) -> None:
    token = jwt(server)
    with (
        watch(server, {"Authorization": f"Bearer {token}"}) as by_header,
        watch(server, {"Cookie": f"auth_token={token}"}) as by_cookie,
        watch(server, {"Authorization": f"Bearer {server.token('viewer')}"}) as viewer,
    ):
        job_id = run_job(server, server.token("worker"))
        for ws in (by_header, by_cookie, viewer):
            event = next_event(ws)
            assert (event["type"], event["jobId"], event["workerId"]) == (
                "job.started",
                job_id,
                "w1",
            )


class _Any:
    """Equal to anything: for fields (timestamps) whose value a test does not pin."""

    def __eq__(self, other: object) -> bool:
        return True

    __hash__ = None  # type: ignore[assignment]


ANY: Any = _Any()


def test_a_job_filter_shows_only_that_job(server: LiveServer) -> None:
    worker_token = server.token("worker")
    with server.client() as admin:
        first, second = submit(admin), submit(admin)
    with watch(server, token=jwt(server), jobId=second) as ws, server.client(worker_token) as w:
        for job_id in (first, second):
            claimed = claim_one(w, "w1")
            assert claimed["id"] == job_id
            body = {"executor_id": "w1", "exit_code": 3}
            assert w.put(f"{API}/jobs/{job_id}/fail", json=body).status_code == 200
        started, completed = next_event(ws), next_event(ws)
    assert (started["type"], started["jobId"]) == ("job.started", second)
    assert completed == {
        "type": "job.completed",
        "jobId": second,
        "status": "failed",
        "exitCode": 3,
        "timestamp": ANY,
    }


def test_a_pending_job_cancelled_at_once_is_completed_as_cancelled(server: LiveServer) -> None:
    with server.client() as admin:
        job_id = submit(admin)
        with watch(server, token=jwt(server)) as ws:
            assert admin.delete(f"{API}/jobs/{job_id}").status_code == 200
            event = next_event(ws)
    assert event == {
        "type": "job.completed",
        "jobId": job_id,
        "status": "cancelled",
        "exitCode": None,
        "timestamp": ANY,
    }


def refused(live: LiveServer, headers: dict[str, str] | None = None, **params: str) -> Any:
    with pytest.raises(InvalidStatus) as caught, watch(live, headers, **params):
        pass
    response = caught.value.response
    return response.status_code, json.loads(response.body)


def test_a_handshake_without_the_right_credentials_is_refused(server: LiveServer) -> None:
    status, body = refused(server)
    assert status == 401 and body["code"] == "UNAUTHORIZED"
    assert set(body) == {"error", "message", "details", "code"}
    assert refused(server, token="crl_not-a-token")[0] == 401
    assert refused(server, token=server.token("worker"))[0] == 403  # workers do not watch
    assert refused(server, token=jwt(server), jobId="no-such-job")[0] == 404


def test_shutdown_with_a_connected_watcher_is_prompt(tmp_path: Path) -> None:
    email, password = ADMIN
    with contextlib.ExitStack() as stack:
        with run_server(tmp_path / "data", admin_email=email, admin_password=password) as live:
            ws = stack.enter_context(watch(live, token=jwt(live)))
            began = time.monotonic()
        elapsed = time.monotonic() - began
        with pytest.raises(ConnectionClosed):
            ws.recv(timeout=5)
    assert elapsed < 5, f"shutdown took {elapsed:.1f}s with a watcher connected"


def _status(live: LiveServer, headers: dict[str, str], **params: str) -> int:
    try:
        with watch(live, headers, **params):
            return 101
    except InvalidStatus as exc:
        return exc.response.status_code


def test_item18_cookie_handshakes_from_a_foreign_origin_are_refused(tmp_path: Path) -> None:
    """A page on another port or subdomain of the same site sends the login cookie along;
    only this server's own origin and the configured CORS origins may use it."""
    email, password = ADMIN
    allowed = "https://app.example.com"
    with run_server(
        tmp_path / "data", admin_email=email, admin_password=password, cors_origins=[allowed]
    ) as live:
        token = jwt(live)
        cookie = {"Cookie": f"auth_token={token}"}
        port = live.url.rsplit(":", 1)[1]
        for foreign in (f"http://127.0.0.1:{int(port) + 1}", "https://evil.example", "null"):
            assert _status(live, {**cookie, "Origin": foreign}) == 403, foreign
        assert _status(live, {**cookie, "Origin": live.url}) == 101
        assert _status(live, {**cookie, "Origin": allowed}) == 101
        assert _status(live, cookie) == 101  # no Origin: not a browser's cross-site request
        # A token the page had to hold itself is not ambient authority: no Origin check.
        evil = {"Origin": "https://evil.example"}
        assert _status(live, {**evil, "Authorization": f"Bearer {token}"}) == 101
        assert _status(live, evil, token=token) == 101
        # The same rule on the Server-Sent Events streams the cookie authenticates.
        with live.client() as admin:
            job_id = submit(admin)
        follow = f"/api/v1/jobs/{job_id}/output/follow"
        with httpx.Client(base_url=live.url, timeout=10) as browser:
            for path in (follow, "/ui/events"):
                answer = browser.get(path, headers={**cookie, **evil})
                assert answer.status_code == 403, (path, answer.text)


def test_item18_query_tokens_never_reach_the_logs(tmp_path: Path) -> None:
    """A real ``corral server`` at info level with its access log on: the WebSocket
    handshake line and the access lines carry the path, but never the token."""
    data, port = tmp_path / "data", free_port()
    env = clean_env(CORRAL_ACCESS_LOG="true", CORRAL_LOG_LEVEL="info")
    command = [*CORRAL, "server", "--port", str(port), "--data-dir", str(data)]
    log_path = tmp_path / "server.log"
    with log_path.open("wb") as log:
        server = subprocess.Popen(command, env=env, stdout=log, stderr=log)
        try:
            url = f"http://127.0.0.1:{port}"
            poll(lambda: (data / "admin-token").exists() and _up(url), what="the server")
            token = (data / "admin-token").read_text().strip()
            ws = f"ws://127.0.0.1:{port}{STREAM}?token={token}"
            with connect(ws, open_timeout=10):
                pass
            httpx.get(f"{url}/api/v1/jobs", params={"token": token, "limit": 1})
        finally:
            server.terminate()
            server.wait(timeout=30)
    logged = log_path.read_text()
    assert "WebSocket" in logged and "token=[redacted]" in logged
    assert token not in logged


def _up(url: str) -> bool:
    try:
        return httpx.get(f"{url}/api/v1/health", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False
