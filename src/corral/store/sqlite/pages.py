"""The jobs list's keyset pages on SQLite: the dashboard half of ``SqliteStore``'s reads.

A page walks ``seq`` (the rowid, or ``jobs_status``/``jobs_project`` when those
filters are set) from its cursor and stops after ``limit`` matches, so its cost
does not grow with how deep the page is. Text and label filters cannot use an
index: they are checked row by row on that walk, with a cheap test on the raw
JSON text first so most rows never reach ``json_extract``.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from corral.domain.jobs import Job
from corral.domain.outcomes import Piece
from corral.store.base import JobQuery
from corral.store.rows import JOB_COLUMNS, job_from_row
from corral.store.sqlite.engine import Readers
from corral.store.sqlite.ops import job_or_404


def where_sql(query: JobQuery) -> tuple[str, list[Any]]:
    """The WHERE clause (``?`` placeholders) and its values, cursor included."""
    terms = [f"{column} = ?" for column, _ in query.equal_fields()]
    params: list[Any] = [value for _, value in query.equal_fields()]
    if query.before_seq is not None:
        terms.append("seq < ?")
        params.append(query.before_seq)
    if query.after_seq is not None:
        terms.append("seq > ?")
        params.append(query.after_seq)
    pattern = query.text_pattern
    if pattern is not None:
        if query.text_verbatim_in_json:
            terms.append("spec LIKE ? ESCAPE '\\'")
            params.append(pattern)
        terms.append(
            "(json_extract(spec, '$.command') LIKE ? ESCAPE '\\' "
            "OR json_extract(spec, '$.name') LIKE ? ESCAPE '\\')"
        )
        params.extend((pattern, pattern))
    if query.id_range is not None:
        terms.append("id >= ? AND id < ?")  # the UNIQUE index on id, binary collation
        params.extend(query.id_range)
    if query.created_after is not None:
        terms.append("created_at >= ?")
        params.append(query.created_after)
    if query.label is not None:
        # '' means no labels, and json_each('') is an error: NULL reads as an empty array.
        terms.append(
            "EXISTS (SELECT 1 FROM json_each(nullif(jobs.labels, '')) AS l WHERE l.value = ?)"
        )
        params.append(query.label)
    return ("WHERE " + " AND ".join(terms) if terms else ""), params


# Arrival times are kept since migration 0015 (``arrived_at``, 0 for older rows).
READ_PIECES = (
    'SELECT stream, "offset", data, arrived_at FROM job_output WHERE job_id = ? AND attempt = ? '
    'ORDER BY stream, "offset"'
)


class SqlitePages:
    """Reads only, on the reader pool: a page never waits for the writer."""

    _readers: Readers

    async def page_jobs(self, query: JobQuery, limit: int) -> list[Job]:
        where, params = where_sql(query)
        order = "DESC" if query.walks_down else "ASC"
        sql = f"SELECT {JOB_COLUMNS} FROM jobs {where} ORDER BY seq {order} LIMIT ?"

        def op(conn: sqlite3.Connection) -> list[Job]:
            return [job_from_row(r) for r in conn.execute(sql, (*params, limit)).fetchall()]

        jobs = await self._readers.run(op)
        if query.walks_down != query.newest_first:
            jobs.reverse()
        return jobs

    async def read_pieces(self, job_id: str) -> tuple[Job, list[Piece]]:
        def op(conn: sqlite3.Connection) -> tuple[Job, list[Piece]]:
            job = job_or_404(conn, job_id)
            rows = conn.execute(READ_PIECES, (job_id, job.attempt)).fetchall()
            return job, [Piece(r[0], r[1], bytes(r[2]), r[3]) for r in rows]

        return await self._readers.run(op)
