"""Two dispatcher replicas on one PostgreSQL database are interchangeable."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

import httpx

from tests.live import run_server
from tests.pg_server import PgServer

API = "/api/v1"


def test_replicas_share_tokens_jobs_and_wake_each_others_claimers(
    pg_server: PgServer, tmp_path: Path
) -> None:
    dsn = asyncio.run(pg_server.new_database(migrated=False))
    with (
        run_server(tmp_path / "a", database_url=dsn) as a,
        run_server(tmp_path / "b", database_url=dsn) as b,
    ):
        # The first replica minted the admin token; the second found one and minted none,
        # yet accepts it, and a token minted through one replica works on the other.
        assert a.admin_token and not b.admin_token
        admin = a.admin_token
        worker_token = a.token("worker")
        claimed: dict[str, object] = {}

        def long_poll_on_b() -> None:
            with httpx.Client(base_url=b.url, timeout=30) as http:
                started = time.monotonic()
                answer = http.post(
                    f"{API}/jobs/claim",
                    json={"executor_id": "w-on-b", "n": 1, "wait": 20},
                    headers={"Authorization": f"Bearer {worker_token}"},
                )
                claimed["status"] = answer.status_code
                claimed["body"] = answer.json() if answer.status_code == 200 else None
                claimed["waited"] = time.monotonic() - started

        poller = threading.Thread(target=long_poll_on_b)
        poller.start()
        time.sleep(0.3)  # let the claim reach its wait; a late arrival would only claim at once
        with httpx.Client(base_url=a.url, headers={"Authorization": f"Bearer {admin}"}) as http:
            job_id = http.post(f"{API}/jobs", json={"command": "true"}).json()["id"]
        poller.join(timeout=30)
        assert claimed["status"] == 200
        body = claimed["body"]
        assert isinstance(body, list) and body[0]["id"] == job_id
        assert isinstance(claimed["waited"], float) and claimed["waited"] < 5.0, claimed
        with httpx.Client(base_url=a.url, headers={"Authorization": f"Bearer {admin}"}) as http:
            shown = http.get(f"{API}/jobs/{job_id}").json()
        assert (shown["status"], shown["executor_id"]) == ("running", "w-on-b")


def _dashboard_session(url: str, email: str, password: str) -> httpx.Client:
    client = httpx.Client(base_url=url, follow_redirects=False, timeout=30)
    form = client.get("/login").text
    token = form.split('name="csrf" value="', 1)[1].split('"', 1)[0]
    answer = client.post(
        "/login", data={"email": email, "password": password, "csrf": token, "next": "/"}
    )
    assert answer.status_code == 303, answer.text
    return client


def test_a_live_page_on_one_replica_hears_of_jobs_changed_through_another(
    pg_server: PgServer, tmp_path: Path
) -> None:
    dsn = asyncio.run(pg_server.new_database(migrated=False))
    email, password = "root@example.com", "admin-password"
    with (
        run_server(
            tmp_path / "a", database_url=dsn, admin_email=email, admin_password=password
        ) as a,
        run_server(tmp_path / "b", database_url=dsn) as b,
    ):
        heard: list[str] = []
        opened = threading.Event()

        def watch_on_b() -> None:
            browser = _dashboard_session(b.url, email, password)
            try:
                with browser.stream("GET", "/ui/events", params={"topics": "jobs"}) as stream:
                    opened.set()
                    for line in stream.iter_lines():
                        if line.startswith("event: "):
                            heard.append(line.removeprefix("event: "))
                            return
            finally:
                browser.close()

        watcher = threading.Thread(target=watch_on_b, daemon=True)
        watcher.start()
        assert opened.wait(10)
        time.sleep(0.3)  # the stream is parked on b's signals
        started = time.monotonic()
        with httpx.Client(
            base_url=a.url, headers={"Authorization": f"Bearer {a.admin_token}"}
        ) as http:
            assert http.post(f"{API}/jobs", json={"command": "true"}).status_code == 201
        watcher.join(timeout=10)
        assert heard == ["jobs"]
        assert time.monotonic() - started < 5.0
