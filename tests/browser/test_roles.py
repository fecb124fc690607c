"""A viewer sees jobs but no controls, and a POST forged from their session is refused."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import SUBMITTER, VIEWER, Dash, Shots, SignIn


@pytest.fixture
def pending_job(dash: Dash) -> Iterator[str]:
    """A submitter's job that stays pending (no worker has its label): cancellable."""
    label = f"nobody-{uuid.uuid4().hex[:8]}"
    job_id = dash.submit("echo never", as_user=SUBMITTER[0], labels=[label])
    yield job_id
    dash.cancel(job_id)


def test_a_viewer_sees_no_controls_and_a_forged_cancel_is_refused(
    dash: Dash, pending_job: str, sign_in: SignIn, shots: Shots
) -> None:
    # The owner's view of the same page, so the selectors below are known to be right.
    owner = sign_in(SUBMITTER)
    owner.goto(f"/jobs/{pending_job}")
    expect(owner.locator("#job-status")).to_have_attribute("data-status", "pending")
    expect(owner.locator("form#cancel-form")).to_have_count(1)
    expect(owner.locator('nav[aria-label="Main"] a[href="/submit"]')).to_have_count(1)
    shots(owner, "job-as-owner")

    page = sign_in(VIEWER)
    page.wait_for_selector(f'table#jobs tr[data-job-id="{pending_job}"]')
    expect(page.locator('a[href="/submit"]')).to_have_count(0)
    # The main nav is there, without Submit.
    expect(page.locator('nav[aria-label="Main"] a[href="/"]')).to_have_count(1)
    shots(page, "jobs")

    page.goto(f"/jobs/{pending_job}")
    expect(page.locator("#job-status")).to_have_attribute("data-status", "pending")
    expect(page.locator("form#cancel-form")).to_have_count(0)
    expect(page.locator('a[href="/submit"]')).to_have_count(0)
    shots(page, "job")
    # The viewer's real CSRF token (from the sign-out form): the policy must refuse anyway.
    own_csrf = page.locator('form[action="/logout"] input[name="csrf"]').input_value()
    assert own_csrf

    answer = page.goto("/submit")
    assert answer is not None and answer.status == 403
    expect(page.locator("form#submit-form")).to_have_count(0)
    shots(page, "submit")

    # Forged POSTs from the viewer's own session (page.request shares its cookies).
    for form in ({}, {"csrf": "forged"}, {"csrf": own_csrf}):
        refused = page.request.post(
            f"/jobs/{pending_job}/cancel",
            form=form,
            headers={"Origin": dash.url},
            max_redirects=0,
        )
        assert refused.status == 403, (form.keys(), refused.status, refused.text()[:300])
    job = dash.job(pending_job)
    assert job["status"] == "pending"
    assert not job.get("cancel_requested")
