"""`corral user list|set-role|disable|enable|reset-password` on the database of a live server."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import httpx

from corral.settings import ServerSettings
from corral.store.sqlite.store import SqliteStore
from tests.live import LiveServer, run_server

# The installed console script, as an operator runs it.
CORRAL = Path(sys.executable).with_name("corral")


def cli(data: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(CORRAL), "user", *args, "--data-dir", str(data)],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
    )


def create(data: Path, email: str, role: str, password: str) -> subprocess.CompletedProcess[str]:
    flags = ["--email", email, "--role", role, "--password-stdin"]
    return cli(data, "create", *flags, stdin=password + "\n")


def login_status(live: LiveServer, email: str, password: str) -> int:
    with httpx.Client(base_url=live.url, timeout=30) as http:
        return http.post("/api/auth/login", json={"email": email, "password": password}).status_code


def test_user_commands_change_what_the_running_server_accepts(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with run_server(data) as server:
        made = create(data, "Ann@Example.com", "submitter", "old-password")
        assert made.returncode == 0, made.stderr
        user_id = made.stdout.strip()
        listed = cli(data, "list")
        assert "argon2" not in listed.stdout
        header, row = (line.split("\t") for line in listed.stdout.splitlines())
        assert header == ["id", "email", "role", "status", "created_at"]
        assert row[:4] == [user_id, "ann@example.com", "submitter", "active"]

        assert (
            cli(data, "set-role", "ann@example.com", "viewer").stdout
            == "ann@example.com is now viewer\n"
        )
        assert cli(data, "disable", "ANN@example.com").returncode == 0
        assert login_status(server, "ann@example.com", "old-password") == 401
        assert cli(data, "enable", "ann@example.com").returncode == 0
        assert login_status(server, "ann@example.com", "old-password") == 200

        reset = cli(
            data, "reset-password", "ann@example.com", "--password-stdin", stdin="new-password-2\n"
        )
        assert reset.returncode == 0, reset.stderr
        assert login_status(server, "ann@example.com", "old-password") == 401
        assert login_status(server, "ann@example.com", "new-password-2") == 200

        (user,) = json.loads(cli(data, "list", "--json").stdout)
        assert user == {**user, "id": user_id, "role": "viewer", "status": "active"}
        assert set(user) == {"id", "email", "role", "status", "created_at"}


def init_database(data: Path) -> None:
    """A server's database, as its first start leaves it (the commands never create one)."""
    settings = ServerSettings(data_dir=data)
    settings.data_dir.mkdir(parents=True)

    async def open_and_close() -> None:
        store = SqliteStore(settings.sqlite_path)
        await store.open()
        await store.close()

    asyncio.run(open_and_close())


def test_refused_user_commands_exit_2_and_change_nothing(tmp_path: Path) -> None:
    data = tmp_path / "data"
    init_database(data)
    made = create(data, "ann@example.com", "viewer", "pw-123456-long")
    assert made.returncode == 0, made.stderr
    before = cli(data, "list", "--json").stdout
    refused = [
        (cli(data, "set-role", "ann@example.com", "worker"), "unknown user role 'worker'"),
        (cli(data, "disable", "ghost@example.com"), "no user with email"),
        (
            cli(data, "reset-password", "ann@example.com", "--password-stdin", stdin="\n"),
            "password must be at least 12 characters",
        ),
        (cli(data, "reset-password", "ann@example.com"), "--password-stdin"),
        (create(data, "nope", "viewer", "pw-123456-long"), "email must look like name@domain"),
        (create(data, "ann@example.com", "viewer", "pw-123456-long"), "already"),
    ]
    for done, message in refused:
        assert done.returncode == 2 and message in done.stderr, done.stderr
        assert "Traceback" not in done.stderr
    assert cli(data, "list", "--json").stdout == before
