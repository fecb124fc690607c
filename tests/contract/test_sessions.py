"""TaskDriver's agent sessions in the store, and leases renewed for a chosen duration."""

from __future__ import annotations

import dataclasses

import pytest

from corral.domain.sessions import AgentSession
from corral.errors import AlreadyExists, NotFound, StaleAttempt
from corral.store.base import Store
from tests.contract.contract_support import NOW, claim_request, new_job, ref


def session(session_id: str = "s1", **changes: object) -> AgentSession:
    base = AgentSession(
        id=session_id,
        token_hash=f"hash-{session_id}",
        agent_name="agent-1",
        project_id="p1",
        created_at=NOW,
        expires_at=NOW + 3600,
        last_activity=NOW,
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


async def test_session_round_trip_by_token_hash_and_id(store: Store) -> None:
    await store.create_session(session())
    assert await store.find_session("hash-s1") == session()
    assert await store.get_session("s1") == session()
    assert await store.find_session("hash-other") is None
    assert await store.get_session("other") is None
    with pytest.raises(AlreadyExists):
        await store.create_session(session(token_hash="hash-fresh"))
    with pytest.raises(AlreadyExists):  # token hashes are unique too
        await store.create_session(session("s2", token_hash="hash-s1"))


async def test_touch_records_activity_and_moves_expiry_only_when_given(store: Store) -> None:
    await store.create_session(session())
    await store.touch_session("s1", NOW + 60)
    found = await store.get_session("s1")
    assert found is not None
    assert (found.last_activity, found.expires_at) == (NOW + 60, NOW + 3600)
    await store.touch_session("s1", NOW + 70, NOW + 7200)
    found = await store.get_session("s1")
    assert found is not None
    assert (found.last_activity, found.expires_at) == (NOW + 70, NOW + 7200)
    with pytest.raises(NotFound):
        await store.touch_session("ghost", NOW)


async def test_revoked_and_expired_sessions_are_not_live(store: Store) -> None:
    await store.create_session(session("s1"))
    await store.create_session(session("s2", token_hash="h2"))
    await store.create_session(session("s3", token_hash="h3", expires_at=NOW + 10))
    assert await store.count_live_sessions(NOW + 1) == 3
    await store.revoke_session("s2")
    revoked = await store.find_session("h2")
    assert revoked is not None and revoked.revoked and not revoked.live(NOW + 1)
    assert await store.count_live_sessions(NOW + 1) == 2
    assert await store.count_live_sessions(NOW + 10) == 1  # s3 expires at NOW + 10


async def test_a_login_forgets_sessions_expired_before_it(store: Store) -> None:
    await store.create_session(session("old", token_hash="h-old", expires_at=NOW + 10))
    await store.create_session(session("new", token_hash="h-new", created_at=NOW + 11))
    assert await store.get_session("old") is None
    assert await store.get_session("new") is not None


async def test_renew_lease_for_a_chosen_duration(store: Store) -> None:
    await store.insert_jobs(
        [new_job("j1", lease_seconds=30, project_id="p1", command=None, instructions="by hand")]
    )
    [job] = await store.claim(claim_request("agent-1", project_id="p1"), NOW)
    assert job.lease_expires_at == NOW + 30
    longer = await store.renew_lease("j1", ref("agent-1", attempt=None), NOW + 5, 1800.0)
    assert longer.lease_expires_at == NOW + 1805
    stored = await store.get_job("j1")
    assert stored is not None and stored.lease_expires_at == NOW + 1805
    # Without a duration the job's own lease length applies, as before.
    back = await store.renew_lease("j1", ref("agent-1", attempt=None), NOW + 6)
    assert back.lease_expires_at == NOW + 36
    with pytest.raises(StaleAttempt):  # another agent name does not hold it
        await store.renew_lease("j1", ref("agent-2", attempt=None), NOW + 7, 1800.0)
