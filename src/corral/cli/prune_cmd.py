"""`corral prune`: the server's purge, run by hand on its database.

It opens the database the server uses (``--data-dir`` / ``--database-url``, refusing
when there is none: cli/database.py) and runs one retention pass with
``--older-than`` in place of the server's ``--retention``: the same batches, the
same pace, the same rules (a job's own ``retention_days`` still counts, and a
waiting dependant, a live schedule's newest run or an unfinished workflow still
keep a job). Running servers may stay up: on PostgreSQL it waits for its turn
behind a replica's batch, on SQLite its batches take the file's write lock
between the server's writes.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from corral.cli.common import JsonOpt
from corral.cli.config import fail
from corral.cli.database import DatabaseUrlOpt, DataDirOpt, existing, run_on_store

if TYPE_CHECKING:
    from corral.services.retention import PassReport
    from corral.store.base import Store


def register(app: typer.Typer) -> None:
    app.command("prune")(prune)


def prune(
    older_than: str = typer.Option(
        "30d",
        "--older-than",
        envvar="CORRAL_RETENTION",
        help="Delete finished jobs that ended longer ago than this (30d, 12h, 45m, 90s; 0: "
        "none); by default the server's setting. Jobs with their own retention_days keep it.",
    ),
    dry_run: bool = typer.Option(
        False, "--dry-run", help="Count the jobs it would delete; delete nothing."
    ),
    vacuum: bool = typer.Option(
        False,
        "--vacuum",
        help="Then rewrite the database without its free space (SQLite: also turns on "
        "incremental vacuum; PostgreSQL: VACUUM ANALYZE of the job tables).",
    ),
    data_dir: Path | None = DataDirOpt,
    database_url: str | None = DatabaseUrlOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Delete finished jobs older than an age, with their output, attempts and artifacts."""
    from corral.domain.retention import parse_duration

    try:
        age = parse_duration(older_than)
    except ValueError as exc:
        fail(f"--older-than: {exc}", 2)
    if dry_run and vacuum:
        fail("--vacuum changes the database; it cannot go with --dry-run", 2)
    settings = existing(data_dir, database_url)

    async def action(store: Store) -> PassReport:
        from corral.services.metrics import Metrics
        from corral.services.retention import RetentionService

        purge = RetentionService(store, Metrics(), age)
        report = await purge.run_pass(older_than=age, dry_run=dry_run, wait=True)
        if vacuum:
            await store.compact()
        return report

    report = run_on_store(settings, action)
    if as_json:
        typer.echo(json.dumps(_as_dict(report, dry_run)))
    else:
        typer.echo(_summary(report, dry_run))
    if report.busy:  # PostgreSQL: a row stayed locked by another transaction
        fail("stopped early at a job another transaction held; run it again", 1)


def _as_dict(report: PassReport, dry_run: bool) -> dict[str, object]:
    if dry_run:
        return {"dry_run": True, "jobs": report.pruned.jobs}
    return {
        "dry_run": False,
        **report.pruned.counts(),
        "files": report.files,
        "executors": report.executors,
        "reclaimed_bytes": report.reclaimed_bytes,
    }


def _summary(report: PassReport, dry_run: bool) -> str:
    jobs = _count(report.pruned.jobs, "finished job")
    if dry_run:
        return f"would delete {jobs}"
    pruned = report.pruned
    parts = [
        _count(pruned.attempts, "attempt"),
        _count(pruned.output_chunks, "output chunk"),
        _count(pruned.artifacts, "artifact"),
        _count(pruned.idempotency_keys, "idempotency key"),
        _count(pruned.workflows, "workflow"),
    ]
    rest = [
        _count(report.files, "expired file"),
        _count(report.executors, "offline executor"),
    ]
    line = f"deleted {jobs} ({', '.join(parts)}); {', '.join(rest)}"
    if report.reclaimed_bytes:
        line += f"; {report.reclaimed_bytes / (1 << 20):.1f} MiB given back to the disk"
    return line


def _count(n: int, noun: str) -> str:
    return f"{n:,} {noun}{'' if n == 1 else 's'}"
