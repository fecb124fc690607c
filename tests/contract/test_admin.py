"""Executors and API tokens."""

from __future__ import annotations

import pytest

from corral.domain.workers import ExecutorInfo
from corral.errors import AlreadyExists, NotFound
from corral.store.base import Store
from corral.store.fleet_port import TokenRecord
from tests.contract.contract_support import NOW

INFO = ExecutorInfo(
    executor_id="exec-1",
    principal_id="worker-1",
    hostname="host-a",
    ip="10.0.0.5",
    cpu_count=16,
    memory_mb=65536,
    os="linux",
    labels=("gpu", "linux"),
    concurrency=4,
    metadata={"rack": "r1", "zones": [1, 2]},
)


async def test_executor_upsert_get_list_touch_delete(store: Store) -> None:
    created = await store.upsert_executor(INFO, NOW, draining=False)
    assert created.info == INFO
    assert (created.registered_at, created.last_heartbeat) == (NOW, NOW)
    assert not created.draining and created.jobs_completed == 0
    assert await store.get_executor("exec-1") == created

    # Re-registering keeps the registration time, and a missing ip keeps the known one.
    changed = ExecutorInfo(executor_id="exec-1", principal_id="worker-2", concurrency=2)
    updated = await store.upsert_executor(changed, NOW + 10, draining=True)
    assert updated.registered_at == NOW and updated.last_heartbeat == NOW + 10
    assert updated.draining and updated.info.ip == "10.0.0.5"
    assert (updated.info.principal_id, updated.info.concurrency, updated.info.labels) == (
        "worker-2",
        2,
        (),
    )

    await store.upsert_executor(ExecutorInfo("exec-0", "w"), NOW, draining=False)
    assert [e.info.executor_id for e in await store.list_executors()] == ["exec-0", "exec-1"]

    await store.touch_executor("exec-1", NOW + 20)
    touched = await store.get_executor("exec-1")
    assert touched is not None and touched.last_heartbeat == NOW + 20
    await store.touch_executor("ghost", NOW)  # nothing to touch, no error

    await store.delete_executor("exec-1")
    assert await store.get_executor("exec-1") is None
    with pytest.raises(NotFound):
        await store.delete_executor("exec-1")
    assert [e.info.executor_id for e in await store.list_executors()] == ["exec-0"]


async def test_tokens_create_find_list_revoke(store: Store) -> None:
    first = TokenRecord("t1", "ci", "admin", "hash-1", NOW)
    second = TokenRecord("t2", "worker", "worker", "hash-2", NOW + 1)
    await store.create_token(first)
    await store.create_token(second)
    assert await store.find_token("hash-1") == first
    assert await store.find_token("hash-3") is None
    assert await store.list_tokens() == [first, second]

    await store.revoke_token("t1")
    revoked = await store.find_token("hash-1")
    assert revoked is not None and revoked.revoked
    with pytest.raises(NotFound):
        await store.revoke_token("ghost")
    with pytest.raises(AlreadyExists):
        await store.create_token(TokenRecord("t1", "again", "admin", "hash-9", NOW))
    with pytest.raises(AlreadyExists):
        await store.create_token(TokenRecord("t9", "again", "admin", "hash-2", NOW))
    assert len(await store.list_tokens()) == 2


async def test_database_size_is_positive_and_grows(store: Store) -> None:
    before = await store.database_size()
    assert before > 0
    for n in range(50):
        await store.create_token(TokenRecord(f"t{n}", "x" * 500, "viewer", f"hash-{n}", NOW))
    assert await store.database_size() >= before
