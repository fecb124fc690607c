"""Issue 4's list of attacks, each over real HTTP against one server: every one is
refused with the right status, writes nothing, and leaves the server answering.

The deeper tests of each defence live beside it (test_cmd_auth, test_ratelimit,
test_body_limits, test_env_safety, test_upload_archives...); this file is the
checklist, run as an attacker would.
"""

from __future__ import annotations

import base64
import io
import json
import sqlite3
import time
import zipfile
from collections.abc import Callable, Iterator

import httpx
import jwt
import pytest

from tests.live import LiveServer, run_server

SECRET = "s" * 64  # a configured signing secret, so the test can forge and expire tokens
ADMIN = ("root@example.com", "admin-password")
JOB = {"command": "echo pwned"}

Attack = Callable[[LiveServer], httpx.Response]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    email, password = ADMIN
    data = tmp_path_factory.mktemp("security") / "data"
    with run_server(
        data,
        admin_email=email,
        admin_password=password,
        jwt_secret=SECRET,
        login_rate_limit="5/minute",
        max_json_bytes=64 << 10,
    ) as live:
        yield live


def login(live: LiveServer, email: str = ADMIN[0], password: str = ADMIN[1]) -> httpx.Response:
    return httpx.post(
        f"{live.url}/api/auth/login",
        json={"email": email, "password": password},
        # One client address per account, so the brute-force run cannot lock the admin out.
        headers={"X-Forwarded-For": "198.51.100.1" if email == ADMIN[0] else "198.51.100.2"},
    )


def admin_jwt(live: LiveServer) -> str:
    answer = login(live)
    assert answer.status_code == 200, answer.text
    token: str = answer.json()["token"]
    return token


def submit_with(live: LiveServer, token: str) -> httpx.Response:
    return httpx.post(
        f"{live.url}/api/jobs/submit", json=JOB, headers={"Authorization": f"Bearer {token}"}
    )


def alg_none(live: LiveServer) -> httpx.Response:
    claims = jwt.decode(admin_jwt(live), options={"verify_signature": False})
    header = base64.urlsafe_b64encode(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    body = base64.urlsafe_b64encode(json.dumps(claims).encode())
    forged = f"{header.decode().rstrip('=')}.{body.decode().rstrip('=')}."
    return submit_with(live, forged)


def tampered(live: LiveServer) -> httpx.Response:
    head, payload, signature = admin_jwt(live).split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["sub"] = "user-someone-else"
    forged_payload = base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("=")
    return submit_with(live, f"{head}.{forged_payload}.{signature}")


def expired(live: LiveServer) -> httpx.Response:
    claims = jwt.decode(admin_jwt(live), SECRET, algorithms=["HS256"])
    past = int(time.time()) - 3600
    old = jwt.encode({**claims, "iat": past - 86400, "exp": past}, SECRET, algorithm="HS256")
    return submit_with(live, old)


def after_logout(live: LiveServer) -> httpx.Response:
    token = admin_jwt(live)
    out = httpx.post(f"{live.url}/api/auth/logout", headers={"Authorization": f"Bearer {token}"})
    assert out.status_code == 200
    return submit_with(live, token)


def brute_force(live: LiveServer) -> httpx.Response:
    answers = [login(live, "victim@example.com", f"guess-{n}") for n in range(8)]
    assert {a.status_code for a in answers[:5]} == {401}
    return answers[-1]


def oversized(live: LiveServer) -> httpx.Response:
    body = {"command": "echo " + "x" * (128 << 10)}
    return httpx.post(
        f"{live.url}/api/jobs/submit",
        json=body,
        headers={"Authorization": f"Bearer {live.admin_token}"},
    )


def loader_env(live: LiveServer) -> httpx.Response:
    body = {**JOB, "env": {"LD_PRELOAD": "/tmp/evil.so"}}
    return httpx.post(
        f"{live.url}/api/jobs/submit",
        json=body,
        headers={"Authorization": f"Bearer {live.admin_token}"},
    )


def worker_token_submits(live: LiveServer) -> httpx.Response:
    join = live.token("worker")
    registered = httpx.post(
        f"{live.url}/api/workers/register",
        json={"workerId": "sec-worker"},
        headers={"Authorization": f"Bearer {join}"},
    )
    assert registered.status_code == 201, registered.text
    token = registered.json()["token"]
    return httpx.post(f"{live.url}/api/jobs/submit", json=JOB, headers={"x-worker-token": token})


def zip_slip_upload(live: LiveServer) -> httpx.Response:
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("../../escaped.txt", "pwned")
    files = {"file": ("slip.zip", archive.getvalue(), "application/zip")}
    headers = {"Authorization": f"Bearer {live.admin_token}"}
    return httpx.post(f"{live.url}/api/files/upload", files=files, headers=headers)


def zip_bomb_upload(live: LiveServer) -> httpx.Response:
    """Twenty entries of 64 MiB of zeros: about 1.3 GiB inflated from ~1.3 MiB sent."""
    archive = io.BytesIO()
    zeros = bytes(64 << 20)
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        for n in range(20):
            zf.writestr(f"zeros-{n}.bin", zeros)
    files = {"file": ("bomb.zip", archive.getvalue(), "application/zip")}
    headers = {"Authorization": f"Bearer {live.admin_token}"}
    return httpx.post(f"{live.url}/api/files/upload", files=files, headers=headers, timeout=60)


def viewer_submits(live: LiveServer) -> httpx.Response:
    return submit_with(live, live.token("viewer"))


ATTACKS: dict[str, tuple[Attack, int]] = {
    "alg=none token": (alg_none, 401),
    "tampered token": (tampered, 401),
    "expired token": (expired, 401),
    "token used after logout": (after_logout, 401),
    "brute-force login": (brute_force, 429),
    "oversized JSON body": (oversized, 413),
    "loader variable in env": (loader_env, 400),
    "worker token on a user endpoint": (worker_token_submits, 403),
    "viewer submitting": (viewer_submits, 403),
    "zip-slip upload": (zip_slip_upload, 400),
    "zip-bomb upload": (zip_bomb_upload, 400),
}


def stored_rows(live: LiveServer) -> tuple[int, int]:
    """Files and file chunks in the database, read-only, beside the running server."""
    uri = f"file:{live.settings.sqlite_path}?mode=ro"
    with sqlite3.connect(uri, uri=True) as db:
        files = db.execute("SELECT count(*) FROM files").fetchone()[0]
        chunks = db.execute("SELECT count(*) FROM file_chunks").fetchone()[0]
    return int(files), int(chunks)


def job_count(live: LiveServer) -> int:
    with live.client() as http:
        answer = http.get("/api/jobs/list", params={"limit": 1})
        assert answer.status_code == 200
        total: int = answer.json()["total"]
        return total


@pytest.mark.parametrize("name", list(ATTACKS))
def test_attack_is_refused_writes_nothing_and_the_server_stays_up(
    server: LiveServer, name: str
) -> None:
    attack, status = ATTACKS[name]
    before = job_count(server), stored_rows(server)
    answer = attack(server)
    assert answer.status_code == status, (name, answer.status_code, answer.text)
    body = answer.json()
    assert set(body) >= {"error", "message"}, body  # CMD Executor's error shape
    assert (job_count(server), stored_rows(server)) == before
    assert httpx.get(f"{server.url}/api/v1/health").status_code == 200
