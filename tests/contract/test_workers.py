"""Exclusive worker registration, reported status, worker-bound tokens, and the
claim filters CMD Executor's workers rely on (shell commands only, oldest first)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from corral.domain.jobs import ClaimRequest, JobSpec
from corral.domain.workers import ExecutorInfo
from corral.errors import AlreadyExists
from corral.store.base import JobFilter, Store, TokenRecord
from tests.contract.contract_support import NOW, claim_request, new_job

INFO = ExecutorInfo(executor_id="worker-001", principal_id="token-1", hostname="pc", cpu_count=8)


async def test_register_refuses_a_live_id_and_takes_over_a_silent_one(store: Store) -> None:
    first = await store.register_executor(INFO, NOW, live_after=NOW - 30)
    assert first.registered_at == NOW and first.info == INFO
    with pytest.raises(AlreadyExists):
        await store.register_executor(INFO, NOW + 10, live_after=NOW + 10 - 30)
    kept = await store.get_executor("worker-001")
    assert kept is not None and kept.info.principal_id == "token-1"

    await store.touch_executor("worker-001", NOW + 5, "error")
    took_over = replace(INFO, principal_id="token-2", hostname="other")
    later = NOW + 100
    second = await store.register_executor(took_over, later, live_after=later - 30)
    assert second.info.principal_id == "token-2" and second.info.hostname == "other"
    assert second.registered_at == later and second.reported_status is None


async def test_touch_records_the_reported_status_only_when_given(store: Store) -> None:
    await store.register_executor(INFO, NOW, live_after=NOW - 30)
    await store.touch_executor("worker-001", NOW + 1, "busy")
    await store.touch_executor("worker-001", NOW + 2)
    found = await store.get_executor("worker-001")
    assert found is not None
    assert found.reported_status == "busy" and found.last_heartbeat == NOW + 2


async def test_tokens_bound_to_an_executor_are_revoked_together(store: Store) -> None:
    await store.create_token(TokenRecord("a", "w", "worker", "h-a", NOW, executor_id="worker-001"))
    await store.create_token(TokenRecord("b", "w", "worker", "h-b", NOW, executor_id="worker-001"))
    await store.create_token(TokenRecord("c", "w", "worker", "h-c", NOW, executor_id="other"))
    found = await store.find_token("h-a")
    assert found is not None and found.executor_id == "worker-001"
    assert await store.revoke_executor_tokens("worker-001") == 2
    assert await store.revoke_executor_tokens("worker-001") == 0
    revoked = {t.id: t.revoked for t in await store.list_tokens()}
    assert revoked == {"a": True, "b": True, "c": False}


async def test_commands_only_claims_skip_binaries_and_agent_tasks(store: Store) -> None:
    binary = replace(
        new_job("binary", command=None, created_at=NOW - 300),
        spec=JobSpec(binary_url="https://example.com/x", binary_sha256="a" * 64),
    )
    agent_task = new_job("agent", command=None, instructions="review", created_at=NOW - 200)
    shell = new_job("shell", created_at=NOW - 100)
    await store.insert_jobs([binary, agent_task, shell])
    cmd = replace(claim_request(limit=5), commands_only=True)
    assert cmd.least_runnable == 2
    assert [j.id for j in await store.claim(cmd, NOW)] == ["shell"]
    runnable = claim_request("exec-2", limit=5, runnable_only=True)
    assert [j.id for j in await store.claim(runnable, NOW)] == ["binary"]
    anything = ClaimRequest(executor_id="exec-3", principal_id="p", limit=5)
    assert [j.id for j in await store.claim(anything, NOW)] == ["agent"]


async def test_list_jobs_oldest_first(store: Store) -> None:
    await store.insert_jobs([new_job(f"j{n}", created_at=NOW + n) for n in range(4)])
    newest, total = await store.list_jobs(JobFilter(), 2, 0)
    oldest, _ = await store.list_jobs(JobFilter(), 2, 1, newest_first=False)
    assert total == 4
    assert [j.id for j in newest] == ["j3", "j2"]
    assert [j.id for j in oldest] == ["j1", "j2"]
