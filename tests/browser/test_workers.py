"""A worker killed with SIGKILL goes offline on /workers while the page stays open, and
a worker that stays alive stays online on the same page meanwhile. An admin drains a
real worker from the page (it finishes its job and its process exits) and removes a
worker (its bound token stops working); a viewer sees neither button and is refused."""

from __future__ import annotations

import os
import signal
import subprocess
import uuid

import httpx
from playwright.sync_api import Dialog, Page, expect

from tests.browser.conftest import (
    ADMIN,
    OFFLINE_AFTER,
    VIEWER,
    Dash,
    Shots,
    SignIn,
    assert_not_reloaded,
    mark_page,
    poll,
)

# Every 100 ms, note each state the live worker's row shows (the rows are re-rendered
# whole by live updates, so a MutationObserver on one row would miss them).
WATCH = """name => {
  window.__states = [];
  setInterval(() => {
    const row = document.querySelector(`table#workers tr[data-worker-id="${name}"]`);
    const state = row ? row.getAttribute("data-state") : "missing";
    if (window.__states[window.__states.length - 1] !== state) window.__states.push(state);
  }, 100);
}"""


def test_a_killed_worker_goes_offline_live(
    dash: Dash, shared_worker: str, sign_in: SignIn, shots: Shots
) -> None:
    name = f"doomed-{uuid.uuid4().hex[:8]}"
    worker = dash.worker(name, "--labels", "doomed")
    poll(
        lambda: worker.poll() is None and dash.worker_state(name) == "online",
        20,
        f"worker {name} to register\n{dash.log(f'worker-{name}.log')}",
    )
    page = sign_in(VIEWER)
    page.goto("/workers")
    row = f'table#workers tr[data-worker-id="{name}"]'
    page.wait_for_selector(f'{row}[data-state="online"]')
    page.wait_for_selector(f'table#workers tr[data-worker-id="{shared_worker}"]')
    mark_page(page)
    page.evaluate(WATCH, shared_worker)
    shots(page, "workers-online")

    os.kill(worker.pid, signal.SIGKILL)
    worker.wait(5)
    page.wait_for_selector(f'{row}[data-state="offline"]', timeout=(OFFLINE_AFTER + 15) * 1000)
    assert_not_reloaded(page)
    shots(page, "workers-offline")
    assert dash.worker_state(name) == "offline"
    # The live worker never showed as anything but online while this went on.
    assert dash.worker_state(shared_worker) == "online"
    assert page.evaluate("window.__states") == ["online"], "a live worker showed as offline"


def started(dash: Dash, name: str, *args: str) -> subprocess.Popen[bytes]:
    worker = dash.worker(name, *args)
    poll(
        lambda: worker.poll() is None and dash.worker_state(name) == "online",
        20,
        f"worker {name} to register\n{dash.log(f'worker-{name}.log')}",
    )
    return worker


def test_an_admin_drains_a_worker_which_finishes_its_job_and_exits(
    dash: Dash, sign_in: SignIn, shots: Shots
) -> None:
    name = f"drained-{uuid.uuid4().hex[:8]}"
    worker = started(dash, name, "--labels", name, "--drain-timeout", "60")
    job_id = dash.submit("sleep 5; echo finished", labels=[name])
    dash.wait_status(job_id, "running", seconds=20)
    page = sign_in(ADMIN, next_path="/workers")
    row = page.locator(f'table#workers tr[data-worker-id="{name}"]')
    expect(row).to_have_attribute("data-state", "online")

    row.get_by_role("button", name=f"Drain {name}").click()
    expect(page.locator("#notice")).to_contain_text("Worker draining")
    expect(row).to_have_attribute("data-state", "draining")
    expect(row.get_by_role("button", name=f"Drain {name}")).to_have_count(0)
    shots(page, "workers-draining")
    mark_page(page)
    # The worker hears it on its next heartbeat: it lets its job end, then exits.
    assert worker.wait(30) == 0, dash.log(f"worker-{name}.log")
    finished = dash.wait_status(job_id, "completed")
    assert finished["stdout"] == "finished\n" and finished["attempt"] == 1
    # It deregistered as it left, and the open page drops its row by itself.
    expect(row).to_have_count(0, timeout=15_000)
    assert_not_reloaded(page)
    assert dash.worker_state(name) is None


def bound_worker(dash: Dash, name: str) -> str:
    """A CMD Executor worker, registered with the join token: the token it gets back is
    bound to it (and revoked when it is removed)."""
    answer = httpx.post(
        dash.url + "/api/workers/register",
        json={"workerId": name},
        headers={"Authorization": f"Bearer {dash.worker_token}"},
        timeout=30,
    )
    assert answer.status_code == 201, answer.text
    token: str = answer.json()["token"]
    return token


def heartbeat(dash: Dash, name: str, token: str) -> int:
    answer = httpx.post(
        dash.url + "/api/workers/heartbeat",
        json={"workerId": name},
        headers={"x-worker-token": token},
        timeout=30,
    )
    return answer.status_code


def csrf_of(page: Page) -> str:
    token = page.locator('input[name="csrf"]').first.get_attribute("value")
    assert token
    return token


def test_an_admin_removes_a_worker_whose_token_then_stops_working(
    dash: Dash, sign_in: SignIn, shots: Shots
) -> None:
    name = f"removed-{uuid.uuid4().hex[:8]}"
    token = bound_worker(dash, name)
    assert heartbeat(dash, name, token) == 200

    viewer = sign_in(VIEWER, next_path="/workers")
    row = viewer.locator(f'table#workers tr[data-worker-id="{name}"]')
    expect(row).to_have_count(1)
    expect(viewer.locator("table#workers button")).to_have_count(0)
    forged = viewer.request.post(f"/workers/{name}/remove", form={"csrf": csrf_of(viewer)})
    assert forged.status == 403

    page = sign_in(ADMIN, next_path="/workers")
    asked: list[str] = []

    def accept(dialog: Dialog) -> None:
        asked.append(dialog.message)
        dialog.accept()

    page.on("dialog", accept)
    row = page.locator(f'table#workers tr[data-worker-id="{name}"]')
    row.get_by_role("button", name=f"Remove {name}").click()
    expect(page.locator("#notice")).to_have_text(
        "Worker removed, and the tokens bound to it revoked."
    )
    expect(row).to_have_count(0)
    assert asked and asked[0].startswith(f"Remove the worker {name}?")
    shots(page, "workers-removed")
    assert dash.worker_state(name) is None
    assert heartbeat(dash, name, token) == 401
