"""The dashboard's side of placement (issue 12): the workers page shows isolation,
capacity and reservations; a job page says why a pending job waits."""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import pytest

from tests.integration.test_dashboard_fleet import (
    ADMIN,
    API,
    add_viewer,
    page,
    register,
    row_html,
    sign_in,
    start,
    submit,
)
from tests.live import LiveServer


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with start(tmp_path_factory.mktemp("placement-pages") / "data") as live:
        add_viewer(live)
        yield live


def test_item_placement_workers_page_shows_isolation_and_reservations(
    server: LiveServer,
) -> None:
    with server.client() as admin, server.client(server.token("worker")) as worker:
        capacity = {"cpus": 4, "memory_mb": 2048, "isolation": "sandbox", "network_control": True}
        register(worker, "boxed-1", **capacity)
        submit(admin, resources={"cpus": 1.5, "memory_mb": 512})
        claimed = worker.post(f"{API}/jobs/claim", json={"executor_id": "boxed-1"})
        assert claimed.status_code == 200, claimed.text
    with sign_in(server) as browser:
        row = row_html(page(browser, "/workers"), "boxed-1")
    assert "1.5 / 4.0 CPUs, 512 / 2048 MiB reserved" in row
    assert "sandbox" in row and "network control" in row


def test_item_placement_job_page_says_why_it_waits(server: LiveServer) -> None:
    with server.client() as admin, server.client(server.token("worker")) as worker:
        register(worker, "boxed-2", cpus=2, isolation="sandbox", network_control=True)
        job_id = submit(admin, resources={"cpus": 512, "pids": 10}, network=False)
    with sign_in(server) as browser:
        text = page(browser, f"/jobs/{job_id}")
        fragment = page(browser, f"/jobs/{job_id}?fragment=status")
    for html in (text, fragment):
        assert "data-pending-reason" in html
        assert "needs 512 CPUs; the largest online worker has" in html
        assert "512 CPUs" in html and "10 processes" in html and "no network" in html


def post_form(browser: httpx.Client, **fields: str) -> httpx.Response:
    token = re.search(r'name="csrf" value="([^"]+)"', page(browser, "/submit"))
    assert token is not None
    data = {"csrf": token[1], "command": "true", "timeout": "60", "priority": "normal", **fields}
    return browser.post("/submit", data=data, files={"archive": ("", b"", "application/zip")})


def test_item_placement_submit_form_takes_resources_and_no_network(server: LiveServer) -> None:
    with sign_in(server, ADMIN) as browser:
        form = page(browser, "/submit")
        for name in ("cpus", "memory_mb", "no_network"):
            assert f'name="{name}"' in form
        answer = post_form(browser, cpus="1.5", memory_mb="256", no_network="on")
        assert answer.status_code == 303, answer.text
        refused = post_form(browser, cpus="lots")
        assert refused.status_code == 400 and "cpus must be a number" in refused.text
        refused = post_form(browser, memory_mb="0")
        assert refused.status_code == 400 and "memory_mb must be between" in refused.text
    job_id = answer.headers["location"].removeprefix("/jobs/")
    with server.client() as admin:
        job = admin.get(f"{API}/jobs/{job_id}").json()
    assert job["resources"] == {"cpus": 1.5, "memory_mb": 256, "pids": None}
    assert job["network"] is False
