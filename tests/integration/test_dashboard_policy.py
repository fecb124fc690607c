"""Every dashboard route against every kind of caller, with the browser's credentials.

Pages read the ``auth_token`` cookie only. Anonymous callers are sent to the
sign-in form (303); worker and agent tokens are not people and get 403 even when
smuggled into the cookie; viewers see but cannot act; submitters act on their own
jobs; admins on everything. State-changing forms also need the session's CSRF
token (a forged POST without it is 403). ``test_policy_walk.py`` walks the APIs;
together the two cover every route of the app, which the coverage test checks.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.routing import Mount

from corral.api.app import create_app
from corral.api.dashboard.routing import PageRoute
from corral.settings import ServerSettings
from tests.integration.test_policy_walk import POLICY, _keys_of, app_routes
from tests.live import LiveServer, run_server

ADMIN = ("root@example.com", "admin-password")
PASSWORD = "pw-123456-long"

# (method, path) -> what each caller gets: "page" (200 HTML), "text" (200, a text/plain
# download), "redirect" (303), or a status.
# Columns: anonymous, viewer, submitter, admin, worker (token in the cookie).
DASHBOARD: dict[tuple[str, str], tuple[Any, Any, Any, Any, Any]] = {
    ("GET", "/login"): ("page", "page", "page", "page", "page"),
    ("POST", "/login"): (403, 403, 403, 403, 403),  # without the form's own token
    ("POST", "/logout"): ("redirect", 403, 403, 403, 403),  # without the CSRF token
    ("GET", "/"): ("redirect", "page", "page", "page", 403),
    ("GET", "/ui/events"): ("redirect", "stream", "stream", "stream", 403),
    # --- jobs list ---
    # --- job detail and submit ---
    ("GET", "/jobs/{job_id}"): ("redirect", "page", "page", "page", 403),
    ("GET", "/jobs/{job_id}/output/{stream}"): ("redirect", "text", "text", "text", 403),
    ("POST", "/jobs/{job_id}/cancel"): ("redirect", 403, 403, 403, 403),  # without the CSRF token
    ("POST", "/jobs/{job_id}/resubmit"): ("redirect", 403, 403, 403, 403),  # without the CSRF token
    ("GET", "/submit"): ("redirect", 403, "page", "page", 403),
    ("POST", "/submit"): ("redirect", 403, 403, 403, 403),  # without the CSRF token
    # --- workers, queues, projects ---
    ("GET", "/workers"): ("redirect", "page", "page", "page", 403),
    ("POST", "/workers/{executor_id}/drain"): ("redirect", 403, 403, 403, 403),  # no CSRF token
    ("POST", "/workers/{executor_id}/remove"): ("redirect", 403, 403, 403, 403),  # likewise
    ("GET", "/queues"): ("redirect", "page", "page", "page", 403),
    ("GET", "/projects"): ("redirect", "page", "page", "page", 403),
    ("GET", "/projects/{project_id}"): ("redirect", "page", "page", "page", 403),
    # --- accounts: users and every token for admins, one's own tokens for everyone ---
    ("GET", "/admin/users"): ("redirect", 403, 403, "page", 403),
    ("POST", "/admin/users"): ("redirect", 403, 403, 403, 403),  # without the CSRF token
    ("POST", "/admin/users/{user_id}"): ("redirect", 403, 403, 403, 403),  # without the CSRF token
    ("GET", "/admin/tokens"): ("redirect", 403, 403, "page", 403),
    ("POST", "/admin/tokens"): ("redirect", 403, 403, 403, 403),  # without the CSRF token
    ("GET", "/tokens"): ("redirect", "page", "page", "page", 403),
    ("POST", "/tokens"): ("redirect", 403, 403, 403, 403),  # without the CSRF token
    ("POST", "/tokens/{token_id}/revoke"): ("redirect", 403, 403, 403, 403),  # without CSRF
    # --- schedules ---
    ("GET", "/schedules"): ("redirect", "page", "page", "page", 403),
    ("POST", "/schedules/{schedule_id}/pause"): ("redirect", 403, 403, 403, 403),  # no CSRF token
    ("POST", "/schedules/{schedule_id}/resume"): ("redirect", 403, 403, 403, 403),  # likewise
    # --- workflows ---
    ("GET", "/workflows"): ("redirect", "page", "page", "page", 403),
    ("GET", "/workflows/{workflow_id}"): ("redirect", "page", "page", "page", 403),
    ("POST", "/workflows/{workflow_id}/cancel"): ("redirect", 403, 403, 403, 403),  # no CSRF
}


# Valid forms, so that the policy (not validation) decides; none carries a CSRF token.
BODIES: dict[tuple[str, str], dict[str, str]] = {
    ("POST", "/login"): {"email": ADMIN[0], "password": ADMIN[1]},
    ("POST", "/logout"): {},
}


# Values for the path parameters of the rows above, filled by the ``server`` fixture with
# real objects so that the policy (not a 404) decides.
PATH_PARAMS: dict[str, str] = {}


def dashboard_routes() -> set[tuple[str, str]]:
    app = create_app(ServerSettings(data_dir=Path("/nonexistent")))
    keys: set[tuple[str, str]] = set()
    for route in app.routes:
        if isinstance(route, Mount):
            continue
        contexts = getattr(route, "effective_route_contexts", None)
        if contexts and all(isinstance(c.original_route, PageRoute) for c in contexts()):
            keys |= _keys_of(route)
    return keys


def test_every_dashboard_route_has_a_row_and_the_walks_cover_the_app() -> None:
    pages = dashboard_routes()
    assert pages == set(DASHBOARD), "dashboard routes without a row, or rows without a route"
    app = create_app(ServerSettings(data_dir=Path("/nonexistent")))
    assert app_routes(app) == set(POLICY)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    email, password = ADMIN
    data = tmp_path_factory.mktemp("dashboard-walk") / "data"
    # Every caller signs in afresh for every case: the login budget is not what is tested.
    with run_server(
        data, admin_email=email, admin_password=password, login_rate_limit="off"
    ) as live:
        with live.client() as http:
            for role in ("viewer", "submitter"):
                body = {"email": f"{role}@example.com", "password": PASSWORD, "role": role}
                assert http.post("/api/v1/admin/users", json=body).status_code == 201
            job = http.post("/api/v1/jobs", json={"command": "true", "labels": ["policy-walk"]})
            assert job.status_code == 201, job.text
            PATH_PARAMS["job_id"] = job.json()["id"]
            PATH_PARAMS["stream"] = "stdout"
            project = http.post("/api/projects", json={"name": "policy-walk"})
            assert project.status_code == 201, project.text
            PATH_PARAMS["project_id"] = project.json()["data"]["id"]
            users = http.get("/api/v1/admin/users").json()
            PATH_PARAMS["user_id"] = next(u["id"] for u in users if u["role"] == "viewer")
            token = http.post("/api/v1/admin/tokens", json={"role": "viewer", "name": "walk"})
            PATH_PARAMS["token_id"] = token.json()["id"]
            body = {"name": "walk", "cron": "0 0 1 1 *", "job": {"command": "true"}}
            schedule = http.post("/api/v1/schedules", json=body)
            assert schedule.status_code == 201, schedule.text
            PATH_PARAMS["schedule_id"] = schedule.json()["id"]
            body = {"name": "walk", "jobs": [{"key": "only", "command": "true"}]}
            workflow = http.post("/api/v1/workflows", json=body)
            assert workflow.status_code == 201, workflow.text
            PATH_PARAMS["workflow_id"] = workflow.json()["id"]
        with live.client(live.token("worker")) as worker:
            executor = worker.post("/api/v1/executors", json={"executor_id": "policy-walk"})
            assert executor.status_code == 201, executor.text
            PATH_PARAMS["executor_id"] = "policy-walk"
        yield live


def browser(live: LiveServer, who: str) -> httpx.Client:
    client = httpx.Client(base_url=live.url, follow_redirects=False, timeout=10)
    if who == "anonymous":
        return client
    if who == "worker":
        client.cookies.set("auth_token", live.token("worker"))
        return client
    email, password = ADMIN if who == "admin" else (f"{who}@example.com", PASSWORD)
    form = client.get("/login").text
    token = re.search(r'name="csrf" value="([^"]+)"', form)
    assert token is not None
    answer = client.post(
        "/login", data={"email": email, "password": password, "csrf": token[1], "next": "/"}
    )
    assert answer.status_code == 303, answer.text
    return client


CALLERS = ("anonymous", "viewer", "submitter", "admin", "worker")


@pytest.mark.parametrize("key", sorted(DASHBOARD), ids=lambda k: f"{k[0]} {k[1]}")
@pytest.mark.parametrize("who", CALLERS)
def test_dashboard_route_answers_each_caller_by_the_policy(
    server: LiveServer, key: tuple[str, str], who: str
) -> None:
    expected = DASHBOARD[key][CALLERS.index(who)]
    method, path = key[0], key[1].format_map(PATH_PARAMS)
    client = browser(server, who)
    try:
        if expected == "stream":
            with client.stream(method, path) as answer:
                assert answer.status_code == 200
                assert answer.headers["content-type"].startswith("text/event-stream")
            return
        answer = client.request(method, path, data=BODIES.get(key))
    finally:
        client.close()
    if expected == "page":
        assert answer.status_code == 200, answer.text
        assert answer.headers["content-type"].startswith("text/html")
        assert "unsafe-inline" not in answer.headers["content-security-policy"]
    elif expected == "text":
        assert answer.status_code == 200, answer.text
        assert answer.headers["content-type"].startswith("text/plain")
    elif expected == "redirect":
        assert answer.status_code == 303
        assert answer.headers["location"].startswith("/login")
    else:
        assert answer.status_code == expected, answer.text
