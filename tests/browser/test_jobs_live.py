"""Jobs in the browser: submit from the form, watch the row and the output move live,
cancel from the job's page, and output that looks like HTML stays text."""

from __future__ import annotations

import re
import signal
import uuid
from pathlib import Path
from urllib.parse import urlsplit

from playwright.sync_api import Dialog, Page, expect

from tests.browser.conftest import (
    SUBMITTER,
    Dash,
    Shots,
    SignIn,
    assert_not_reloaded,
    mark_page,
    poll,
)

XSS = "<script>alert(1)</script>"


def job_id_of(page: Page) -> str:
    match = re.fullmatch(r"/jobs/([^/]+)", urlsplit(page.url).path)
    assert match, f"the submit form did not land on a job page: {page.url}"
    return match.group(1)


def row(job_id: str, status: str) -> str:
    return f'table#jobs tr[data-job-id="{job_id}"][data-status="{status}"]'


def test_submit_from_the_form_and_watch_the_row_go_pending_running_completed(
    dash: Dash, sign_in: SignIn, shots: Shots
) -> None:
    # The job asks for a label no worker has yet, so it is still pending when the jobs
    # list opens; a worker with that label then starts and runs it.
    label = f"late-{uuid.uuid4().hex[:8]}"
    page = sign_in(SUBMITTER)
    page.goto("/submit")
    shots(page, "submit")
    form = page.locator("form#submit-form")
    form.locator('[name="command"]').fill("echo hi; sleep 2; echo done")
    form.locator('[name="labels"]').fill(label)
    with page.expect_navigation():
        form.locator('[type="submit"]').click()
    job_id = job_id_of(page)
    expect(page.locator("#job-status")).to_have_attribute("data-status", "pending")
    shots(page, "job-pending")
    job = dash.job(job_id)
    assert job["command"] == "echo hi; sleep 2; echo done"
    assert job["labels"] == [label]

    page.goto("/")
    page.wait_for_selector(row(job_id, "pending"))
    mark_page(page)
    shots(page, "jobs-pending")

    worker = dash.worker(label, "--labels", label)
    try:
        page.wait_for_selector(row(job_id, "running"), timeout=20_000)
        assert_not_reloaded(page)
        shots(page, "jobs-running")
        page.wait_for_selector(row(job_id, "completed"), timeout=20_000)
        assert_not_reloaded(page)
        shots(page, "jobs-completed")
    finally:
        worker.send_signal(signal.SIGTERM)
    finished = dash.job(job_id)
    assert finished["status"] == "completed"
    assert finished["exit_code"] == 0


def test_job_page_shows_output_live_hi_before_done(
    dash: Dash, shared_worker: str, sign_in: SignIn, shots: Shots
) -> None:
    page = sign_in(SUBMITTER)
    job_id = dash.submit("echo hi; sleep 3; echo done", as_user=SUBMITTER[0])
    dash.wait_status(job_id, "running")
    page.goto(f"/jobs/{job_id}")
    mark_page(page)
    stdout = page.locator("pre#stdout")
    expect(stdout).to_contain_text("hi", timeout=5_000)
    early = stdout.inner_text()
    assert "hi" in early.split(), early
    assert "done" not in early, f"'done' was already there when 'hi' showed: {early!r}"
    expect(page.locator("#job-status")).to_have_attribute("data-status", "running")
    shots(page, "job-running")

    expect(stdout).to_contain_text("done", timeout=15_000)
    late = stdout.inner_text()
    assert late.split()[:2] == ["hi", "done"], late
    expect(page.locator("#job-status")).to_have_attribute(
        "data-status", "completed", timeout=15_000
    )
    assert_not_reloaded(page)
    shots(page, "job-completed")


def test_cancel_a_running_job_from_its_page_kills_its_process(
    dash: Dash, shared_worker: str, sign_in: SignIn, shots: Shots, tmp_path: Path
) -> None:
    pid_file = tmp_path / "pid"
    job_id = dash.submit(f"echo $$ > {pid_file}; sleep 60", as_user=SUBMITTER[0])
    dash.wait_status(job_id, "running")
    pid = int(poll(lambda: pid_file.exists() and pid_file.read_text().strip(), 10, "the pid"))
    assert Path(f"/proc/{pid}").exists()

    page = sign_in(SUBMITTER)
    page.goto(f"/jobs/{job_id}")
    expect(page.locator("#job-status")).to_have_attribute("data-status", "running")
    shots(page, "job-running")
    dialogs: list[str] = []

    def accept(dialog: Dialog) -> None:
        dialogs.append(dialog.type)
        dialog.accept()

    page.once("dialog", accept)
    page.locator("form#cancel-form").locator('[type="submit"]').click()
    expect(page.locator("#job-status")).to_have_attribute(
        "data-status", "cancelled", timeout=15_000
    )
    assert dialogs == ["confirm"], "cancelling did not ask for confirmation first"
    shots(page, "job-cancelled")
    assert dash.job(job_id)["status"] == "cancelled"
    poll(lambda: not Path(f"/proc/{pid}").exists(), 10, f"process {pid} to be gone")
    expect(page.locator("form#cancel-form")).to_have_count(0)


def test_output_that_looks_like_html_is_shown_as_text(
    dash: Dash, shared_worker: str, sign_in: SignIn, shots: Shots
) -> None:
    command = f"printf '{XSS}'"
    job_id = dash.submit(command, as_user=SUBMITTER[0])
    dash.wait_status(job_id, "completed")
    page = sign_in(SUBMITTER)
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))

    page.goto(f"/jobs/{job_id}")
    stdout = page.locator("pre#stdout")
    expect(stdout).to_contain_text("alert(1)")
    assert stdout.inner_text() == XSS
    expect(stdout.locator("script")).to_have_count(0)
    assert command in page.locator("main").inner_text(), "the command is not shown as text"
    shots(page, "job")

    page.goto("/")
    page.wait_for_selector(row(job_id, "completed"))
    expect(page.locator("table#jobs script")).to_have_count(0)
    shots(page, "jobs")
    page.wait_for_timeout(500)  # give any script that slipped through time to run
    assert dialogs == []
