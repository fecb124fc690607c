"""The workers, queues and projects pages over real HTTP, signed in with a browser's cookie.

Executors register through the native API with a worker token, projects and
leases come from the TaskDriver API, and the pages are read as a viewer: what
they show is what the services answer, escaped, and a worker that goes silent
turns offline on the server's next render without anything else happening.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.live import LiveServer, run_server

API = "/api/v1"
ADMIN = ("root@example.com", "admin-password")
VIEWER = ("viewer@example.com", "pw-123456-long")
XSS = "<script>alert(1)</script>"
ROW = re.compile(r'<tr data-worker-id="([^"]+)" data-state="([^"]+)" data-heartbeat="([^"]+)"')


def start(data: Path, **settings: Any) -> Any:
    email, password = ADMIN
    return run_server(
        data, admin_email=email, admin_password=password, login_rate_limit="off", **settings
    )


def add_viewer(live: LiveServer) -> None:
    email, password = VIEWER
    with live.client() as http:
        body = {"email": email, "password": password, "role": "viewer"}
        assert http.post(f"{API}/admin/users", json=body).status_code == 201


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with start(tmp_path_factory.mktemp("fleet-pages") / "data") as live:
        add_viewer(live)
        yield live


@contextmanager
def sign_in(live: LiveServer, who: tuple[str, str] = VIEWER) -> Iterator[httpx.Client]:
    """As a browser does: fetch the form for its CSRF token, post it, keep the cookie."""
    with httpx.Client(base_url=live.url, follow_redirects=False, timeout=10) as client:
        token = re.search(r'name="csrf" value="([^"]+)"', client.get("/login").text)
        assert token is not None
        email, password = who
        form = {"email": email, "password": password, "csrf": token[1], "next": "/"}
        assert client.post("/login", data=form).status_code == 303
        yield client


def page(client: httpx.Client, path: str) -> str:
    answer = client.get(path)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/html")
    assert "unsafe-inline" not in answer.headers["content-security-policy"]
    # Nothing inline for the CSP to refuse: one external script, no style attributes.
    assert " style=" not in answer.text
    assert re.findall(r"<script[^>]*>", answer.text) in (
        [],
        ['<script src="/static/app.js" defer>'],
    )
    return answer.text


def register(worker: httpx.Client, executor_id: str, **extra: Any) -> None:
    answer = worker.post(f"{API}/executors", json={"executor_id": executor_id, **extra})
    assert answer.status_code == 201, answer.text


def submit(http: httpx.Client, priority: str = "background", **extra: Any) -> str:
    body = {"command": "true", "priority": priority, **extra}
    answer = http.post(f"{API}/jobs", json=body)
    assert answer.status_code == 201, answer.text
    job_id: str = answer.json()["id"]
    return job_id


def rows(html: str) -> dict[str, str]:
    return {worker_id: state for worker_id, state, _ in ROW.findall(html)}


def row_html(html: str, worker_id: str) -> str:
    start_at = html.index(f'<tr data-worker-id="{worker_id}"')
    return html[start_at : html.index("</tr>", start_at)]


# --- workers -------------------------------------------------------------------------------
def test_workers_show_labels_capacity_running_jobs_and_state(server: LiveServer) -> None:
    with server.client() as admin, server.client(server.token("worker")) as worker:
        register(worker, "busy-1", hostname="build-box", labels=["linux", XSS], concurrency=3)
        register(worker, "drain-1", labels=["gpu"])
        assert worker.post(f"{API}/executors/drain-1/heartbeat", json={"draining": True}).is_success
        job_id = submit(admin, labels=["linux"])
        body = {"executor_id": "busy-1", "labels": ["linux"]}
        claimed = worker.post(f"{API}/jobs/claim", json=body)
        assert claimed.status_code == 200 and claimed.json()["id"] == job_id
    with sign_in(server) as browser:
        html = page(browser, "/workers")
    assert {"busy-1": "online", "drain-1": "draining"}.items() <= rows(html).items()
    busy = row_html(html, "busy-1")
    assert f'href="/jobs/{job_id}"' in busy
    assert "1 / 3" in busy and "build-box" in busy and '<span class="state online">' in busy
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in busy and XSS not in html
    assert '<span class="state draining">draining</span>' in row_html(html, "drain-1")
    assert re.search(r'<time data-ago datetime="\d{4}-[^"]+Z"', busy)


def test_workers_page_is_live_and_carries_the_offline_threshold(server: LiveServer) -> None:
    with server.client(server.token("worker")) as worker:
        register(worker, "live-1")
    with sign_in(server) as browser:
        html = page(browser, "/workers")
        fragment = browser.get("/workers", params={"fragment": "rows"})
    assert 'data-live="workers jobs"' in html and 'data-fragment="/workers?fragment=rows"' in html
    assert re.search(r'<table id="workers" data-offline-after="30.0" data-now="[^"]+Z"', html)
    assert fragment.status_code == 200 and "<html" not in fragment.text
    assert rows(fragment.text)["live-1"] == "online"


def test_a_silent_worker_turns_offline_after_the_threshold(tmp_path: Path) -> None:
    with start(tmp_path / "data", executor_offline_after=3.0) as live:
        add_viewer(live)
        # Signed in first: a login hashes a password, seconds on a busy machine, which
        # must not count against the silent worker's three seconds.
        with live.client(live.token("worker")) as worker, sign_in(live) as browser:
            register(worker, "silent-1")
            register(worker, "chatty-1")
            assert rows(page(browser, "/workers"))["silent-1"] == "online"
            deadline = time.monotonic() + 4.0
            while time.monotonic() < deadline:  # chatty keeps beating, silent does not
                assert worker.post(f"{API}/executors/chatty-1/heartbeat", json={}).is_success
                time.sleep(0.5)
            html = page(browser, "/workers")
    assert 'data-offline-after="3.0"' in html
    assert rows(html) == {"chatty-1": "online", "silent-1": "offline"}
    assert '<span class="state offline">offline</span>' in row_html(html, "silent-1")


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)  # the sign-out form has one
    assert found is not None
    return found[1]


def cmd_worker(live: LiveServer, worker_id: str) -> str:
    """A CMD Executor worker registered with a join token: the token it gets back is
    bound to it."""
    body = {"workerId": worker_id}
    with live.client(live.token("worker")) as join:
        answer = join.post("/api/workers/register", json=body)
    assert answer.status_code == 201, answer.text
    token: str = answer.json()["token"]
    return token


def beats(live: LiveServer, token: str, worker_id: str) -> int:
    answer = httpx.post(
        f"{live.url}/api/workers/heartbeat",
        json={"workerId": worker_id},
        headers={"x-worker-token": token},
        timeout=10,
    )
    return answer.status_code


def test_admins_drain_and_remove_workers_others_cannot(server: LiveServer) -> None:
    bound = cmd_worker(server, "act-bound")
    with server.client(server.token("worker")) as worker:
        register(worker, "act-drain")
        assert beats(server, bound, "act-bound") == 200
        with sign_in(server) as viewer:
            html = page(viewer, "/workers")
            assert "/drain" not in html and "/remove" not in html  # no buttons for viewers
            for action in ("drain", "remove"):  # and a forged form is refused
                answer = viewer.post(f"/workers/act-drain/{action}", data={"csrf": csrf_of(html)})
                assert answer.status_code == 403, answer.text
        with sign_in(server, ADMIN) as admin:
            html = page(admin, "/workers")
            drain = row_html(html, "act-drain")
            assert 'action="/workers/act-drain/drain"' in drain
            assert 'action="/workers/act-drain/remove"' in drain and "data-confirm=" in drain
            assert admin.post("/workers/act-drain/drain").status_code == 403  # no CSRF token
            assert rows(page(admin, "/workers"))["act-drain"] == "online"

            answer = admin.post("/workers/act-drain/drain", data={"csrf": csrf_of(html)})
            assert answer.status_code == 303
            assert answer.headers["location"] == "/workers?done=drained"
            html = page(admin, answer.headers["location"])
            assert '<p id="notice" class="notice" role="status">Worker draining' in html
            assert rows(html)["act-drain"] == "draining"
            assert "/workers/act-drain/drain" not in html  # no second Drain on a draining row
            # The worker hears it on its next heartbeat, as from `corral workers drain`.
            beat = worker.post(f"{API}/executors/act-drain/heartbeat", json={})
            assert beat.json().get("drain") is True

            answer = admin.post("/workers/act-bound/remove", data={"csrf": csrf_of(html)})
            assert answer.headers["location"] == "/workers?done=removed"
            html = page(admin, answer.headers["location"])
            assert "Worker removed" in html and "act-bound" not in rows(html)
            assert beats(server, bound, "act-bound") == 401  # its bound token is revoked
            again = admin.post("/workers/act-bound/remove", data={"csrf": csrf_of(html)})
            assert again.headers["location"] == "/workers?done=gone"
            assert "no longer registered" in page(admin, again.headers["location"])


def test_an_offline_worker_can_be_removed_but_not_drained(tmp_path: Path) -> None:
    with start(tmp_path / "data", executor_offline_after=0.5) as live:
        with live.client(live.token("worker")) as worker:
            register(worker, "gone-1")
        time.sleep(1.0)
        with sign_in(live, ADMIN) as admin:
            html = page(admin, "/workers")
    assert rows(html) == {"gone-1": "offline"}
    row = row_html(html, "gone-1")
    assert "/workers/gone-1/remove" in row and "/workers/gone-1/drain" not in row


def test_worker_tokens_do_not_see_the_pages(server: LiveServer) -> None:
    client = httpx.Client(base_url=server.url, follow_redirects=False, timeout=10)
    client.cookies.set("auth_token", server.token("worker"))
    with client:
        for path in ("/workers", "/queues", "/projects"):
            assert client.get(path).status_code == 403


# --- queues --------------------------------------------------------------------------------
def test_queues_show_pending_by_priority_as_a_chart_and_a_table(tmp_path: Path) -> None:
    with start(tmp_path / "data") as live:
        add_viewer(live)
        with live.client() as admin:
            for priority in ("foreground", "foreground", "best_effort", "background"):
                submit(admin, priority, labels=["nowhere"])  # no worker takes these
            submit(admin, "background")
        with live.client(live.token("worker")) as worker:
            register(worker, "q-1")
            assert worker.post(f"{API}/jobs/claim", json={"executor_id": "q-1"}).is_success
        with sign_in(live) as browser:
            html = page(browser, "/queues")
            fragment = browser.get("/queues", params={"fragment": "charts"}).text
    counts = dict(
        re.findall(
            r'<tr data-priority="(\w+)"><th scope="row">\w+</th><td>\w+</td>'
            r'<td class="num">(\d+)</td>',
            html,
        )
    )
    assert counts == {"high": "2", "normal": "1", "low": "1"}
    assert re.search(r'<svg class="chart" id="pending-chart"[^>]*role="img"', html)
    assert '<title id="pending-title">Pending jobs by priority: high 2, normal 1, low 1' in html
    assert html.count('<rect class="bar"') == 3
    assert 'data-live="jobs"' in html and 'data-fragment="/queues?fragment=charts"' in html
    # One job was claimed: the wait table has estimates, not dashes.
    p50 = re.search(
        r'<tr data-percentile="p50"><th scope="row">p50</th><td class="num">([^<]+)<', html
    )
    assert p50 is not None and p50[1] != "—"
    assert 'id="wait-chart"' in html
    assert "<html" not in fragment and 'id="pending-chart"' in fragment


# --- projects ------------------------------------------------------------------------------
def make_project(admin: httpx.Client) -> tuple[str, str, str]:
    """A project with one ``ignore`` task type and one task leased by agent ``agent-7``."""
    body = {"name": "render-farm", "description": f"frames {XSS}", "instructions": "be nice"}
    project = admin.post("/api/projects", json=body)
    assert project.status_code == 201, project.text
    project_id = project.json()["data"]["id"]
    kind = {"name": "frame", "template": "render {{frame}} <fast>", "duplicateHandling": "ignore"}
    made = admin.post(f"/api/projects/{project_id}/task-types", json=kind)
    assert made.status_code == 201, made.text
    type_id = made.json()["data"]["id"]
    task = admin.post(
        f"/api/projects/{project_id}/tasks", json={"typeId": type_id, "variables": {"frame": 1}}
    )
    assert task.status_code == 201, task.text
    leased = admin.post("/api/agents/agent-7/next-task", json={"projectId": project_id})
    assert leased.status_code == 200 and leased.json()["success"], leased.text
    task_id: str = leased.json()["data"]["id"]
    return project_id, type_id, task_id


def test_projects_list_and_detail_show_task_types_and_leases(server: LiveServer) -> None:
    with server.client() as admin:
        project_id, type_id, task_id = make_project(admin)
    with sign_in(server) as browser:
        listing = page(browser, "/projects")
        detail = page(browser, f"/projects/{project_id}")
        live = browser.get(f"/projects/{project_id}", params={"fragment": "live"}).text
    row = listing[listing.index(f'<tr data-project-id="{project_id}" data-status="active"') :]
    row = row[: row.index("</tr>")]
    assert f'href="/projects/{project_id}"' in row and "render-farm" in row
    assert '<td class="num" data-count="running">1</td>' in row
    assert "frames &lt;script&gt;" in listing and XSS not in listing

    assert f'<tr data-type-id="{type_id}">' in detail
    assert "render {{frame}} &lt;fast&gt;" in detail and '<span class="dup ignore">' in detail
    assert '<code class="tag">frame</code>' in detail
    lease = detail[detail.index('<tr data-agent="agent-7"') :]
    assert f'data-task-id="{task_id}"' in lease and f'href="/jobs/{task_id}"' in lease
    assert re.search(r"in \d+(\.\d)? min</time>", lease)  # a 10-minute lease, just taken
    assert XSS not in detail and "frames &lt;script&gt;alert(1)&lt;/script&gt;" in detail
    assert f'data-fragment="/projects/{project_id}?fragment=live"' in detail
    assert "<html" not in live and 'data-agent="agent-7"' in live


def test_an_unknown_project_is_a_404_page(server: LiveServer) -> None:
    with sign_in(server) as browser:
        answer = browser.get("/projects/no-such-project")
    assert answer.status_code == 404 and answer.headers["content-type"].startswith("text/html")
