"""PostgreSQL rolling a transaction back to break a deadlock is not the client's problem.

Ending a job runs triggers (migrations 0019 and 0021) that make its dependants due and
admit them through their concurrency keys, locking each key as they meet it. Two jobs
ending at once whose dependants hold the same keys in opposite orders then wait on each
other; PostgreSQL rolls one transaction back (deadlock_detected) and the store runs it
again from the start, so both ends succeed, and each is written once.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import AsyncIterator, Awaitable, Callable

import asyncpg
import pytest

from corral.domain.dependencies import RunIf
from corral.domain.jobs import Job, NewJob, Outcome
from corral.domain.states import JobStatus
from corral.store.postgres.store import PostgresStore
from tests.contract.contract_support import NOW, POLICY, claim_request, new_job, ref

KEYS = 12  # long enough chains of key locks that two ends started together cross
ROUNDS = 40  # each round deadlocks about one time in two on a 2-core machine
DONE = Outcome(JobStatus.COMPLETED, exit_code=0)
End = Callable[[PostgresStore, str, str], Awaitable[Job]]


async def finish_in_one_statement(store: PostgresStore, job_id: str, executor: str) -> Job:
    return await store.finish(job_id, ref(executor), DONE, None, POLICY)


async def finish_in_a_transaction(store: PostgresStore, job_id: str, executor: str) -> Job:
    return await store.finish(job_id, ref(executor), DONE, NOW, POLICY)


async def cancel_before_it_runs(store: PostgresStore, job_id: str, executor: str) -> Job:
    return await store.cancel(job_id, NOW)


@dataclasses.dataclass(frozen=True)
class Case:
    end: End
    run_if: RunIf  # the dependants' condition, so that this end makes them due
    claimed: bool
    ended: JobStatus


CASES = [
    pytest.param(Case(finish_in_one_statement, RunIf.SUCCESS, True, JobStatus.COMPLETED)),
    pytest.param(Case(finish_in_a_transaction, RunIf.SUCCESS, True, JobStatus.COMPLETED)),
    pytest.param(Case(cancel_before_it_runs, RunIf.FAILURE, False, JobStatus.CANCELLED)),
]


@pytest.fixture
async def quick_deadlocks(pg_dsn: str) -> AsyncIterator[PostgresStore]:
    """A store on a database whose deadlocks are found after 20 ms rather than 1 s."""
    admin = await asyncpg.connect(pg_dsn)
    try:
        name = pg_dsn.rsplit("/", 1)[1]
        await admin.execute(f"ALTER DATABASE {name} SET deadlock_timeout = '20ms'")
    finally:
        await admin.close()
    store = PostgresStore(pg_dsn)
    await store.open()
    try:
        yield store
    finally:
        await store.close()


def dependant(job_id: str, parent: str, key: str, run_if: RunIf) -> NewJob:
    job = new_job(job_id, concurrency_key=key)
    return dataclasses.replace(job, depends_on=(parent,), run_if=run_if)


async def two_parents(store: PostgresStore, n: int, case: Case) -> tuple[str, str]:
    """Two jobs whose dependants hold the same keys, the second's in reverse order."""
    keys = [f"r{n}-k{i:02}" for i in range(KEYS)]
    first, second = f"r{n}-first", f"r{n}-second"
    jobs = [new_job(first, priority=9), new_job(second, priority=9)]
    jobs += [dependant(f"r{n}-a{i:02}", first, k, case.run_if) for i, k in enumerate(keys)]
    reverse = enumerate(reversed(keys))
    jobs += [dependant(f"r{n}-b{i:02}", second, k, case.run_if) for i, k in reverse]
    await store.insert_jobs(jobs)
    if case.claimed:  # by two executors: ends on one executor's row would queue up on it
        assert [j.id for j in await store.claim(claim_request("exec-1"), NOW)] == [first]
        assert [j.id for j in await store.claim(claim_request("exec-2"), NOW)] == [second]
    return first, second


def retries(caplog: pytest.LogCaptureFixture) -> int:
    return sum(getattr(r, "action", None) == "transaction_retried" for r in caplog.records)


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.end.__name__)
async def test_ends_whose_dependants_take_keys_in_opposite_orders_both_succeed(
    quick_deadlocks: PostgresStore, caplog: pytest.LogCaptureFixture, case: Case
) -> None:
    store = quick_deadlocks
    caplog.set_level(logging.INFO, logger="corral.store")
    rounds = 0
    while rounds < ROUNDS and not retries(caplog):
        first, second = await two_parents(store, rounds, case)
        ended = await asyncio.gather(
            case.end(store, first, "exec-1"), case.end(store, second, "exec-2")
        )
        assert [(j.id, j.status) for j in ended] == [(first, case.ended), (second, case.ended)]
        rounds += 1
    assert retries(caplog), f"no deadlock in {ROUNDS} rounds: this test proved nothing"
    # Written once: each key admitted one of its two dependants and holds the other...
    rows = await store._fetch(
        "SELECT concurrency_key, array_agg(status ORDER BY status) FROM jobs "
        "WHERE concurrency_key IS NOT NULL GROUP BY 1"
    )
    assert len(rows) == KEYS * rounds
    assert {tuple(row[1]) for row in rows} == {("held", "pending")}
    # ...and each executor counted each of its completions once.
    if case.claimed:
        counts = await store._fetch("SELECT executor_id, jobs_completed FROM executors")
        assert sorted(tuple(r) for r in counts) == [("exec-1", rounds), ("exec-2", rounds)]
