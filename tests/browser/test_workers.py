"""A worker killed with SIGKILL goes offline on /workers while the page stays open, and
a worker that stays alive stays online on the same page meanwhile."""

from __future__ import annotations

import os
import signal
import uuid

from tests.browser.conftest import (
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
