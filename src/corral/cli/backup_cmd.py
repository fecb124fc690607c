"""`corral backup DEST`: a consistent copy of the server's SQLite database, server running.

The copy is one snapshot of the live database (store/sqlite/backup.py says how it
stays consistent under writes without holding the server up). PostgreSQL has its
own tools for this, so with a database URL the command says which to use instead
of half-doing their job.
"""

from __future__ import annotations

from pathlib import Path

import typer

from corral.cli.config import fail
from corral.cli.database import DatabaseUrlOpt, DataDirOpt, existing

PG_DUMP_HINT = (
    "corral backup copies SQLite databases; for PostgreSQL use its own tools: "
    "pg_dump --format=custom --file=corral.dump DATABASE_URL (restore with pg_restore), "
    "or continuous archiving"
)


def register(app: typer.Typer) -> None:
    app.command("backup")(backup)


def backup(
    destination: Path = typer.Argument(
        ...,
        help="File to write (replaced only once the copy is complete and checked), "
        "or a directory to write corral-YYYYMMDDTHHMMSSZ.sqlite3 in.",
    ),
    data_dir: Path | None = DataDirOpt,
    database_url: str | None = DatabaseUrlOpt,
) -> None:
    """Copy the SQLite database to DEST, safely while the server runs and writes."""
    from corral.store.sqlite.backup import BackupRefused
    from corral.store.sqlite.backup import backup as copy_database

    settings = existing(data_dir, database_url)
    if settings.database_url:
        fail(PG_DUMP_HINT, 2)
    try:
        copied = copy_database(settings.sqlite_path, destination)
    except BackupRefused as exc:
        fail(str(exc), 2)
    except OSError as exc:
        fail(f"cannot write the backup at {destination}: {exc.strerror or exc}", 1)
    typer.echo(
        f"backed up {settings.sqlite_path} to {copied.path}: {copied.size:,} bytes, "
        f"{copied.jobs:,} jobs, schema version {copied.schema_version}, "
        f"integrity ok, in {copied.seconds:.2f} s"
    )
