"""The native admin users API over real HTTP, with login JWTs: changes apply on the next request."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from corral.auth import jwt_tokens
from tests.live import LiveServer, run_server

ADMIN = ("root@example.com", "admin-password")
USERS = "/api/v1/admin/users"
JOB = {"command": "echo hi"}
USER_FIELDS = {"id", "email", "role", "disabled", "created_at"}


@pytest.fixture
def server(tmp_path: Path) -> Iterator[LiveServer]:
    email, password = ADMIN
    with run_server(tmp_path / "data", admin_email=email, admin_password=password) as live:
        yield live


def login(live: LiveServer, email: str, password: str) -> httpx.Response:
    with httpx.Client(base_url=live.url, timeout=30) as http:
        return http.post("/api/auth/login", json={"email": email, "password": password})


def jwt(live: LiveServer, email: str, password: str) -> str:
    answer = login(live, email, password)
    assert answer.status_code == 200, answer.text
    token: str = answer.json()["token"]
    return token


def no_hash(answer: httpx.Response) -> Any:
    """Every answer of this API: no password, no hash, whatever the status."""
    assert "argon2" not in answer.text and "password_hash" not in answer.text
    body = answer.json()
    for user in body if isinstance(body, list) else [body]:
        assert "password" not in user
    return body


def user(body: dict[str, Any], email: str, role: str, disabled: bool = False) -> None:
    assert set(body) == USER_FIELDS
    assert (body["email"], body["role"], body["disabled"]) == (email, role, disabled)
    assert body["id"].startswith("user-") and body["created_at"].endswith("Z")


def assert_error(answer: httpx.Response, status: int) -> dict[str, Any]:
    assert answer.status_code == status, answer.text
    body: dict[str, Any] = no_hash(answer)
    assert set(body) == {"error", "context"}
    return body


@pytest.fixture
def admin(server: LiveServer) -> Iterator[httpx.Client]:
    with server.client(jwt(server, *ADMIN)) as http:
        yield http


def add(admin: httpx.Client, email: str, role: str, password: str = "pw-123456-long") -> str:
    answer = admin.post(USERS, json={"email": email, "password": password, "role": role})
    assert answer.status_code == 201, answer.text
    user(no_hash(answer), email.strip().lower(), role)
    user_id: str = answer.json()["id"]
    return user_id


def test_admin_lists_creates_and_changes_users(admin: httpx.Client) -> None:
    user_id = add(admin, "Ann@Example.com ", "submitter")  # stored trimmed and lower-cased
    listed = admin.get(USERS)
    assert listed.status_code == 200 and listed.headers["X-Total-Count"] == "2"
    root, ann = no_hash(listed)
    user(root, ADMIN[0], "admin")
    user(ann, "ann@example.com", "submitter")
    changed = admin.patch(f"{USERS}/{user_id}", json={"role": "viewer", "disabled": True})
    assert changed.status_code == 200
    user(no_hash(changed), "ann@example.com", "viewer", disabled=True)
    same = admin.patch(f"{USERS}/{user_id}", json={})  # an empty change is a no-op
    user(no_hash(same), "ann@example.com", "viewer", disabled=True)
    assert no_hash(admin.get(USERS))[1] == same.json()


def test_admin_users_need_an_admin(server: LiveServer, admin: httpx.Client) -> None:
    user_id = add(admin, "sub@example.com", "submitter")
    for token in (jwt(server, "sub@example.com", "pw-123456-long"), server.token("viewer")):
        with server.client(token) as http:
            assert_error(http.get(USERS), 403)
            new = {"email": "x@example.com", "password": "pw", "role": "admin"}
            assert_error(http.post(USERS, json=new), 403)
            assert_error(http.patch(f"{USERS}/{user_id}", json={"role": "admin"}), 403)
    with httpx.Client(base_url=server.url, timeout=30) as anonymous:
        assert_error(anonymous.get(USERS), 401)
    assert [u["email"] for u in admin.get(USERS).json()] == [ADMIN[0], "sub@example.com"]


def test_role_downgrade_applies_to_the_next_request(
    server: LiveServer, admin: httpx.Client
) -> None:
    user_id = add(admin, "sub@example.com", "submitter")
    with server.client(jwt(server, "sub@example.com", "pw-123456-long")) as http:
        assert http.post("/api/v1/jobs", json=JOB).status_code == 201
        assert admin.patch(f"{USERS}/{user_id}", json={"role": "viewer"}).status_code == 200
        assert_error(http.post("/api/v1/jobs", json=JOB), 403)
        assert http.get("/api/v1/jobs").status_code == 200


def test_item17_disabling_ends_live_tokens_for_good(
    server: LiveServer, admin: httpx.Client
) -> None:
    user_id = add(admin, "sub@example.com", "submitter")
    with server.client(jwt(server, "sub@example.com", "pw-123456-long")) as http:
        assert http.get("/api/v1/jobs").status_code == 200
        assert admin.patch(f"{USERS}/{user_id}", json={"disabled": True}).status_code == 200
        assert_error(http.get("/api/v1/jobs"), 401)
        assert login(server, "sub@example.com", "pw-123456-long").status_code == 401
        assert admin.patch(f"{USERS}/{user_id}", json={"disabled": False}).status_code == 200
        # Re-enabling the user revives no login issued before the disabling, nor its refresh.
        assert_error(http.get("/api/v1/jobs"), 401)
        assert http.post("/api/auth/refresh").status_code == 401
    assert login(server, "sub@example.com", "pw-123456-long").status_code == 200


def test_password_reset_retires_the_old_password(server: LiveServer, admin: httpx.Client) -> None:
    user_id = add(admin, "sub@example.com", "submitter")
    answer = admin.patch(f"{USERS}/{user_id}", json={"password": "fresh-password"})
    user(no_hash(answer), "sub@example.com", "submitter")
    assert login(server, "sub@example.com", "pw-123456-long").status_code == 401
    assert login(server, "sub@example.com", "fresh-password").status_code == 200


def test_item17_password_reset_ends_earlier_sessions_within_the_same_second(
    server: LiveServer, admin: httpx.Client
) -> None:
    """No sleep: a login and a reset in the same second (``iat`` has whole seconds only)."""
    user_id = add(admin, "leaked@example.com", "submitter")
    old = login(server, "leaked@example.com", "pw-123456-long").json()["token"]
    mine = {"Authorization": f"Bearer {old}"}
    assert httpx.get(f"{server.url}/api/v1/jobs", headers=mine).status_code == 200
    assert admin.patch(f"{USERS}/{user_id}", json={"password": "new-password-2"}).status_code == 200
    assert httpx.get(f"{server.url}/api/v1/jobs", headers=mine).status_code == 401
    fresh = login(server, "leaked@example.com", "new-password-2").json()["token"]
    again = {"Authorization": f"Bearer {fresh}"}
    assert httpx.get(f"{server.url}/api/v1/jobs", headers=again).status_code == 200
    assert httpx.post(f"{server.url}/api/auth/refresh", headers=mine).status_code == 401


def test_item17_a_logged_out_token_is_not_refreshed_back_to_life(tmp_path: Path) -> None:
    """Logged out seconds before its expiry, then refreshed after it (within the refresh
    grace), once another logout has swept the revocations of expired tokens."""
    secret = "s" * 40
    email, password = ADMIN
    with run_server(
        tmp_path / "data", admin_email=email, admin_password=password, jwt_secret=secret
    ) as live:
        admin_id = httpx.get(
            f"{live.url}{USERS}", headers={"Authorization": f"Bearer {jwt(live, *ADMIN)}"}
        ).json()[0]["id"]
        lifetime = jwt_tokens.LIFETIME_SECONDS
        # Four seconds left: the logout must arrive before the expiry on a busy machine.
        expires = time.time() + 4.0
        dying, _ = jwt_tokens.issue(secret.encode(), admin_id, expires - lifetime)
        with live.client(dying) as http:
            assert http.post("/api/auth/logout").status_code == 200
        # now past its expiry, well within the 24 h refresh grace
        time.sleep(max(0.0, expires - time.time()) + 0.1)
        with live.client(jwt(live, *ADMIN)) as other:
            assert other.post("/api/auth/logout").status_code == 200  # sweeps expired ones
        with live.client(dying) as http:
            assert http.post("/api/auth/refresh").status_code == 401


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"email": "new@example.com", "password": "pw", "role": "worker"}, "role"),
        ({"email": "new@example.com", "password": "pw", "role": "root"}, "role"),
        ({"email": "not-an-email", "password": "pw", "role": "viewer"}, "email"),
        ({"email": "@example.com", "password": "pw", "role": "viewer"}, "email"),
        ({"email": "new@example.com", "password": "", "role": "viewer"}, "password"),
        ({"email": "new@example.com", "role": "viewer"}, "password"),
        ({"email": "new@example.com", "password": "pw", "role": "viewer", "x": 1}, "x"),
    ],
)
def test_bad_new_user_is_a_400_and_creates_nothing(
    admin: httpx.Client, body: dict[str, Any], field: str
) -> None:
    assert assert_error(admin.post(USERS, json=body), 400)["context"]["field"] == field
    assert admin.get(USERS).headers["X-Total-Count"] == "1"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"role": "worker", "password": "new-password"}, "role"),
        ({"disabled": True, "password": ""}, "password"),
        ({"role": "viewer", "disabled": "yes"}, "disabled"),
        ({"rol": "viewer"}, "rol"),
    ],
)
def test_bad_change_is_a_400_and_changes_nothing(
    server: LiveServer, admin: httpx.Client, change: dict[str, Any], field: str
) -> None:
    user_id = add(admin, "sub@example.com", "submitter")
    answer = admin.patch(f"{USERS}/{user_id}", json=change)
    assert assert_error(answer, 400)["context"]["field"] == field
    user(admin.get(USERS).json()[1], "sub@example.com", "submitter")
    assert login(server, "sub@example.com", "pw-123456-long").status_code == 200


def test_unknown_user_and_taken_email(admin: httpx.Client) -> None:
    assert_error(admin.patch(f"{USERS}/user-nobody", json={"role": "viewer"}), 404)
    body = {"email": ADMIN[0].upper(), "password": "pw-123456-long", "role": "viewer"}
    assert_error(admin.post(USERS, json=body), 409)


def test_an_admin_may_not_lock_themselves_out(server: LiveServer, admin: httpx.Client) -> None:
    me = admin.get(USERS).json()[0]["id"]
    for change, field in (({"disabled": True}, "disabled"), ({"role": "viewer"}, "role")):
        answer = assert_error(admin.patch(f"{USERS}/{me}", json=change), 400)
        assert answer["context"] == {"field": field}
    # Harmless changes to oneself are allowed, and another admin may demote this one.
    assert admin.patch(f"{USERS}/{me}", json={"role": "admin", "disabled": False}).is_success
    other = add(admin, "second@example.com", "admin")
    with server.client(jwt(server, "second@example.com", "pw-123456-long")) as second:
        user(no_hash(second.patch(f"{USERS}/{me}", json={"role": "viewer"})), ADMIN[0], "viewer")
        assert_error(admin.get(USERS), 403)
        assert second.patch(f"{USERS}/{other}", json={"disabled": True}).status_code == 400
