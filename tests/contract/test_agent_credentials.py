"""Agent credentials in the store (issue 11, items 16 and 20), on both stores: agent
tokens bound to a project, sessions remembering the credential they were earned
with, projects whose agent login an admin opened, and leases fenced by holder."""

from __future__ import annotations

import dataclasses

import pytest

from corral.domain.jobs import AttemptRef, Outcome
from corral.domain.projects import Project
from corral.domain.retry import RetryPolicy
from corral.domain.sessions import AgentSession
from corral.domain.states import JobStatus
from corral.errors import Forbidden, StaleAttempt
from corral.store.accounts_port import UserRecord
from corral.store.base import Store
from corral.store.fleet_port import TokenRecord
from tests.contract.contract_support import NOW, claim_request, new_job


async def test_item20_agent_tokens_keep_their_project(store: Store) -> None:
    token = TokenRecord("t1", "agents", "agent", "hash-t1", NOW, project_id="p1")
    await store.create_token(token)
    await store.create_token(TokenRecord("t2", "viewer", "viewer", "hash-t2", NOW))
    assert await store.find_token("hash-t1") == token
    found = await store.find_token("hash-t2")
    assert found is not None and found.project_id is None
    assert [t.project_id for t in await store.list_tokens()] == ["p1", None]


async def test_item16_sessions_remember_their_credential(store: Store) -> None:
    earned = AgentSession("s1", "hash-s1", "bot", "p1", NOW, NOW + 60, NOW, credential_id="t1")
    opened = AgentSession("s2", "hash-s2", "bot", "p1", NOW, NOW + 60, NOW)
    await store.create_session(earned)
    await store.create_session(opened)
    assert await store.find_session("hash-s1") == earned
    assert await store.get_session("s2") == opened


async def test_item16_open_agent_login_round_trips(store: Store) -> None:
    project = Project(id="p1", name="alpha", created_at=NOW, updated_at=NOW)
    await store.create_project(project)
    stored = await store.get_project("p1")
    assert stored is not None and stored.open_agent_login is False
    opened = dataclasses.replace(project, open_agent_login=True, updated_at=NOW + 1)
    await store.update_project(opened)
    assert await store.get_project("p1") == opened


async def test_item16_a_lease_is_fenced_by_its_holder(store: Store) -> None:
    """Same name, other holder: Forbidden; other name: stale. Nothing changes."""
    job = new_job("j1")
    await store.insert_jobs([job])
    [claimed] = await store.claim(claim_request("bot", principal_id="cred-1"), NOW)
    policy = RetryPolicy()
    done = Outcome(JobStatus.COMPLETED, result={"result": "stolen"})
    with pytest.raises(Forbidden):
        await store.renew_lease("j1", AttemptRef("bot", None, "cred-2"), NOW + 1, 600.0)
    with pytest.raises(Forbidden):
        await store.finish("j1", AttemptRef("bot", None, "cred-2"), done, NOW + 1, policy)
    with pytest.raises(StaleAttempt):
        await store.finish("j1", AttemptRef("other", None, "cred-1"), done, NOW + 1, policy)
    kept = await store.get_job("j1")
    assert kept is not None and kept.status == JobStatus.RUNNING
    assert kept.lease_expires_at == claimed.lease_expires_at
    finished = await store.finish("j1", AttemptRef("bot", None, "cred-1"), done, NOW + 1, policy)
    assert finished.status == JobStatus.COMPLETED


async def test_item17_sessions_end_with_the_credential_that_opened_them(store: Store) -> None:
    """A revoked token, a disabled user or a reset password ends the agent sessions
    opened with it, and only those."""
    await store.create_token(TokenRecord("t1", "agents", "agent", "hash-t1", NOW, project_id="p1"))
    await store.create_user(UserRecord("user-1", "a@example.com", "$argon2id$x", "admin", NOW))
    await store.create_user(UserRecord("user-2", "b@example.com", "$argon2id$x", "admin", NOW))
    for n, credential in enumerate(["t1", "user-1", "user-2", None, "t2"]):
        await store.create_session(
            AgentSession(
                f"s{n}", f"h{n}", "bot", "p1", NOW, NOW + 60, NOW, credential_id=credential
            )
        )
    await store.revoke_token("t1")
    await store.set_user_disabled("user-1", True)
    await store.set_user_disabled("user-1", False)
    await store.set_user_password("user-2", "$argon2id$new")
    ended = [(await store.get_session(f"s{n}")).revoked for n in range(5)]  # type: ignore[union-attr]
    assert ended == [True, True, True, False, False]
