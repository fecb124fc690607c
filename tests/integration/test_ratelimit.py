"""Rate limits over real HTTP: headers, 429s in each dialect's shape, logins, failed auth.

Budgets are tiny ("3/minute") so that a test runs out in a few requests and never
waits for a window, except the one test that watches a window reset ("2/second").
Client IPs are varied with ``X-Forwarded-For``, which uvicorn trusts from loopback.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.test_cmd_auth import add_user, login
from tests.live import LiveServer, run_server

JOB = {"command": "true"}
ADMIN = ("root@example.com", "admin-password")


def figures(answer: httpx.Response) -> tuple[int, int, int]:
    headers = answer.headers
    return (
        int(headers["x-ratelimit-limit"]),
        int(headers["x-ratelimit-remaining"]),
        int(headers["x-ratelimit-reset"]),
    )


def from_ip(live: LiveServer, ip: str, token: str | None = None) -> httpx.Client:
    headers = {"X-Forwarded-For": ip}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    return httpx.Client(base_url=live.url, headers=headers, timeout=30)


def assert_retry_after(answer: httpx.Response, window: float) -> int:
    assert answer.status_code == 429, answer.text
    retry_after = int(answer.headers["retry-after"])
    assert 1 <= retry_after <= window
    assert figures(answer)[1] == 0
    return retry_after


@pytest.fixture
def tight(tmp_path: Path) -> Iterator[LiveServer]:
    with run_server(tmp_path / "data", rate_limit="3/minute") as live:
        yield live


def test_default_budget_headers_count_down_within_one_window(live_server: LiveServer) -> None:
    now = time.time()
    with live_server.client() as http:
        answers = [http.get("/api/v1/jobs") for _ in range(3)]
    after = time.time()
    seen = [figures(a) for a in answers]
    assert all(a.status_code == 200 for a in answers)
    assert [limit for limit, _, _ in seen] == [6000] * 3
    assert [remaining for _, remaining, _ in seen] == [5999, 5998, 5997]
    resets = {reset for _, _, reset in seen}
    assert len(resets) == 1  # a fixed window: one reset time for all of it
    # The window opened at the first request (after ``now``, before ``after``) and lasts a
    # minute; the header rounds its end up to a whole second.
    assert now < resets.pop() <= math.ceil(after + 60)


def test_native_429_has_retry_after_and_the_native_shape(tight: LiveServer) -> None:
    viewer = tight.token("viewer")  # the admin's first request
    with tight.client() as http:
        assert [http.post("/api/v1/jobs", json=JOB).status_code for _ in range(2)] == [201, 201]
        refused = http.post("/api/v1/jobs", json=JOB)
    retry_after = assert_retry_after(refused, 60)
    body = refused.json()
    assert set(body) == {"error", "context"}
    assert body["error"] == "Rate limit exceeded"
    assert body["context"]["retry_after"] == retry_after
    assert body["context"]["scope"] == "principal"
    assert figures(refused)[0] == 3
    with tight.client(viewer) as http:  # another principal: its own budget, and no third job
        listed = http.get("/api/v1/jobs")
    assert listed.status_code == 200 and len(listed.json()) == 2


def test_cmd_429_has_retry_after_in_the_documented_shape(tight: LiveServer) -> None:
    with tight.client() as http:
        answers = [http.post("/api/jobs/submit", json=JOB) for _ in range(4)]
    assert [a.status_code for a in answers[:3]] == [201, 201, 201]
    assert [figures(a)[1] for a in answers[:3]] == [2, 1, 0]
    refused = answers[3]
    retry_after = assert_retry_after(refused, 60)
    body: dict[str, Any] = refused.json()
    assert set(body) == {"error", "message", "retryAfter", "details", "code"}
    assert body["error"] == "Too Many Requests"
    assert body["message"] == "Rate limit exceeded"
    assert body["code"] == "RATE_LIMITED"
    assert body["retryAfter"] == retry_after
    assert body["details"]["retry_after"] == retry_after


def test_a_window_resets_and_the_budget_comes_back(tmp_path: Path) -> None:
    with run_server(tmp_path / "data", rate_limit="2/second") as live, live.client() as http:
        assert http.get("/api/v1/jobs").status_code == 200
        second = http.get("/api/v1/jobs")
        refused = http.get("/api/v1/jobs")
        assert refused.status_code == 429
        time.sleep(max(0.0, figures(second)[2] - time.time()) + 0.05)
        again = http.get("/api/v1/jobs")
    assert again.status_code == 200
    assert figures(again)[1] == 1


def test_worker_tokens_are_not_throttled_by_default(tight: LiveServer) -> None:
    worker = tight.token("worker")
    with tight.client(worker) as http:
        answers = [http.post("/api/v1/jobs/claim", json={"executor_id": "w-1"}) for _ in range(20)]
    assert {a.status_code for a in answers} == {204}
    assert not any("x-ratelimit-limit" in a.headers for a in answers)


def test_a_worker_budget_applies_when_configured(tmp_path: Path) -> None:
    with run_server(tmp_path / "data", worker_rate_limit="2/minute") as live:
        worker = live.token("worker")
        with live.client(worker) as http:
            codes = [
                http.post("/api/v1/jobs/claim", json={"executor_id": "w-1"}).status_code
                for _ in range(3)
            ]
    assert codes == [204, 204, 429]


def test_failed_authentications_are_limited_per_ip(tmp_path: Path) -> None:
    with run_server(tmp_path / "data", auth_failure_rate_limit="3/minute") as live:
        with from_ip(live, "10.0.0.1", "crl_garbage") as sprayer:
            failures = [sprayer.get("/api/v1/jobs") for _ in range(3)]
            refused = sprayer.get("/api/v1/jobs")
        with from_ip(live, "10.0.0.1", live.admin_token) as same_ip:
            good_token_same_ip = same_ip.get("/api/v1/jobs")
        with from_ip(live, "10.0.0.2", live.admin_token) as other_ip:
            good_token_other_ip = other_ip.get("/api/v1/jobs")
        with from_ip(live, "10.0.0.2", "crl_garbage") as other_ip:
            garbage_other_ip = other_ip.get("/api/v1/jobs")
    assert [a.status_code for a in failures] == [401, 401, 401]
    assert [figures(a)[1] for a in failures] == [2, 1, 0]
    assert refused.json()["context"]["scope"] == "auth-failure"
    assert_retry_after(refused, 60)
    # Over budget, a good token is refused too: the sprayer must not tell good from bad.
    assert good_token_same_ip.status_code == 429
    assert good_token_other_ip.status_code == 200
    assert garbage_other_ip.status_code == 401


def _attempt(live: LiveServer, ip: str, who: str, secret: str) -> httpx.Response:
    with from_ip(live, ip) as http:
        return http.post("/api/auth/login", json={"email": who, "password": secret})


def test_item19_login_guessing_is_stopped_per_email_and_address_and_per_address(
    tmp_path: Path,
) -> None:
    email, password = ADMIN
    settings: dict[str, Any] = {"admin_email": email, "admin_password": password}
    limits = {"login_rate_limit": "3/minute", "login_ip_rate_limit": "5/minute"}
    with run_server(tmp_path / "d", **limits, **settings) as live:
        add_user(live, "other@example.com", "viewer")
        guesses = [_attempt(live, "10.0.0.1", email, f"guess-{i}").status_code for i in range(3)]
        right_password = _attempt(live, "10.0.0.1", email, password)
        # Nobody else is refused for 10.0.0.1's failures: the same email from elsewhere,
        # and another email from the same address (under the address's own budget).
        same_email_other_ip = _attempt(live, "10.0.0.2", email, password)
        other_email_same_ip = _attempt(live, "10.0.0.1", "other@example.com", "pw-123456-long")
        # The address's budget counts failures whatever the email: 5 of 5 spent, then
        # even a right password from it is refused.
        spray = _attempt(live, "10.0.0.1", "other@example.com", "wrong")
        sprayed_out = _attempt(live, "10.0.0.1", "other@example.com", "pw-123456-long")
    assert guesses == [401, 401, 401]
    assert_retry_after(right_password, 60)
    body = right_password.json()
    assert body["code"] == "RATE_LIMITED" and body["retryAfter"] >= 1
    assert "token" not in body
    assert same_email_other_ip.status_code == 200
    assert other_email_same_ip.status_code == 200
    assert spray.status_code == 401
    assert_retry_after(sprayed_out, 60)


def test_item19_nobody_can_lock_a_user_out_of_login(tmp_path: Path) -> None:
    """Twelve wrong passwords in a minute at one email, each from its own address (over
    the email's budget of ten): the right password still logs in, from a new address and
    from one of the guessing ones, only slowed down. Parallel guesses from one address
    cannot slip past its budget either: each counts as failed until it succeeds."""
    email, password = ADMIN
    settings: dict[str, Any] = {"admin_email": email, "admin_password": password}
    with run_server(tmp_path / "d", **settings) as live:
        wrong = [_attempt(live, f"10.0.1.{n}", email, "wrong").status_code for n in range(12)]
        assert wrong == [401] * 12
        assert _attempt(live, "10.0.2.1", email, password).status_code == 200
        assert _attempt(live, "10.0.1.3", email, password).status_code == 200
        # Failures of other users never touch this one's successful logins' budget.
        answers = [_attempt(live, "10.0.3.1", email, password) for _ in range(3)]
    assert [a.status_code for a in answers] == [200, 200, 200]


def test_logins_under_the_default_budget_succeed(tmp_path: Path) -> None:
    """Only failures spend the login budget: a successful login gives its unit back."""
    with run_server(tmp_path / "d", admin_email="a@x.io", admin_password="a-long-password") as live:
        answers = [login(live, "a@x.io", "a-long-password") for _ in range(12)]
    assert {a.status_code for a in answers} == {200}
    assert figures(answers[-1])[:2] == (10, 9)


def test_limits_switched_off_send_no_headers_and_never_refuse(tmp_path: Path) -> None:
    with run_server(tmp_path / "data", rate_limit="off") as live, live.client() as http:
        answers = [http.get("/api/v1/jobs") for _ in range(5)]
    assert {a.status_code for a in answers} == {200}
    assert not any("x-ratelimit-limit" in a.headers for a in answers)


def test_server_refuses_to_start_with_a_bad_limit(tmp_path: Path) -> None:
    env = {**os.environ, "CORRAL_RATE_LIMIT": "lots/minute"}
    done = subprocess.run(
        [sys.executable, "-m", "corral.cli.main", "server", "--data-dir", str(tmp_path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "CORRAL_RATE_LIMIT" in done.stderr and "lots/minute" in done.stderr
