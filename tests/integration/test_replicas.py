"""Two dispatcher replicas on one PostgreSQL database are interchangeable."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from pathlib import Path
from typing import Any

import httpx

from corral.domain.jobs import ClaimRequest, JobDraft, JobSpec
from corral.domain.principals import Principal, Role
from corral.services.container import Services, open_store
from corral.services.events import job_topic
from corral.settings import ServerSettings
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


# --- item 14: per-job wake-ups travel between replicas ------------------------------
#
# A follower parks on its job's signal between reads and re-reads the job only when
# that signal fires, or every 15 s (the keep-alive). These followers are on replica b
# while the job's life happens on replica a: before item 14 only output was relayed,
# so each follower below heard of its job's end a keep-alive later, not at once.

PROMPT = 5.0  # seconds; well under the 15 s keep-alive a missed wake-up costs


class Follower:
    """``GET .../output/follow`` on one replica, in a thread; records the end event."""

    def __init__(self, url: str, token: str, job_id: str) -> None:
        self.ended: dict[str, object] = {}
        self.ended_at = 0.0
        self._opened = threading.Event()
        self._args = (url, token, job_id)
        self._thread = threading.Thread(target=self._follow, daemon=True)
        self._thread.start()
        assert self._opened.wait(10), "the follow stream did not open"
        time.sleep(0.3)  # let the follower read the job and park on its signal

    def _follow(self) -> None:
        url, token, job_id = self._args
        headers = {"Authorization": f"Bearer {token}"}
        with (
            httpx.Client(base_url=url, headers=headers, timeout=30) as http,
            http.stream("GET", f"{API}/jobs/{job_id}/output/follow") as stream,
        ):
            self._opened.set()
            event = ""
            for line in stream.iter_lines():
                if line.startswith("event: "):
                    event = line.removeprefix("event: ")
                elif line.startswith("data: ") and event == "end":
                    self.ended_at = time.monotonic()
                    self.ended.update(json.loads(line.removeprefix("data: ")))
                    return

    def wait_end(self, since: float) -> dict[str, object]:
        self._thread.join(timeout=PROMPT + 5)
        assert self.ended, "the follower never heard the job end"
        assert self.ended_at - since < PROMPT, f"heard after {self.ended_at - since:.1f} s"
        return self.ended


def _replicas(tmp_path: Path, dsn: str) -> tuple[Any, Any]:
    """Replica a reaps at once; b never does (its grace outlasts the test), so a job
    reaped in these tests was reaped by a."""
    a = run_server(tmp_path / "a", database_url=dsn, lease_grace=0.0, reaper_interval=0.2)
    b = run_server(tmp_path / "b", database_url=dsn, lease_grace=3600.0)
    return a, b


def _claim(http: httpx.Client, job_id: str) -> dict[str, Any]:
    answer = http.post(f"{API}/jobs/claim", json={"executor_id": "w-on-a", "n": 1})
    assert answer.status_code == 200, answer.text
    [job] = answer.json()
    assert job["id"] == job_id
    return dict(job)


def test_item14_follower_on_one_replica_hears_a_finish_on_another(
    pg_server: PgServer, tmp_path: Path
) -> None:
    dsn = asyncio.run(pg_server.new_database(migrated=False))
    servers = _replicas(tmp_path, dsn)
    with servers[0] as a, servers[1] as b:
        worker = a.token("worker")
        with a.client() as admin, a.client(worker) as w:
            job_id = admin.post(f"{API}/jobs", json={"command": "true"}).json()["id"]
            follower = Follower(b.url, a.admin_token, job_id)
            job = _claim(w, job_id)
            report = {"executor_id": "w-on-a", "attempt": job["attempt"], "exit_code": 0}
            since = time.monotonic()
            assert w.put(f"{API}/jobs/{job_id}/complete", json=report).status_code == 200
        assert follower.wait_end(since)["status"] == "completed"


def test_item14_follower_on_one_replica_hears_a_reap_on_another(
    pg_server: PgServer, tmp_path: Path
) -> None:
    dsn = asyncio.run(pg_server.new_database(migrated=False))
    servers = _replicas(tmp_path, dsn)
    with servers[0] as a, servers[1] as b:
        worker = a.token("worker")
        with a.client() as admin, a.client(worker) as w:
            body = {"command": "true", "lease_seconds": 1, "max_retries": 0}
            job_id = admin.post(f"{API}/jobs", json=body).json()["id"]
            follower = Follower(b.url, a.admin_token, job_id)
            since = time.monotonic()
            _claim(w, job_id)  # and never renewed: a reaps it once the second is up
        ended = follower.wait_end(since)
        assert ended["status"] == "failed"


def test_item14_follower_on_one_replica_hears_a_cancel_on_another(
    pg_server: PgServer, tmp_path: Path
) -> None:
    dsn = asyncio.run(pg_server.new_database(migrated=False))
    servers = _replicas(tmp_path, dsn)
    with servers[0] as a, servers[1] as b, a.client() as admin:
        job_id = admin.post(f"{API}/jobs", json={"command": "true"}).json()["id"]
        follower = Follower(b.url, a.admin_token, job_id)
        since = time.monotonic()
        assert admin.delete(f"{API}/jobs/{job_id}").status_code == 200
        assert follower.wait_end(since)["status"] == "cancelled"


async def test_item14_a_claim_on_one_replica_wakes_the_jobs_waiters_on_another(
    pg_server: PgServer, tmp_path: Path
) -> None:
    """A claim shows no event to an output follower, so this watches b's hub itself."""
    dsn = await pg_server.new_database(migrated=False)
    replicas = []
    for name in ("a", "b"):
        settings = ServerSettings(data_dir=tmp_path / name, database_url=dsn, lease_grace=3600)
        replicas.append(Services(open_store(settings), settings))
    a, b = replicas
    for services in replicas:
        await services.start()
    try:
        submitter = Principal("admin", "admin", Role.ADMIN)
        [job] = (
            await a.jobs.submit(submitter, [JobDraft(JobSpec(command="true"), priority=0)])
        ).jobs
        signal = b.hub.signal(job_topic(job.id))
        generation = signal.generation
        worker = Principal("w", "w", Role.WORKER)
        request = ClaimRequest(executor_id="w-on-a", principal_id="w", executor_ip=None)
        assert [j.id for j in await a.leases.claim(worker, request, wait=0)] == [job.id]
        assert await signal.wait(generation, PROMPT)
        # and b does not echo it back to a (nor to itself): its outbox stays empty
        assert b.hub.outbox is not None and b.hub.outbox.drain() == []
    finally:
        for services in replicas:
            await services.stop()
