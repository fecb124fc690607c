"""CMD Executor's /api/auth over real HTTP: logins, cookies, logout, refresh, live roles."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from corral.store.sqlite.store import SqliteStore
from tests.live import LiveServer, run_server

CORRAL = [sys.executable, "-m", "corral.cli.main"]
ADMIN = ("root@example.com", "admin-password")
JOB = {"command": "echo hi"}


@pytest.fixture
def server(tmp_path: Path) -> Iterator[LiveServer]:
    email, password = ADMIN
    with run_server(tmp_path / "data", admin_email=email, admin_password=password) as live:
        yield live


def add_user(live: LiveServer, email: str, role: str, password: str = "pw-123456-long") -> str:
    """Create a user the way an operator would: the CLI, straight on the database."""
    flags = ["--email", email, "--role", role, "--password-stdin"]
    done = subprocess.run(
        [*CORRAL, "user", "create", *flags, "--data-dir", str(live.settings.data_dir)],
        input=password + "\n",
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return done.stdout.strip()


def change_user(
    live: LiveServer, user_id: str, *, role: str | None = None, off: bool = False
) -> None:
    async def run() -> None:
        store = SqliteStore(live.settings.sqlite_path)
        await store.open()
        try:
            if role is not None:
                await store.set_user_role(user_id, role)
            if off:
                await store.set_user_disabled(user_id, True)
        finally:
            await store.close()

    asyncio.run(run())


def login(live: LiveServer, email: str, password: str = "pw-123456-long") -> httpx.Response:
    with httpx.Client(base_url=live.url, timeout=30) as http:
        return http.post("/api/auth/login", json={"email": email, "password": password})


def bearer(live: LiveServer, token: str) -> httpx.Client:
    return httpx.Client(base_url=live.url, headers={"Authorization": f"Bearer {token}"}, timeout=30)


def assert_cmd_error(answer: httpx.Response, status: int) -> dict[str, Any]:
    assert answer.status_code == status, answer.text
    body: dict[str, Any] = answer.json()
    assert set(body) == {"error", "message", "details", "code"}
    return body


def test_configured_admin_logs_in_with_documented_fields(server: LiveServer) -> None:
    answer = login(server, "Root@Example.com", ADMIN[1])
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["success"] is True and body["expiresIn"] == "24h"
    assert body["token"].count(".") == 2
    assert body["user"]["email"] == ADMIN[0] and body["user"]["role"] == "admin"
    assert body["user"]["id"].startswith("user-")
    cookie = answer.headers["set-cookie"].lower()
    assert "auth_token=" in cookie and "httponly" in cookie and "samesite=lax" in cookie


def test_wrong_password_and_unknown_email_are_one_401(server: LiveServer) -> None:
    wrong = assert_cmd_error(login(server, ADMIN[0], "nope"), 401)
    unknown = assert_cmd_error(login(server, "ghost@example.com", "nope"), 401)
    assert wrong == unknown
    assert wrong["error"] == "Invalid credentials"
    assert wrong["message"] == "Email or password incorrect"
    assert assert_cmd_error(login(server, ADMIN[0], ""), 401)["code"] == "INVALID_CREDENTIALS"


def test_missing_field_is_a_cmd_400(server: LiveServer) -> None:
    with httpx.Client(base_url=server.url, timeout=30) as http:
        answer = http.post("/api/auth/login", json={"email": ADMIN[0]})
    assert assert_cmd_error(answer, 400)["details"] == {"field": "password"}


def test_viewer_jwt_reads_native_api_but_may_not_submit(server: LiveServer) -> None:
    add_user(server, "viewer@example.com", "viewer")
    token = login(server, "viewer@example.com").json()["token"]
    with bearer(server, token) as http:
        assert http.get("/api/v1/jobs").status_code == 200
        assert http.post("/api/v1/jobs", json=JOB).status_code == 403


def test_cookie_alone_authenticates(server: LiveServer) -> None:
    add_user(server, "sub@example.com", "submitter")
    with httpx.Client(base_url=server.url, timeout=30) as http:
        assert http.post(
            "/api/auth/login", json={"email": "sub@example.com", "password": "pw-123456-long"}
        ).is_success
        assert "auth_token" in http.cookies
        assert http.post("/api/v1/jobs", json=JOB).status_code == 201


def test_logout_revokes_the_token(server: LiveServer) -> None:
    token = login(server, *ADMIN).json()["token"]
    with bearer(server, token) as http:
        answer = http.post("/api/auth/logout")
        assert answer.json() == {"success": True, "message": "Logged out successfully"}
        assert http.get("/api/v1/jobs").status_code == 401
        assert_cmd_error(http.post("/api/auth/logout"), 401)
        assert_cmd_error(http.post("/api/auth/refresh"), 401)


def test_refresh_issues_a_new_working_token_and_retires_the_old(server: LiveServer) -> None:
    old = login(server, *ADMIN).json()["token"]
    with bearer(server, old) as http:
        answer = http.post("/api/auth/refresh")
    assert answer.status_code == 200 and answer.json()["success"] is True
    new = answer.json()["token"]
    assert new != old
    with bearer(server, new) as http:
        assert http.post("/api/v1/jobs", json=JOB).status_code == 201
    with bearer(server, old) as http:
        assert http.get("/api/v1/jobs").status_code == 401


def test_no_token_and_garbage_token_are_401(server: LiveServer) -> None:
    with httpx.Client(base_url=server.url, timeout=30) as http:
        assert_cmd_error(http.post("/api/auth/logout"), 401)
    with bearer(server, "a.b.c") as http:
        assert http.get("/api/v1/jobs").status_code == 401


def test_role_change_and_disabling_apply_on_the_next_request(server: LiveServer) -> None:
    user_id = add_user(server, "sam@example.com", "submitter")
    token = login(server, "sam@example.com").json()["token"]
    with bearer(server, token) as http:
        assert http.post("/api/v1/jobs", json=JOB).status_code == 201
        change_user(server, user_id, role="viewer")
        assert http.post("/api/v1/jobs", json=JOB).status_code == 403
        assert http.get("/api/v1/jobs").status_code == 200
        change_user(server, user_id, off=True)
        assert http.get("/api/v1/jobs").status_code == 401
    assert_cmd_error(login(server, "sam@example.com"), 401)


def test_opaque_admin_token_still_works(server: LiveServer) -> None:
    assert server.admin_token.startswith("crl_")
    with server.client() as http:
        assert http.post("/api/v1/jobs", json=JOB).status_code == 201
        assert http.post("/api/auth/refresh").status_code == 401


def test_cli_refuses_duplicate_and_worker_role(server: LiveServer) -> None:
    add_user(server, "dup@example.com", "viewer")
    for email, role in (("dup@example.com", "viewer"), ("w@example.com", "worker")):
        with pytest.raises(subprocess.CalledProcessError) as failed:
            add_user(server, email, role)
        assert failed.value.returncode == 2


def test_short_jwt_secret_refuses_to_start(tmp_path: Path) -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="32 bytes"), run_server(tmp_path, jwt_secret="short"):
        pass


def test_configured_secret_signs_tokens_across_restarts(tmp_path: Path) -> None:
    secret = "s" * 40
    with run_server(
        tmp_path / "d", jwt_secret=secret, admin_email="a@x.io", admin_password="a-long-password"
    ):
        pass
    with run_server(tmp_path / "d", jwt_secret=secret) as live:
        token = login(live, "a@x.io", "a-long-password").json()["token"]
    with run_server(tmp_path / "d", jwt_secret=secret) as live, bearer(live, token) as http:
        assert http.get("/api/v1/jobs").status_code == 200


def test_generated_secret_is_kept_in_the_database(tmp_path: Path) -> None:
    """No configured secret: the one made on first start signs for every later start."""
    with run_server(tmp_path / "d", admin_email="a@x.io", admin_password="a-long-password") as live:
        token = login(live, "a@x.io", "a-long-password").json()["token"]
    with run_server(tmp_path / "d") as live, bearer(live, token) as http:
        assert http.get("/api/v1/jobs").status_code == 200
