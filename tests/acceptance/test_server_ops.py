"""Operations of a real ``corral server``: it fails before doing anything, in one line,
when its port is taken or its database unreachable; logs are JSON off a terminal and
text on one, with UTC milliseconds and no ANSI; failed logins are logged."""

from __future__ import annotations

import os
import pty
import re
import select
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from tests.processes import CORRAL, STARTUP, clean_env, free_port, poll

STAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
PASSWORD = "a-password-nobody-logs-42"


def _run_server(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CORRAL, "server", *args],
        env=clean_env(**env),
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_item3_a_busy_port_fails_first_in_one_line(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = _run_server("--port", str(port), "--data-dir", str(tmp_path / "data"))
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    line = orjson.loads(lines[0])
    assert line["action"] == "bind_failed"
    assert f"cannot listen on 127.0.0.1:{port}: Address already in use" in line["msg"]
    assert not (tmp_path / "data" / "admin-token").exists()  # no token minted for nothing


def test_item3_an_unreachable_database_is_one_line_without_its_password(tmp_path: Path) -> None:
    url = f"postgresql://corral:{PASSWORD}@127.0.0.1:{free_port()}/corral"
    done = _run_server("--port", "0", "--database-url", url, "--log-format", "text")
    assert done.returncode == 1
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert "cannot open the database postgresql://corral:***@127.0.0.1:" in done.stderr
    assert PASSWORD not in done.stderr and "Traceback" not in done.stderr
    assert "ERROR" in done.stderr and "action=database_unreachable" in done.stderr


@dataclass
class Server:
    url: str
    log: Path
    proc: subprocess.Popen[bytes]

    def records(self) -> list[dict[str, Any]]:
        return [orjson.loads(line) for line in self.log.read_text().splitlines()]


@pytest.fixture(scope="module")
def json_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server whose stderr is a file, not a terminal: JSON lines by default."""
    root = tmp_path_factory.mktemp("ops")
    port = free_port()
    env = clean_env(CORRAL_ADMIN_EMAIL="admin@example.com", CORRAL_ADMIN_PASSWORD=PASSWORD)
    with (root / "server.log").open("ab") as log:
        command = [*CORRAL, "server", "--port", str(port), "--data-dir", str(root / "data")]
        proc = subprocess.Popen([*command, "--access-log"], env=env, stdout=log, stderr=log)
    server = Server(f"http://127.0.0.1:{port}", root / "server.log", proc)
    try:
        poll(lambda: "corral listening" in server.log.read_text(), STARTUP, "the listening line")
        yield server
    finally:
        proc.terminate()
        proc.wait(20)


def test_item3_json_logs_off_a_terminal_with_utc_milliseconds_and_no_ansi(
    json_server: Server,
) -> None:
    httpx.get(json_server.url + "/api/v1/health", timeout=10)
    poll(lambda: "/api/v1/health" in json_server.log.read_text(), 10, "the access log line")
    records = json_server.records()
    assert all(STAMP.match(r["ts"]) for r in records)
    text = json_server.log.read_text()
    assert "color_message" not in text and "\x1b" not in text
    actions = [r.get("action") for r in records]
    # "listening" only once the port is bound and the lifespan (token minting) is done.
    assert actions.index("admin_token_created") < actions.index("server_start")


def test_item3_failed_logins_are_logged_for_every_login_path(json_server: Server) -> None:
    with httpx.Client(base_url=json_server.url, timeout=10) as http:
        refused = http.post(
            "/api/auth/login", json={"email": "Nobody@Example.com", "password": PASSWORD}
        )
        assert refused.status_code == 401
        form = http.get("/login").text
        csrf = re.search(r'name="csrf" value="([^"]+)"', form)
        assert csrf is not None
        wrong = {"email": "admin@example.com", "password": PASSWORD + "x", "csrf": csrf[1]}
        assert http.post("/login", data=wrong).status_code == 401

    def failures() -> list[dict[str, Any]]:
        return [r for r in json_server.records() if r.get("action") == "login_failed"]

    found = poll(lambda: len(failures()) >= 2 and failures(), 10, "two login_failed lines")
    assert [r["email"] for r in found] == ["nobody@example.com", "admin@example.com"]
    assert all(r["address"] == "127.0.0.1" for r in found)
    assert all(r["level"] == "warning" for r in found)
    assert PASSWORD not in json_server.log.read_text()


def _read_until(fd: int, done: Callable[[bytes], bool], seconds: float) -> bytes:
    """Read a pty until ``done(what was read)``, its end (no writer left), or ``seconds``."""
    seen = b""
    deadline = time.monotonic() + seconds
    while not done(seen) and time.monotonic() < deadline:
        if select.select([fd], [], [], 0.2)[0]:
            try:
                piece = os.read(fd, 65536)
            except OSError:  # EIO: the last writer closed it
                break
            if not piece:
                break
            seen += piece
    return seen


def test_item3_text_logs_on_a_terminal(tmp_path: Path) -> None:
    """stderr a terminal (a pty here) and no --log-format: one readable line each."""
    primary, secondary = pty.openpty()
    port = free_port()
    command = [*CORRAL, "server", "--port", str(port), "--data-dir", str(tmp_path / "d")]
    proc = subprocess.Popen(command, env=clean_env(), stdout=secondary, stderr=secondary)
    os.close(secondary)
    seen = b""
    try:
        seen = _read_until(primary, lambda read: b"corral listening" in read, 30)
    finally:
        proc.send_signal(signal.SIGTERM)
        _read_until(primary, lambda read: False, 20)  # drained: the server never blocks
        proc.wait(20)
        os.close(primary)
    lines = seen.decode().splitlines()
    listening = next(line for line in lines if "corral listening" in line)
    stamp, level, logger, *_ = listening.split()
    assert STAMP.match(stamp) and (level, logger) == ("INFO", "corral.server:")
    assert listening.endswith("action=server_start")
    assert not any(line.startswith("{") for line in lines) and "\x1b" not in seen.decode()
