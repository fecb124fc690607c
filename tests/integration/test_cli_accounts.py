"""Issue 14, items 1-3: the account commands through the real `corral`, tokens over HTTP.

Every CLI call is a real subprocess with its own ``XDG_CONFIG_HOME`` (the saved
login lives there) and a clean ``CORRAL_*`` environment. Prompts are driven
through a real pseudo-terminal, so "never echoed" is what a terminal shows.
"""

from __future__ import annotations

import json
import os
import pty
import select
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.live import LiveServer, run_server
from tests.processes import CORRAL, clean_env, free_port, poll

ADMIN = ("root@example.com", "admin-password")
PASSWORD = "a-submitter-password"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    data = tmp_path_factory.mktemp("accounts") / "data"
    email, password = ADMIN
    with run_server(
        data, admin_email=email, admin_password=password, login_rate_limit="off"
    ) as live:
        yield live


def corral(
    *args: str, home: Path, stdin: str = "", cwd: Path | None = None, **env: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CORRAL, *args],
        input=stdin,
        env=clean_env(XDG_CONFIG_HOME=str(home), **env),
        cwd=cwd or home,
        capture_output=True,
        text=True,
        timeout=60,
    )


def add_user(live: LiveServer, email: str, role: str = "submitter") -> str:
    with live.client() as http:
        body = {"email": email, "password": PASSWORD, "role": role}
        answer = http.post("/api/v1/admin/users", json=body)
        assert answer.status_code == 201, answer.text
        user_id: str = answer.json()["id"]
        return user_id


def login_jwt(live: LiveServer, email: str, password: str = PASSWORD) -> str:
    with httpx.Client(base_url=live.url, timeout=30) as http:
        answer = http.post("/api/auth/login", json={"email": email, "password": password})
        assert answer.status_code == 200, answer.text
        token: str = answer.json()["token"]
        return token


def status_with(live: LiveServer, token: str, path: str = "/api/v1/jobs") -> int:
    with live.client(token) as http:
        return http.get(path, params={"limit": 1}).status_code


# --- item 1: commands that open the database find it or refuse ------------------------


def test_item1_token_and_user_commands_refuse_without_a_database(tmp_path: Path) -> None:
    default = tmp_path / "corral-data" / "corral.sqlite3"
    commands = [
        ("token", "create", "--role", "viewer"),
        ("token", "list"),
        ("token", "revoke", "some-id"),
        ("user", "list"),
        ("user", "create", "--email", "a@example.com", "--role", "viewer", "--password-stdin"),
    ]
    for command in commands:
        done = corral(*command, home=tmp_path, stdin="a-long-password\n")
        assert done.returncode == 2, (command, done.stdout, done.stderr)
        assert done.stdout == ""  # no token printed
        for hint in (str(default), "--data-dir", "CORRAL_DATA_DIR", "--database-url"):
            assert hint in done.stderr, (command, done.stderr)
    elsewhere = tmp_path / "elsewhere"
    done = corral(
        "token", "create", "--role", "viewer", home=tmp_path, CORRAL_DATA_DIR=str(elsewhere)
    )
    assert done.returncode == 2 and str(elsewhere / "corral.sqlite3") in done.stderr
    assert not (tmp_path / "corral-data").exists() and not elsewhere.exists()


# --- item 2: tokens over HTTP, expiry, last use, personal tokens ------------------------


def test_item2_token_create_list_revoke_over_http(server: LiveServer, tmp_path: Path) -> None:
    env = {"CORRAL_URL": server.url, "CORRAL_TOKEN": server.admin_token}
    made = corral(
        "token",
        "create",
        "--role",
        "viewer",
        "--name",
        "ci-http",
        "--expires-in",
        "1h",
        home=tmp_path,
        **env,
    )
    assert made.returncode == 0, made.stderr
    secret = made.stdout.strip()
    assert status_with(server, secret) == 200
    assert status_with(server, secret) == 200

    listed = corral("token", "list", "--json", home=tmp_path, **env)
    assert listed.returncode == 0, listed.stderr
    (row,) = [r for r in json.loads(listed.stdout) if r["name"] == "ci-http"]
    assert (row["role"], row["state"]) == ("viewer", "active")
    assert row["expires_at"] is not None and row["last_used_at"] is not None
    assert "token" not in row and "token_hash" not in row
    table = corral("token", "list", home=tmp_path, **env).stdout.splitlines()
    assert table[0].split("\t") == [
        "id",
        "name",
        "role",
        "state",
        "owner",
        "expires_at",
        "last_used_at",
    ]

    revoked = corral("token", "revoke", row["id"], home=tmp_path, **env)
    assert revoked.returncode == 0 and revoked.stdout == f"{row['id']} revoked\n"
    assert status_with(server, secret) == 401  # at once on the replica that revoked it
    again = json.loads(corral("token", "list", "--json", home=tmp_path, **env).stdout)
    assert [r["state"] for r in again if r["id"] == row["id"]] == ["revoked"]
    unknown = corral("token", "revoke", "no-such-token", home=tmp_path, **env)
    assert unknown.returncode == 2 and "token not found" in unknown.stderr


