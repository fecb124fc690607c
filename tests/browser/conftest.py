"""Browser tests of the dashboard: Debian's Chromium (Playwright, sync API) against a real
``corral server`` and real ``corral worker`` subprocesses on 127.0.0.1.

- ``dash``: one server per package with a fresh data dir, a first admin from
  ``CORRAL_ADMIN_EMAIL``/``CORRAL_ADMIN_PASSWORD``, a submitter and a viewer made through
  ``POST /api/v1/admin/users``, and a worker join token.
- ``shared_worker``: one worker for the tests that do not care which worker runs a job;
  tests that kill or hold a worker start their own with ``dash.worker(...)``.
- ``browser``: one headless Chromium per module; ``sign_in`` opens a fresh context.
- ``shots``: full-page screenshots of every page a test visits, saved to
  ``artifacts/screenshots/<test>-<page>.png`` (CI keeps them as artifacts).

Every test here is marked ``browser``; they are skipped (with the reason) only when
``/usr/bin/chromium`` is missing, which ``scripts/setup.sh`` installs.
"""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright

from tests.processes import (
    HOST_VISIBLE,
    STARTUP,
    clean_env,
    poll,
    server_process,
    start_worker,
    stop_all,
    worker_token,
)

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",  # CI runs as root
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
SCREENSHOTS = REPO / "artifacts" / "screenshots"
# Seconds of heartbeat silence before a worker shows as offline. Every claim is a sign
# of life and wakes the live pages, and the workers here claim every second while idle.
OFFLINE_AFTER = 4
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}

ADMIN = ("admin@corral.test", "admin-password-1")
SUBMITTER = ("submitter@corral.test", "submitter-password-1")
VIEWER = ("viewer@corral.test", "viewer-password-1")


# ---- the marker and the one reason to skip -------------------------------------------------


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if HERE not in item.path.parents:
            continue
        item.add_marker(pytest.mark.browser)
        if not os.access(CHROMIUM, os.X_OK):
            item.add_marker(
                pytest.mark.skip(
                    reason=f"{CHROMIUM} is missing: `make setup` (scripts/setup.sh) installs "
                    "Debian's chromium for the dashboard's browser tests"
                )
            )


# ---- small helpers -------------------------------------------------------------------------


def mark_page(page: Page) -> None:
    """Set a marker on ``window``: it survives live updates and is gone after any reload
    or navigation, so ``assert_not_reloaded`` tells the two apart."""
    page.evaluate("window.__corralNoReload = 'still-here'")


def assert_not_reloaded(page: Page) -> None:
    marker = page.evaluate("window.__corralNoReload || null")
    assert marker == "still-here", f"the page reloaded or navigated (now at {page.url})"


# ---- the server, its users and its workers -------------------------------------------------


@dataclass
class Dash:
    url: str
    data_dir: Path
    root: Path
    admin_token: str
    worker_token: str
    tokens: dict[str, str] = field(default_factory=dict)  # email -> JWT
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def api(self, token: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token or self.admin_token}"}
        return httpx.Client(base_url=self.url + "/api/v1", headers=headers, timeout=30)

    def submit(self, command: str, as_user: str | None = None, **body: Any) -> str:
        """Submit through the API, as ``as_user`` (an email: the job is theirs) or the admin."""
        token = self.tokens[as_user] if as_user else None
        with self.api(token) as http:
            answer = http.post("/jobs", json={"command": command, **body})
            assert answer.status_code == 201, answer.text
            job_id: str = answer.json()["id"]
            return job_id

    def job(self, job_id: str) -> dict[str, Any]:
        with self.api() as http:
            answer: dict[str, Any] = http.get(f"/jobs/{job_id}").raise_for_status().json()
            return answer

    def wait_status(self, job_id: str, *statuses: str, seconds: float = 15) -> dict[str, Any]:
        job: dict[str, Any] = poll(
            lambda: (job := self.job(job_id))["status"] in statuses and job,
            seconds,
            f"job {job_id} to be one of {statuses}",
        )
        return job

    def cancel(self, job_id: str) -> None:
        with self.api() as http:
            http.post(f"/jobs/{job_id}/cancel")

    def worker_state(self, name: str) -> str | None:
        with self.api() as http:
            for worker in http.get("/executors").raise_for_status().json():
                if worker["executor_id"] == name:
                    state: str = worker["state"]
                    return state
        return None

    def worker(self, name: str, *args: str) -> subprocess.Popen[bytes]:
        """A real ``corral worker`` named ``name`` (its worker id on the dashboard)."""
        proc = start_worker(
            self.url,
            self.worker_token,
            self.root,
            name,
            f"worker-{name}.log",
            "--claim-wait",
            "1",  # a claim (which also says "alive") every second while idle
            "--grace",
            "1",
            "--drain-timeout",
            "2",
            *args,
        )
        self.workers.append(proc)
        return proc

    def log(self, name: str) -> str:
        path = self.root / name
        return path.read_text(errors="replace")[-4000:] if path.exists() else ""


