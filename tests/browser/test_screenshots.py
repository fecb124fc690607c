"""Every page at 1280x800 and the jobs list at phone width, saved as CI artifacts; the
README's docs/dashboard.png is the jobs list with a few jobs in it."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import httpx
import pytest
from playwright.sync_api import Browser, expect

from tests.browser.conftest import (
    ADMIN,
    DESKTOP,
    PHONE,
    REPO,
    SUBMITTER,
    Dash,
    Shots,
    SignIn,
)


@pytest.fixture
def some_jobs(dash: Dash, shared_worker: str) -> Iterator[dict[str, str]]:
    """One job in each state the list shows (by status), and a TaskDriver project with a
    task type and a queued task (its id under "project")."""
    user = SUBMITTER[0]
    jobs = {
        "completed": dash.submit("echo hello from corral", as_user=user),
        "failed": dash.submit("echo oops >&2; exit 3", as_user=user),
        "running": dash.submit("sleep 30", as_user=user, priority="high"),
        "pending": dash.submit(
            "make release", as_user=user, labels=[f"gpu-{uuid.uuid4().hex[:6]}"]
        ),
    }
    dash.wait_status(jobs["completed"], "completed")
    dash.wait_status(jobs["failed"], "failed")
    dash.wait_status(jobs["running"], "running")
    headers = {"Authorization": f"Bearer {dash.admin_token}"}
    with httpx.Client(base_url=dash.url + "/api", headers=headers, timeout=30) as http:
        body = {"name": f"nightly-{uuid.uuid4().hex[:6]}", "description": "Nightly builds"}
        project = http.post("/projects", json=body)
        assert project.status_code == 201, project.text
        pid = project.json()["data"]["id"]
        kind_body = {"name": "compile-docs", "template": "Build {{target}}"}
        kind = http.post(f"/projects/{pid}/task-types", json=kind_body)
        assert kind.status_code == 201, kind.text
        task = http.post(
            f"/projects/{pid}/tasks",
            json={"typeId": kind.json()["data"]["id"], "variables": {"target": "docs"}},
        )
        assert task.status_code == 201, task.text
    yield {**jobs, "project": pid}
    for job_id in jobs.values():
        dash.cancel(job_id)


def test_screenshots_of_every_page(
    dash: Dash,
    some_jobs: dict[str, str],
    browser: Browser,
    sign_in: SignIn,
    shots: Shots,
) -> None:
    login = browser.new_context(base_url=dash.url, viewport=DESKTOP)
    try:
        page = login.new_page()
        answer = page.goto("/login")
        assert answer is not None and answer.status == 200
        expect(page.locator("#email")).to_be_visible()
        shots(page, "login")
    finally:
        login.close()

    page = sign_in(ADMIN)
    project = some_jobs.pop("project")
    for status, job_id in some_jobs.items():
        page.wait_for_selector(f'table#jobs tr[data-job-id="{job_id}"][data-status="{status}"]')
    shots(page, "jobs")
    # Not CORRAL_*: the suite scrubs those from every test (tests/conftest.py).
    if os.environ.get("UPDATE_README_SCREENSHOT"):  # else a test run dirties the tree
        page.screenshot(path=str(REPO / "docs" / "dashboard.png"))  # the README's picture

    pages = {
        "job": f"/jobs/{some_jobs['failed']}",
        "job-running": f"/jobs/{some_jobs['running']}",
        "submit": "/submit",
        "workers": "/workers",
        "queues": "/queues",
        "projects": "/projects",
        "project": f"/projects/{project}",
    }
    for name, path in pages.items():
        answer = page.goto(path)
        assert answer is not None and answer.status == 200, (path, answer and answer.status)
        shots(page, name)
    expect(page.locator("main")).to_contain_text("compile-docs")  # the project's task type
    page.goto("/projects")
    expect(page.locator(f'main a[href="/projects/{project}"]')).to_have_count(1)
    page.goto(pages["job"])
    expect(page.locator("#job-status")).to_have_attribute("data-status", "failed")
    expect(page.locator("pre#stderr")).to_contain_text("oops")
    page.goto("/workers")
    expect(page.locator('table#workers tr[data-worker-id="shared"]')).to_have_count(1)

    phone = sign_in(ADMIN, viewport=PHONE)
    phone.wait_for_selector(f'table#jobs tr[data-job-id="{some_jobs["running"]}"]')
    shots(phone, "jobs-phone")
    width = phone.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"the jobs page scrolls sideways on a phone: {width} px"

    dark = sign_in(ADMIN, color_scheme="dark")
    dark.wait_for_selector("table#jobs")
    shots(dark, "jobs-dark")
    background = dark.evaluate("getComputedStyle(document.body).backgroundColor")
    light_background = page.evaluate("getComputedStyle(document.body).backgroundColor")
    assert background != light_background, "the dark system setting changes nothing"