def test_item2_last_use_is_written_at_most_once_a_minute(server: LiveServer) -> None:
    secret = server.token("viewer")
    with server.client() as admin:
        assert status_with(server, secret) == 200
        first = _row_of(server, admin, secret)
        time.sleep(0.05)
        for _ in range(5):
            assert status_with(server, secret) == 200
        assert _row_of(server, admin, secret)["last_used_at"] == first["last_used_at"] is not None


def _row_of(live: LiveServer, admin: httpx.Client, secret: str) -> dict[str, Any]:
    with live.client(secret) as http:
        token_id = http.get("/api/v1/me").json()["token"]["id"]
    rows = admin.get("/api/v1/admin/tokens").json()
    return next(r for r in rows if r["id"] == token_id)


def test_item2_an_expired_token_is_refused(server: LiveServer) -> None:
    with server.client() as admin:
        made = admin.post("/api/v1/admin/tokens", json={"role": "viewer", "expires_in": 1})
        assert made.status_code == 201 and made.json()["expires_at"] is not None
        secret = made.json()["token"]
        assert status_with(server, secret) == 200
        poll(lambda: status_with(server, secret) == 401, 5, "the token to expire")
        with server.client(secret) as http:
            assert http.get("/api/v1/jobs").json()["error"] == "token expired"
        too_long = admin.post("/api/v1/admin/tokens", json={"role": "viewer", "expires_in": 0})
        assert too_long.status_code == 400 and too_long.json()["context"] == {"field": "expires_in"}


def test_item2_personal_tokens_act_as_their_user(server: LiveServer) -> None:
    user_id = add_user(server, "pat@example.com")
    other = login_jwt(server, ADMIN[0], ADMIN[1])
    with server.client(login_jwt(server, "pat@example.com")) as pat:
        made = pat.post("/api/v1/me/tokens", json={"name": "laptop", "expires_in": 3600})
        assert made.status_code == 201, made.text
        token = made.json()
        assert (token["role"], token["user_id"], token["state"]) == ("submitter", user_id, "active")
        assert [t["id"] for t in pat.get("/api/v1/me/tokens").json()] == [token["id"]]
    with server.client(token["token"]) as personal:
        me = personal.get("/api/v1/me").json()
        assert (me["id"], me["name"], me["role"]) == (user_id, "pat@example.com", "submitter")
        assert me["token"]["id"] == token["id"]
        job = personal.post("/api/v1/jobs", json={"command": "true"})
        assert job.status_code == 201, job.text
        assert personal.get("/api/v1/admin/tokens").status_code == 403
    with server.client(other) as admin:
        listed = {t["id"]: t["user_id"] for t in admin.get("/api/v1/admin/tokens").json()}
        assert listed[token["id"]] == user_id
        # someone else's token is not theirs to revoke, even for an admin, on /me
        refused = admin.delete(f"/api/v1/me/tokens/{token['id']}")
        assert refused.status_code == 404 and refused.json()["error"] == "token not found"
        # the token follows its user's role: demoted to viewer, it may no longer submit
        assert admin.patch(f"/api/v1/admin/users/{user_id}", json={"role": "viewer"}).is_success
        with server.client(token["token"]) as personal:
            submit = lambda: personal.post("/api/v1/jobs", json={"command": "true"})  # noqa: E731
            poll(lambda: submit().status_code == 403, 5, "the demoted user's token")
        assert admin.patch(f"/api/v1/admin/users/{user_id}", json={"disabled": True}).is_success
    poll(lambda: status_with(server, token["token"]) == 401, 5, "a disabled user's token")
    with server.client(server.admin_token) as api_token:  # not a user: no personal tokens
        answer = api_token.post("/api/v1/me/tokens", json={"name": "x"})
        assert answer.status_code == 400 and set(answer.json()) == {"error", "context"}


