"""The PostgreSQL claim, on a connection the caller holds.

Alone it is one autocommitted statement (``postgres.sql.CLAIM``); inside a submit's
transaction (``PostgresStore.insert_and_claim``) it leases the new jobs to a claim
waiting for work with one commit for both. Either way the same statement chooses the
jobs, so every rule of the queue holds alike.
"""

from __future__ import annotations

from typing import Any

import orjson

from corral.domain.jobs import ClaimRequest, Job
from corral.store.postgres import placement
from corral.store.postgres import sql as q
from corral.store.rows import job_from_row


def claim_args(request: ClaimRequest, now: float | None) -> tuple[Any, ...]:
    """The parameters of ``q.CLAIM`` and ``placement.claim_placed``; ``now`` None: the
    database's clock."""
    return (
        now,
        orjson.dumps(sorted(request.labels)).decode(),
        request.least_runnable,
        request.project_id,
        request.limit,
        request.executor_id,
        request.executor_ip,
        request.principal_id,
    )


async def claim_in(conn: Any, args: tuple[Any, ...]) -> list[Job]:
    """Lease what one claim may take, best first."""
    rows = await conn.fetch(q.CLAIM, *args)
    # Empty: either nothing fits, or jobs that need placement wait (the fast
    # claim stands aside for them); only the latter costs a transaction (a
    # savepoint when the caller's transaction is open).
    if not rows and await conn.fetchval(placement.ANY_PLACED):
        async with conn.transaction():
            rows = await placement.claim_placed(conn, args)
    return [job_from_row(r) for r in rows]
