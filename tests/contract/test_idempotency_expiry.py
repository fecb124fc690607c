"""Item 13: idempotency records are forgotten after their TTL, a small batch at a time.

The store stamps each record with its insertion time; the sweep is given a cutoff,
so the tests move the clock by passing a later ``now`` instead of waiting a day.
"""

from __future__ import annotations

import time

from corral.services.events import Hub
from corral.services.jobs import IDEMPOTENCY_BATCH, JobService
from corral.services.metrics import Metrics
from corral.store.base import IdempotencyRecord, Store
from tests.contract.contract_support import new_job

DAY = 86400.0


def _record(key: str) -> IdempotencyRecord:
    return IdempotencyRecord("alice", key, f"hash-{key}", 201, b'{"id": "x"}')


async def test_item13_idempotency_records_forgotten_oldest_first_in_batches(store: Store) -> None:
    for n in (1, 2, 3):
        await store.insert_jobs([new_job(f"j{n}")], _record(f"k{n}"))
    between = time.time()
    while time.time() == between:  # the next record is strictly younger than the cutoff
        pass
    await store.insert_jobs([new_job("j4")], _record("k4"))

    # Nothing is a day old yet.
    assert await store.delete_idempotency_before(time.time() - DAY, 10) == 0
    # A cutoff between the records: older ones go, at most ``limit`` per call.
    assert await store.delete_idempotency_before(between, 2) == 2
    assert await store.delete_idempotency_before(between, 2) == 1
    assert await store.delete_idempotency_before(between, 2) == 0
    for key in ("k1", "k2", "k3"):
        assert await store.find_idempotency("alice", key) is None
    assert await store.find_idempotency("alice", "k4") == _record("k4")
    # Only the records are forgotten, never the jobs; a forgotten key may be used again.
    assert len(await store.get_jobs(["j1", "j2", "j3", "j4"])) == 4
    await store.insert_jobs([new_job("j5")], _record("k1"))
    assert await store.find_idempotency("alice", "k1") == _record("k1")


async def test_item13_jobs_service_forgets_keys_a_ttl_old_on_a_moved_clock(store: Store) -> None:
    jobs = JobService(store, Hub(), Metrics(), 1 << 20)
    await store.insert_jobs([new_job("j1")], _record("k1"))
    now = time.time()

    assert await jobs.forget_idempotency(now + DAY - 60, keep=DAY) == 0  # a minute early
    assert await store.find_idempotency("alice", "k1") is not None
    assert await jobs.forget_idempotency(now + DAY + 1, keep=DAY) == 1  # a day and a second on
    assert await store.find_idempotency("alice", "k1") is None
    assert IDEMPOTENCY_BATCH <= 1000  # small batches: one short write each
