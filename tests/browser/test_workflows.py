"""A workflow's page in Chromium (issue 15): the server-drawn graph colours each job by
its status and moves live as the jobs run, without a reload; a job's page lists what
it waits for and what waits for it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from playwright.sync_api import expect

from tests.browser.conftest import SUBMITTER, Dash, Shots, SignIn, assert_not_reloaded, mark_page

WORKFLOW: dict[str, Any] = {
    "name": "browser-release",
    "jobs": [
        {"key": "build", "command": 'while [ ! -e "$GATE" ]; do sleep 0.1; done'},
        {"key": "test", "command": "sleep 1", "depends_on": ["build"]},
        {"key": "lint", "command": "true", "depends_on": ["build"]},
        {"key": "package", "command": "echo packaged", "depends_on": ["test", "lint"]},
    ],
}
COMPLETED_LIGHT = "rgb(29, 122, 58)"  # --completed in the light scheme


def node(key: str, status: str) -> str:
    return f'svg#workflow-graph a.node[data-key="{key}"][data-status="{status}"]'


def test_item15_workflow_graph_moves_live_and_colours_by_status(
    dash: Dash, shared_worker: str, sign_in: SignIn, shots: Shots, tmp_path: Path
) -> None:
    """``build`` runs until the test opens its gate (the shared worker runs jobs on the
    host), so the page is seen with ``package`` still blocked."""
    gate = tmp_path / "gate"
    jobs = [dict(j) for j in WORKFLOW["jobs"]]
    jobs[0]["env_variables"] = {"GATE": str(gate)}
    with dash.api(dash.tokens[SUBMITTER[0]]) as http:
        answer = http.post("/workflows", json={**WORKFLOW, "jobs": jobs}).raise_for_status()
        created = answer.json()
    page = sign_in(SUBMITTER)
    page.goto(f"/workflows/{created['id']}")
    mark_page(page)
    page.wait_for_selector(node("build", "running"), state="attached")
    page.wait_for_selector(node("package", "blocked"), state="attached")
    shots(page, "workflow-running")
    gate.touch()
    page.wait_for_selector(node("package", "completed"), state="attached", timeout=30_000)
    expect(page.locator("#workflow-status")).to_have_attribute("data-status", "completed")
    assert_not_reloaded(page)
    stroke = page.locator(f"{node('build', 'completed')} rect").evaluate(
        "r => getComputedStyle(r).stroke"
    )
    assert stroke == COMPLETED_LIGHT
    shots(page, "workflow-completed")

    with page.expect_navigation():
        page.locator(f"{node('test', 'completed')}").click()
    waits = page.locator("ul#waits-for")
    expect(waits).to_contain_text(created["jobs"]["build"][:8])
    expect(page.locator("ul#waited-on-by")).to_contain_text(created["jobs"]["package"][:8])
    shots(page, "job-dependencies")
