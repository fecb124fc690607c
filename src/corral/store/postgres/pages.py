"""The jobs list's keyset pages on PostgreSQL: the dashboard half of ``PostgresStore``'s reads.

Same walk as on SQLite: ``seq`` from the cursor (the primary key, or
``jobs_status``/``jobs_project`` when those filters are set), stopping after
``limit`` matches. The text filter first tests the raw JSON text with ``ILIKE``
(cheap) and only then parses the spec as ``jsonb``; labels are ``jsonb`` already,
so a label is a containment test.
"""

from __future__ import annotations

from typing import Any

import orjson

from corral.domain.jobs import Job
from corral.domain.outcomes import Piece
from corral.errors import NotFound
from corral.store.base import JobQuery
from corral.store.postgres.sql import SELECT_JOB
from corral.store.rows import JOB_COLUMNS, job_from_row


def where_sql(query: JobQuery) -> tuple[str, list[Any]]:
    """The WHERE clause (``$n`` placeholders) and its values, cursor included."""
    terms: list[str] = []
    params: list[Any] = []

    def add(template: str, value: Any) -> None:
        params.append(value)
        terms.append(template.format(f"${len(params)}"))

    for column, value in query.equal_fields():
        add(f"{column} = {{}}", value)
    if query.before_seq is not None:
        add("seq < {}", query.before_seq)
    if query.after_seq is not None:
        add("seq > {}", query.after_seq)
    pattern = query.text_pattern
    if pattern is not None:
        if query.text_verbatim_in_json:
            add("spec ILIKE {}", pattern)
        params.append(pattern)
        n = len(params)
        terms.append(
            f"((spec::jsonb ->> 'command') ILIKE ${n} OR (spec::jsonb ->> 'name') ILIKE ${n})"
        )
    if query.id_pattern is not None:
        add("id LIKE {}", query.id_pattern)  # jobs_id_pattern (text_pattern_ops), 0015
    if query.created_after is not None:
        add("created_at >= {}", query.created_after)
    if query.label is not None:
        add("labels @> {}::jsonb", orjson.dumps([query.label]).decode())
    return ("WHERE " + " AND ".join(terms) if terms else ""), params


# Arrival times are kept since migration 0015 (``arrived_at``, 0 for older rows).
READ_PIECES = """
SELECT stream, "offset", data, arrived_at FROM job_output WHERE job_id = $1 AND attempt = $2
ORDER BY stream, "offset"
"""


class PostgresPages:
    """One statement on a pooled connection; nothing is locked."""

    async def _fetch(self, sql: str, *args: Any) -> list[Any]:
        raise NotImplementedError

    async def page_jobs(self, query: JobQuery, limit: int) -> list[Job]:
        where, params = where_sql(query)
        order = "DESC" if query.walks_down else "ASC"
        sql = (
            f"SELECT {JOB_COLUMNS} FROM jobs {where} ORDER BY seq {order} LIMIT ${len(params) + 1}"
        )
        jobs = [job_from_row(r) for r in await self._fetch(sql, *params, limit)]
        if query.walks_down != query.newest_first:
            jobs.reverse()
        return jobs

    async def read_pieces(self, job_id: str) -> tuple[Job, list[Piece]]:
        found = await self._fetch(SELECT_JOB, job_id)
        if not found:
            raise NotFound("job not found", job_id=job_id)
        job = job_from_row(found[0])
        rows = await self._fetch(READ_PIECES, job_id, job.attempt)
        return job, [Piece(r[0], r[1], bytes(r[2]), r[3]) for r in rows]