def _create_user(http: httpx.Client, email: str, password: str, role: str) -> None:
    answer = http.post("/admin/users", json={"email": email, "password": password, "role": role})
    assert answer.status_code == 201, answer.text


def _jwt(url: str, email: str, password: str) -> str:
    answer = httpx.post(
        url + "/api/auth/login", json={"email": email, "password": password}, timeout=30
    )
    assert answer.status_code == 200, answer.text
    token: str = answer.json()["token"]
    return token


@pytest.fixture(scope="package")
def dash(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dash]:
    root = tmp_path_factory.mktemp("dashboard")
    data = root / "data"
    env = clean_env(
        CORRAL_ADMIN_EMAIL=ADMIN[0],
        CORRAL_ADMIN_PASSWORD=ADMIN[1],
        CORRAL_EXECUTOR_OFFLINE_AFTER=str(OFFLINE_AFTER),
        CORRAL_LOGIN_RATE_LIMIT="off",
        CORRAL_LEASE_GRACE="0",
        CORRAL_REAPER_INTERVAL="0.5",
    )
    with server_process(data, root / "server.log", env=env) as (url, _):
        admin_token = (data / "admin-token").read_text().strip()
        dash = Dash(url, data, root, admin_token, worker_token(data))
        try:
            with dash.api() as http:
                _create_user(http, *SUBMITTER, "submitter")
                _create_user(http, *VIEWER, "viewer")
            for email, password in (SUBMITTER, VIEWER):
                dash.tokens[email] = _jwt(url, email, password)
            yield dash
        finally:
            stop_all(dash.workers, 10)


@pytest.fixture(scope="package")
def shared_worker(dash: Dash) -> str:
    """One worker for the tests that do not mind sharing it; returns its name."""
    # A test reads a running job's pid from a file under pytest's tmp dir.
    proc = dash.worker("shared", "--concurrency", "4", *HOST_VISIBLE)
    poll(
        lambda: proc.poll() is None and dash.worker_state("shared") == "online",
        STARTUP,
        "the shared worker to register\n" + dash.log("worker-shared.log"),
    )
    return "shared"


# ---- the browser --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield chromium
        finally:
            chromium.close()


SignIn = Callable[..., Page]


@pytest.fixture
def sign_in(browser: Browser, dash: Dash, request: pytest.FixtureRequest) -> Iterator[SignIn]:
    """``sign_in(SUBMITTER)`` -> a page on ``/`` signed in as that user, in a fresh context
    (its own cookies). Contexts are closed after the test."""
    contexts: list[BrowserContext] = []

    def open_as(
        user: tuple[str, str],
        viewport: dict[str, int] | None = None,
        next_path: str = "/",
        color_scheme: Literal["light", "dark"] = "light",
    ) -> Page:
        context = browser.new_context(
            base_url=dash.url, viewport=viewport or DESKTOP, color_scheme=color_scheme
        )
        context.set_default_timeout(15_000)
        contexts.append(context)
        page = context.new_page()
        page.goto(f"/login?next={next_path}")
        page.fill("#email", user[0])
        page.fill("#password", user[1])
        with page.expect_navigation():
            page.get_by_role("button", name="Sign in").click()
        assert "/login" not in page.url, f"sign-in as {user[0]} failed: {page.url}"
        return page

    yield open_as
    failed = getattr(request.node, "rep_call", None)
    for number, context in enumerate(contexts):
        if failed is not None and failed.failed:  # what the page showed when it failed
            for index, page in enumerate(context.pages):
                with contextlib.suppress(Exception):
                    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
                    name = f"{Shots(request.node.name).prefix}-FAILED-{number}-{index}.png"
                    page.screenshot(path=str(SCREENSHOTS / name), full_page=True)
        context.close()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if report.when == "call":
        item.rep_call = report  # type: ignore[attr-defined]
    return report


class Shots:
    """``shots(page, "jobs")`` saves a full-page screenshot as ``<test>-jobs.png``."""

    def __init__(self, test_name: str) -> None:
        self.prefix = re.sub(r"[^A-Za-z0-9_.-]+", "_", test_name.removeprefix("test_"))
        self.saved: list[Path] = []

    def __call__(self, page: Page, name: str) -> Path:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{self.prefix}-{name}.png"
        page.screenshot(path=str(path), full_page=True)
        self.saved.append(path)
        return path


@pytest.fixture(scope="package", autouse=True)
def _fresh_screenshots() -> None:
    """The screenshots of this run only (CI uploads the folder as it is)."""
    if SCREENSHOTS.exists():
        for old in SCREENSHOTS.glob("*.png"):
            old.unlink()


@pytest.fixture
def shots(request: pytest.FixtureRequest) -> Shots:
    return Shots(request.node.name)