def test_item2_login_whoami_logout_through_the_cli(server: LiveServer, tmp_path: Path) -> None:
    add_user(server, "cli@example.com")
    wrong = corral(
        "login",
        server.url,
        "--email",
        "cli@example.com",
        "--password-stdin",
        home=tmp_path,
        stdin="not-the-password\n",
    )
    assert wrong.returncode != 0 and "Invalid credentials" in wrong.stderr
    saved = tmp_path / "corral" / "config.json"
    assert not saved.exists()

    done = corral(
        "login",
        server.url,
        "--email",
        "cli@example.com",
        "--password-stdin",
        home=tmp_path,
        stdin=PASSWORD + "\n",
    )
    assert done.returncode == 0, done.stderr
    assert saved.stat().st_mode & 0o777 == 0o600 and saved.parent.stat().st_mode & 0o777 == 0o700
    kept = json.loads(saved.read_text())
    assert set(kept) == {"url", "token", "token_id", "email"} and PASSWORD not in saved.read_text()

    who = corral("whoami", home=tmp_path)
    assert who.returncode == 0, who.stderr
    assert who.stdout.startswith(f"cli@example.com (submitter) on {server.url}, via token")
    assert corral("jobs", "--json", home=tmp_path).returncode == 0  # other commands use it
    mine = json.loads(corral("token", "list", "--json", home=tmp_path).stdout)
    assert [t["id"] for t in mine] == [kept["token_id"]]
    assert mine[0]["name"].startswith("corral login on ") and mine[0]["expires_at"]

    out = corral("logout", home=tmp_path)
    assert out.returncode == 0 and out.stdout == f"logged out of {server.url}\n"
    assert not saved.exists()
    assert status_with(server, kept["token"]) == 401  # revoked on the server, not only forgotten
    after = corral("whoami", home=tmp_path)
    assert after.returncode == 1 and "no token" in after.stderr


def test_item2_a_saved_token_is_never_sent_to_another_server(
    server: LiveServer, tmp_path: Path
) -> None:
    assert corral("login", server.url, "--token", server.admin_token, home=tmp_path).returncode == 0
    elsewhere = f"http://127.0.0.1:{free_port()}"
    done = corral("whoami", home=tmp_path, CORRAL_URL=elsewhere)
    assert done.returncode == 1 and f"no token for {elsewhere}" in done.stderr


# --- prompts on a real terminal --------------------------------------------------------


def on_terminal(args: list[str], answers: list[tuple[str, str]], home: Path) -> tuple[int, str]:
    """Run ``corral`` on a pseudo-terminal, typing each answer after its prompt appears;
    return the exit status and everything the terminal showed (echoes included)."""
    main, other = pty.openpty()
    process = subprocess.Popen(
        [*CORRAL, *args],
        stdin=other,
        stdout=other,
        stderr=other,
        env=clean_env(XDG_CONFIG_HOME=str(home)),
        start_new_session=True,  # no controlling terminal: getpass uses this one, stdin
    )
    os.close(other)
    shown = b""
    pending = list(answers)
    deadline = time.monotonic() + 30
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([main], [], [], 0.2)
            if ready:
                try:
                    chunk = os.read(main, 4096)
                except OSError:  # EIO: the process closed the terminal
                    break
                if not chunk:
                    break
                shown += chunk
            if pending and pending[0][0].encode() in shown.split(b"\n")[-1]:
                os.write(main, pending.pop(0)[1].encode() + b"\n")
        return process.wait(timeout=30), shown.decode(errors="replace")
    finally:
        os.close(main)
        if process.poll() is None:
            process.kill()
            process.wait()


def test_item2_login_prompts_for_the_password_without_echo(
    server: LiveServer, tmp_path: Path
) -> None:
    add_user(server, "tty@example.com")
    answers = [("Email", "tty@example.com"), ("Password", PASSWORD)]
    status, shown = on_terminal(["login", server.url], answers, tmp_path)
    assert status == 0, shown
    assert "tty@example.com" in shown  # the email is echoed as typed
    assert PASSWORD not in shown  # the password never is
    assert "logged in to" in shown


