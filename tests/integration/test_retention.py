"""Retention over real HTTP and real processes: the server's background purge, the
native ``retention_days`` field, the dashboard's note, and `corral prune` by hand."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest

from corral.store.base import Store
from corral.store.postgres.store import PostgresStore
from corral.store.sqlite.store import SqliteStore
from tests.contract.retention_support import DAY, count, ended, job
from tests.integration.test_dashboard_job import page, sign_in
from tests.live import LiveServer, run_server
from tests.pg_server import PgServer
from tests.processes import poll

API = "/api/v1"
ADMIN = ("root@example.com", "admin-password")
CORRAL = [sys.executable, "-m", "corral.cli.main"]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    data = tmp_path_factory.mktemp("retention") / "data"
    settings = {"retention": "2s", "retention_interval": 0.2}
    with run_server(data, admin_email=ADMIN[0], admin_password=ADMIN[1], **settings) as live:
        yield live


def test_the_server_purges_finished_jobs_and_frees_their_keys(server: LiveServer) -> None:
    headers = {"Idempotency-Key": "nightly-2026-01-01"}
    with server.client() as http:
        first = http.post(f"{API}/jobs", json={"command": "true"}, headers=headers).json()
        kept = http.post(f"{API}/jobs", json={"command": "true", "retention_days": 1}).json()
        for _ in (first, kept):
            claimed = http.post(f"{API}/jobs/claim", json={"executor_id": "w1"}).json()
            body = {"executor_id": "w1", "attempt": claimed["attempt"], "exit_code": 0}
            assert http.put(f"{API}/jobs/{claimed['id']}/complete", json=body).status_code == 200

        gone = poll(
            lambda: http.get(f"{API}/jobs/{first['id']}").status_code == 404,
            seconds=15,
            what="the finished job to be purged",
        )
        assert gone
        assert http.get(f"{API}/jobs/{kept['id']}").json()["retention_days"] == 1  # a day
        again = http.post(f"{API}/jobs", json={"command": "true"}, headers=headers)
        assert again.status_code == 201 and again.json()["id"] != first["id"]
        metrics = http.get(f"{API}/metrics").text
        assert 'corral_pruned_total{kind="jobs"} 1.0' in metrics
        assert 'corral_pruned_total{kind="idempotency_keys"} 1.0' in metrics


def test_retention_days_is_a_native_field_with_bounds(server: LiveServer) -> None:
    with server.client() as http:
        made = http.post(f"{API}/jobs", json={"command": "true", "retention_days": 90})
        assert made.status_code == 201
        assert http.get(f"{API}/jobs/{made.json()['id']}").json()["retention_days"] == 90
        default = http.post(f"{API}/jobs", json={"command": "true"}).json()
        assert http.get(f"{API}/jobs/{default['id']}").json()["retention_days"] is None
        for bad in (-1, 36501, "a month", 1.5):
            refused = http.post(f"{API}/jobs", json={"command": "true", "retention_days": bad})
            assert refused.status_code == 400, (bad, refused.text)
            assert "retention_days" in refused.text


def test_the_jobs_page_says_how_long_jobs_are_kept(server: LiveServer) -> None:
    with closing(sign_in(server, *ADMIN)) as browser:
        note = page(browser, "/")
    assert "Finished jobs are kept for 2 seconds, then deleted" in note
    assert "<code>retention_days</code>" in note
    assert "This server last deleted 1 job <time" in note  # the purge of the first test


def test_prune_by_hand_on_sqlite(tmp_path: Path) -> None:
    data = tmp_path / "data"
    asyncio.run(_fill(SqliteStore(data / "corral.sqlite3")))

    counted = _cli("prune", "--older-than", "7d", "--dry-run", "--data-dir", str(data))
    assert (counted.returncode, counted.stdout) == (0, "would delete 3 finished jobs\n")
    done = _cli("prune", "--older-than", "7d", "--data-dir", str(data))
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("deleted 3 finished jobs (3 attempts, 6 output chunks, 3 art")
    assert asyncio.run(_jobs_left(SqliteStore(data / "corral.sqlite3"))) == 1

    vague = _cli("prune", "--older-than", "7", "--data-dir", str(data))
    assert vague.returncode == 2 and "number and a unit" in vague.stderr
    nowhere = _cli("prune", "--data-dir", str(tmp_path / "elsewhere"))
    assert nowhere.returncode == 2 and "no Corral database" in nowhere.stderr
    assert not (tmp_path / "elsewhere").exists()


def test_prune_by_hand_on_postgres(pg_server: PgServer) -> None:
    dsn = asyncio.run(pg_server.new_database())
    asyncio.run(_fill(PostgresStore(dsn)))

    done = _cli("prune", "--older-than", "7d", "--json", "--database-url", dsn)

    assert done.returncode == 0, done.stderr
    assert '"jobs": 3' in done.stdout and '"artifacts": 3' in done.stdout
    assert asyncio.run(_jobs_left(PostgresStore(dsn))) == 1
    asyncio.run(pg_server.drop_database(dsn))


def test_a_server_given_a_bare_number_refuses_to_start(tmp_path: Path) -> None:
    refused = _cli("server", "--retention", "30", "--data-dir", str(tmp_path / "data"))
    assert refused.returncode == 2
    assert "--retention (CORRAL_RETENTION): a duration is a number and a unit" in refused.stderr
    assert not (tmp_path / "data").exists()


async def _fill(store: Store) -> None:
    """Three jobs that ended eight days ago, with artifacts; one that ended yesterday."""
    await store.open()
    try:
        now = time.time()
        for n in range(3):
            await ended(store, job(f"old-{n}"), now - 8 * DAY, artifact=True)
        await ended(store, job("recent"), now - DAY)
    finally:
        await store.close()


async def _jobs_left(store: Store) -> int:
    await store.open()
    try:
        return await count(store, "jobs")
    finally:
        await store.close()


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CORRAL, *args], capture_output=True, text=True, timeout=60)
