"""Backups as docs/deploy.md takes them: ``corral backup`` of a SQLite server that keeps
accepting jobs meanwhile, and ``pg_dump``/``pg_restore`` of a PostgreSQL one; each copy
starts a server that has every job answered 201 before the copy began."""

from __future__ import annotations

import asyncio
import shutil
import sqlite3
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from tests.pg_server import PgServer
from tests.processes import CORRAL, STARTUP, clean_env, free_port, poll


@contextmanager
def server(data: Path, *args: str) -> Iterator[str]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = data.parent / f"server-{port}.log"
    argv = [*CORRAL, "server", "--port", str(port), "--data-dir", str(data), *args]
    with log.open("ab") as out:
        proc = subprocess.Popen(argv, env=clean_env(), stdout=out, stderr=out)

    def healthy() -> bool:
        assert proc.poll() is None, log.read_text()[-3000:]
        try:
            return httpx.get(url + "/api/v1/health", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        poll(healthy, STARTUP, "the server")
        yield url
    finally:
        proc.terminate()
        assert proc.wait(30) == 0, log.read_text()[-3000:]


class Submitter(threading.Thread):
    """Submits jobs until stopped; ``acked`` holds every id answered 201, in order."""

    def __init__(self, url: str, token: str) -> None:
        super().__init__(daemon=True)
        self.http = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"})
        self.acked: list[str] = []
        self.refused: list[int] = []
        self.stop = threading.Event()

    def run(self) -> None:
        with self.http:
            while not self.stop.is_set():
                answer = self.http.post("/api/v1/jobs", json={"command": "true"}, timeout=30)
                if answer.status_code == 201:
                    self.acked.append(answer.json()["id"])
                else:
                    self.refused.append(answer.status_code)


def backup(data: Path, dest: Path) -> str:
    argv = [*CORRAL, "backup", str(dest), "--data-dir", str(data)]
    done = subprocess.run(argv, env=clean_env(), capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout


def job_ids(copy: Path) -> set[str]:
    conn = sqlite3.connect(f"file:{copy}?mode=ro", uri=True)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        return {row[0] for row in conn.execute("SELECT id FROM jobs")}
    finally:
        conn.close()


@pytest.mark.slow  # two servers and a stream of writes
def test_corral_backup_under_writes_holds_every_acknowledged_job(tmp_path: Path) -> None:
    data = tmp_path / "data"
    copies: list[tuple[Path, list[str]]] = []
    with server(data) as url:
        admin = (data / "admin-token").read_text().strip()
        writer = Submitter(url, admin)
        writer.start()
        try:
            poll(lambda: len(writer.acked) >= 20, 30, "jobs being written")
            for n in range(3):
                before = list(writer.acked)
                copy = tmp_path / f"backup-{n}.sqlite3"
                said = backup(data, copy)
                assert "integrity ok" in said, said
                copies.append((copy, before))
                time.sleep(0.2)
        finally:
            writer.stop.set()
            writer.join(30)
        assert writer.refused == [], "the server refused writes during the backups"
        assert len(writer.acked) > len(copies[-1][1]), "no job was written after the last copy"
    for copy, before in copies:
        assert copy.stat().st_mode & 0o077 == 0, "a backup holds secrets: mode 0600"
        assert not Path(f"{copy}-wal").exists(), "a backup is one self-contained file"
        missing = set(before) - job_ids(copy)
        assert missing == set(), f"{len(missing)} acknowledged jobs missing from {copy.name}"
    # Restore: the newest copy as a data dir's database serves its jobs and its tokens.
    restored = tmp_path / "restored"
    restored.mkdir()
    shutil.copy(copies[-1][0], restored / "corral.sqlite3")
    with server(restored) as url:
        headers = {"Authorization": f"Bearer {admin}"}
        answer = httpx.get(f"{url}/api/v1/jobs/{copies[-1][1][-1]}", headers=headers)
        assert answer.status_code == 200, answer.text


def test_corral_backup_refuses_its_own_database_and_postgresql(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    sqlite3.connect(data / "corral.sqlite3").close()
    argv = [*CORRAL, "backup"]
    itself = subprocess.run(
        [*argv, str(data / "corral.sqlite3"), "--data-dir", str(data)],
        env=clean_env(),
        capture_output=True,
        text=True,
    )
    assert itself.returncode == 2 and "is the database itself" in itself.stderr
    pg = subprocess.run(
        [*argv, str(tmp_path / "x"), "--database-url", "postgresql://corral@127.0.0.1/corral"],
        env=clean_env(),
        capture_output=True,
        text=True,
    )
    assert pg.returncode == 2 and "pg_dump" in pg.stderr
    assert not (tmp_path / "x").exists()


def pg_tool(pg: PgServer, name: str) -> str:
    """The client tool beside the server's binaries (the same version), else on PATH."""
    for candidate in (pg.bin / name, (pg.bin / "initdb").resolve().parent / name):
        if candidate.exists():
            return str(candidate)
    found = shutil.which(name)
    assert found, f"{name} is not installed (Debian package postgresql-client)"
    return found


@pytest.mark.slow  # pg_dump, pg_restore and two servers
def test_pg_dump_and_pg_restore_give_a_database_a_server_runs_on(
    pg_server: PgServer, tmp_path: Path
) -> None:
    source = asyncio.run(pg_server.new_database(migrated=False))
    with server(tmp_path / "a", "--database-url", source) as url:
        admin = (tmp_path / "a" / "admin-token").read_text().strip()
        headers = {"Authorization": f"Bearer {admin}"}
        sent = httpx.post(f"{url}/api/v1/jobs", json={"command": "true"}, headers=headers)
        job_id = sent.raise_for_status().json()["id"]
        dump = tmp_path / "corral.dump"
        # The commands docs/deploy.md gives, against the live database.
        subprocess.run(
            [pg_tool(pg_server, "pg_dump"), "--format=custom", f"--file={dump}", source], check=True
        )
    target = asyncio.run(pg_server.new_database(migrated=False))
    subprocess.run(
        [pg_tool(pg_server, "pg_restore"), "--no-owner", f"--dbname={target}", str(dump)],
        check=True,
    )
    with server(tmp_path / "b", "--database-url", target) as url:
        answer = httpx.get(f"{url}/api/v1/jobs/{job_id}", headers=headers)
        assert answer.status_code == 200, answer.text