def test_item3_user_create_prompts_twice_without_echo(server: LiveServer, tmp_path: Path) -> None:
    data = str(server.settings.data_dir)
    args = [
        "user",
        "create",
        "--email",
        "typed@example.com",
        "--role",
        "viewer",
        "--data-dir",
        data,
    ]
    typed = "typed-but-hidden-1"
    mismatch = [("Password", typed), ("Repeat", "something-else-2")]
    status, shown = on_terminal(args, mismatch, tmp_path)
    assert status == 2 and "differ" in shown and typed not in shown
    status, shown = on_terminal(args, [("Password", "short")], tmp_path)
    assert status == 2 and "at least 12 characters" in shown
    status, shown = on_terminal(args, [("Password", typed), ("Repeat", typed)], tmp_path)
    assert status == 0 and typed not in shown, shown
    assert login_jwt(server, "typed@example.com", typed)


# --- item 3: the password policy, everywhere a password is set ----------------------------


def test_item3_short_and_common_passwords_are_refused(server: LiveServer, tmp_path: Path) -> None:
    with server.client() as admin:
        for password, reason in [
            ("eleven-char", "at least 12 characters"),
            ("Password1234", "too common"),
            ("aaaaaaaaaaaaaaaa", "too common"),
        ]:
            body = {"email": "weak@example.com", "password": password, "role": "viewer"}
            answer = admin.post("/api/v1/admin/users", json=body)
            assert answer.status_code == 400, answer.text
            assert reason in answer.json()["error"]
            assert answer.json()["context"] == {"field": "password"}
        user_id = add_user(server, "reset@example.com")
        reset = admin.patch(f"/api/v1/admin/users/{user_id}", json={"password": "short"})
        assert reset.status_code == 400 and "at least 12" in reset.json()["error"]
    data = str(server.settings.data_dir)
    cli = corral(
        "user",
        "create",
        "--email",
        "weak@example.com",
        "--role",
        "viewer",
        "--password-stdin",
        "--data-dir",
        data,
        home=tmp_path,
        stdin="qwerty123456\n",
    )
    assert cli.returncode == 2 and "too common" in cli.stderr
    refused = corral(
        "server",
        "--port",
        str(free_port()),
        "--data-dir",
        str(tmp_path / "d"),
        home=tmp_path,
        CORRAL_ADMIN_EMAIL="a@example.com",
        CORRAL_ADMIN_PASSWORD="short",
    )
    assert refused.returncode == 2
    assert "CORRAL_ADMIN_PASSWORD: password must be at least 12 characters" in refused.stderr


# --- item 2: --version, and -h on every command -----------------------------------------


# Run inside one process, since a process per command costs seconds each on a busy
# machine: the same typer app `corral` runs, given each command's argv in turn.
EVERY_HELP = """
import contextlib, io, json, sys
import typer.main
from corral.cli.main import app

def walk(command, path):
    yield path
    for name, sub in getattr(command, "commands", {}).items():
        yield from walk(sub, [*path, name])

answers = {}
for path in walk(typer.main.get_command(app), []):
    for flag in ("-h", "--help"):
        out = io.StringIO()
        code = 0
        with contextlib.redirect_stdout(out):
            try:
                app([*path, flag], prog_name="corral")
            except SystemExit as exc:
                code = exc.code or 0
        answers[" ".join([*path, flag])] = [code, "Usage: corral" in out.getvalue()]
print(json.dumps(answers))
"""


def test_item2_version_and_short_help_on_every_command(tmp_path: Path) -> None:
    from corral import __version__

    version = corral("--version", home=tmp_path)
    assert (version.returncode, version.stdout) == (0, f"corral {__version__}\n")
    short = corral("token", "create", "-h", home=tmp_path)
    assert short.returncode == 0 and "--expires-in" in short.stdout
    walked = subprocess.run(
        [sys.executable, "-c", EVERY_HELP],
        env=clean_env(XDG_CONFIG_HOME=str(tmp_path), COLUMNS="100"),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    answers = json.loads(walked.stdout)
    for command in ("token list -h", "user reset-password -h", "login -h", "whoami -h", "-h"):
        assert command in answers
    assert {command for command, answer in answers.items() if answer != [0, True]} == set()
    assert len(answers) >= 40
    assert not (tmp_path / "corral-data").exists()  # help never opens a database
