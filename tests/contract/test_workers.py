"""Exclusive worker registration, reported status, worker-bound tokens, and the
claim filters CMD Executor's workers rely on (shell commands only, oldest first)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from corral.domain.jobs import ClaimRequest, JobSpec
from corral.domain.states import AttemptStatus, JobStatus
from corral.domain.workers import ExecutorInfo
from corral.errors import AlreadyExists
from corral.store.base import JobFilter, Store
from corral.store.fleet_port import TokenRecord
from tests.contract.contract_support import BACKOFF, NOW, POLICY, claim_request, new_job

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


async def test_item8_renewal_by_principal_skips_leases_of_an_earlier_registration(
    store: Store,
) -> None:
    await store.insert_jobs([new_job("old", lease_seconds=30), new_job("new", lease_seconds=30)])
    await store.claim(claim_request("worker-001", principal_id="token-1"), NOW)
    await store.claim(claim_request("worker-001", principal_id="token-2"), NOW)
    held = [("old", 1), ("new", 1)]

    renewed = await store.renew_executor_leases("worker-001", held, NOW + 10, "token-2")

    assert [j.id for j in renewed] == ["new"]
    old = await store.get_job("old")
    assert old is not None and old.lease_expires_at == NOW + 30  # left to expire
    anyone = await store.renew_executor_leases("worker-001", held, NOW + 11)
    assert sorted(j.id for j in anyone) == ["new", "old"]  # no principal: as before


async def test_item8_expiring_a_taken_over_id_hands_back_only_the_old_leases(
    store: Store,
) -> None:
    jobs = [new_job(f"j{i}", lease_seconds=30, max_retries=3) for i in range(3)]
    await store.insert_jobs([*jobs, new_job("mine"), new_job("elsewhere")])
    await store.claim(claim_request("worker-001", principal_id="token-1", limit=3), NOW)
    await store.claim(claim_request("worker-001", principal_id="token-2"), NOW)  # "mine"
    await store.claim(claim_request("worker-002", principal_id="token-1"), NOW)
    await store.cancel("j2", NOW + 1)

    ended = await store.expire_executor_leases("worker-001", "token-2", NOW + 2, POLICY)

    by_id = {j.id: j for j in ended}
    assert set(by_id) == {"j0", "j1", "j2"}
    assert by_id["j0"].status == by_id["j1"].status == JobStatus.PENDING
    assert by_id["j0"].run_after == NOW + 2 + BACKOFF
    assert by_id["j2"].status == JobStatus.CANCELLED
    assert await store.get_job("j0") == by_id["j0"]
    [attempt] = await store.get_attempts("j0")
    assert attempt.status == AttemptStatus.LOST and attempt.ended_at == NOW + 2
    assert "registered again" in (attempt.error_message or "")
    for kept in ("mine", "elsewhere"):
        job = await store.get_job(kept)
        assert job is not None and job.status == JobStatus.RUNNING
    assert await store.expire_executor_leases("worker-001", "token-2", NOW + 3, POLICY) == []
