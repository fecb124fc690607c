"""The schedules page: next runs for everyone, pause/resume only for the owner or an admin."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import ADMIN, SUBMITTER, VIEWER, Dash, Shots, SignIn


@pytest.fixture
def nightly(dash: Dash) -> Iterator[str]:
    """A submitter's schedule on a timetable that does not fire during the test."""
    body = {"name": "nightly build", "cron": "30 2 * * *", "timezone": "Europe/Berlin"}
    with dash.api(dash.tokens[SUBMITTER[0]]) as http:
        answer = http.post("/schedules", json={**body, "job": {"command": "make nightly"}})
        assert answer.status_code == 201, answer.text
        schedule_id: str = answer.json()["id"]
    yield schedule_id
    with dash.api() as http:
        http.delete(f"/schedules/{schedule_id}")


def test_item15_schedules_page_lists_next_runs_and_owner_or_admin_pause_resume(
    dash: Dash, nightly: str, sign_in: SignIn, shots: Shots
) -> None:
    row = f'table#schedules tr[data-schedule-id="{nightly}"]'
    viewer = sign_in(VIEWER)
    viewer.goto("/schedules")
    expect(viewer.locator(row)).to_contain_text("nightly build")
    expect(viewer.locator(f"{row} td.next-runs time")).to_have_count(3)
    expect(viewer.locator(f"{row} form")).to_have_count(0)  # neither owner nor admin
    shots(viewer, "schedules-as-viewer")

    owner = sign_in(SUBMITTER)
    owner.goto("/schedules")
    owner.locator(f"{row} button", has_text="Pause").click()
    expect(owner.locator(row)).to_have_attribute("data-paused", "1")
    expect(owner.locator(f"{row} td.schedule-state")).to_have_text("paused")
    expect(owner.locator(f"{row} td.next-runs time")).to_have_count(0)
    shots(owner, "schedules-paused")

    admin = sign_in(ADMIN)
    admin.goto("/schedules")
    admin.locator(f"{row} button", has_text="Resume").click()
    expect(admin.locator(row)).to_have_attribute("data-paused", "0")
    expect(admin.locator(f"{row} td.next-runs time")).to_have_count(3)
    with dash.api() as http:
        assert http.get(f"/schedules/{nightly}").json()["paused"] is False
