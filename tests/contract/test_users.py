"""Users, revoked JWT ids and shared secrets, on both stores."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest

from corral.errors import AlreadyExists, NotFound
from corral.store.accounts_port import UserRecord
from corral.store.base import Store
from tests.contract.contract_support import NOW


def user(user_id: str = "user-1", email: str = "ann@example.com") -> UserRecord:
    return UserRecord(
        id=user_id, email=email, password_hash="$argon2id$x", role="viewer", created_at=NOW
    )


async def test_create_find_get_count(store: Store) -> None:
    assert await store.count_users() == 0
    assert await store.find_user_by_email("ann@example.com") is None
    await store.create_user(user())
    assert await store.count_users() == 1
    assert await store.find_user_by_email("ann@example.com") == user()
    assert await store.get_user("user-1") == user()
    assert await store.get_user("user-2") is None


async def test_email_and_id_are_unique(store: Store) -> None:
    await store.create_user(user())
    with pytest.raises(AlreadyExists):
        await store.create_user(user("user-2"))
    with pytest.raises(AlreadyExists):
        await store.create_user(user(email="bob@example.com"))
    assert await store.count_users() == 1


async def test_role_and_disabled_changes(store: Store) -> None:
    await store.create_user(user())
    await store.set_user_role("user-1", "admin")
    await store.set_user_disabled("user-1", True)
    changed = await store.get_user("user-1")
    assert changed is not None and changed.role == "admin" and changed.disabled
    await store.set_user_disabled("user-1", False)
    again = await store.get_user("user-1")
    assert again is not None and not again.disabled
    with pytest.raises(NotFound):
        await store.set_user_role("nobody", "admin")
    with pytest.raises(NotFound):
        await store.set_user_disabled("nobody", True)


async def test_revoked_jtis_are_kept_until_expiry(store: Store) -> None:
    assert not await store.is_revoked("jti-1")
    await store.revoke_jti("jti-1", NOW + 10, NOW)
    await store.revoke_jti("jti-1", NOW + 10, NOW)  # logging out twice is harmless
    assert await store.is_revoked("jti-1")
    # A later revocation sweeps ids whose tokens have expired anyway.
    await store.revoke_jti("jti-2", NOW + 100, NOW + 20)
    assert not await store.is_revoked("jti-1")
    assert await store.is_revoked("jti-2")


async def test_meta_first_writer_wins(store: Store) -> None:
    assert await store.get_meta("jwt_secret") is None
    assert await store.put_meta_if_absent("jwt_secret", "first") == "first"
    assert await store.put_meta_if_absent("jwt_secret", "second") == "first"
    assert await store.get_meta("jwt_secret") == "first"


async def test_racing_replicas_agree_on_one_secret(store: Store) -> None:
    values = await asyncio.gather(*(store.put_meta_if_absent("k", f"v{i}") for i in range(8)))
    assert len(set(values)) == 1
    assert await store.get_meta("k") == values[0]


async def test_list_users_oldest_first_with_every_field(store: Store) -> None:
    assert await store.list_users() == []
    # Created out of order: the list follows created_at, not insertion or id.
    late = replace(user("user-a", "late@example.com"), created_at=NOW + 5, role="admin")
    early = replace(user("user-b", "early@example.com"), created_at=NOW)
    await store.create_user(late)
    await store.create_user(early)
    await store.set_user_disabled("user-b", True)
    assert await store.list_users() == [replace(early, disabled=True, session_epoch=1), late]


async def test_set_user_password_replaces_only_the_hash(store: Store) -> None:
    await store.create_user(user())
    await store.create_user(user("user-2", "bob@example.com"))
    await store.set_user_password("user-1", "$argon2id$new", 1_000_000.0)
    changed = replace(
        user(), password_hash="$argon2id$new", sessions_after=1_000_000.0, session_epoch=1
    )
    assert await store.get_user("user-1") == changed
    assert await store.find_user_by_email("ann@example.com") == changed
    await store.set_user_password("user-1", "$argon2id$newer", 5.0)  # never moves back
    again = await store.get_user("user-1")
    assert again is not None and again.sessions_after == 1_000_000.0
    assert await store.get_user("user-2") == user("user-2", "bob@example.com")
    with pytest.raises(NotFound):
        await store.set_user_password("nobody", "$argon2id$x")


async def test_item17_password_and_disabling_move_the_session_epoch_on(store: Store) -> None:
    await store.create_user(user())
    await store.create_user(user("user-2", "bob@example.com"))
    assert (await store.get_user("user-1")).session_epoch == 0  # type: ignore[union-attr]
    await store.set_user_password("user-1", "$argon2id$new")
    assert (await store.get_user("user-1")).session_epoch == 1  # type: ignore[union-attr]
    await store.set_user_disabled("user-1", True)
    assert (await store.get_user("user-1")).session_epoch == 2  # type: ignore[union-attr]
    await store.set_user_disabled("user-1", False)  # enabling never moves it back
    again = await store.get_user("user-1")
    assert again is not None and (again.session_epoch, again.disabled) == (2, False)
    assert (await store.get_user("user-2")).session_epoch == 0  # type: ignore[union-attr]
