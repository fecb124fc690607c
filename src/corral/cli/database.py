"""The database the admin commands (`corral token`, `corral user`) open, or a refusal.

These commands act straight on the server's database. Opening a SQLite path
creates it, so run from the wrong directory they used to make an empty
``./corral-data``, mint a token there and exit 0, and the server then refused
that token. Now they only open a database that exists: without one at the
configured place they say where they looked and how to point them at the
right one. PostgreSQL databases are created by their administrator, never by
us, so a ``--database-url`` is taken as given.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import typer

from corral.cli.config import fail

if TYPE_CHECKING:
    from corral.settings import ServerSettings
    from corral.store.base import Store

T = TypeVar("T")
DEFAULT_DATA_DIR = Path("./corral-data")

DataDirOpt = typer.Option(
    None,
    "--data-dir",
    envvar="CORRAL_DATA_DIR",
    help="The server's data directory (default ./corral-data); the database must exist.",
)
DatabaseUrlOpt = typer.Option(
    None, "--database-url", envvar="CORRAL_DATABASE_URL", help="The server's PostgreSQL URL."
)


def existing(data_dir: Path | None, database_url: str | None, hint: str = "") -> ServerSettings:
    """Settings for the server's database; exits (status 2) when there is no database there."""
    from corral.settings import ServerSettings  # pydantic-settings: only when a command runs

    settings = ServerSettings(data_dir=data_dir or DEFAULT_DATA_DIR, database_url=database_url)
    if settings.database_url or settings.sqlite_path.is_file():
        return settings
    where = settings.sqlite_path.resolve()
    how = "--data-dir or CORRAL_DATA_DIR" if data_dir is not None else "the default data dir"
    fail(
        f"no Corral database at {where} (looked there because of {how}); nothing was "
        "created. Point to the server's database with --data-dir DIR or CORRAL_DATA_DIR=DIR "
        f"(SQLite), or --database-url URL or CORRAL_DATABASE_URL (PostgreSQL){hint}",
        2,
    )


def run_on_store(settings: ServerSettings, action: Callable[[Store], Awaitable[T]]) -> T:
    """Open the store, run one action, close it; a refused action is one line, exit 2."""
    import asyncio

    from corral.errors import CorralError

    try:
        return asyncio.run(_on_store(settings, action))
    except CorralError as exc:
        fail(exc.message, 2)


async def _on_store(settings: ServerSettings, action: Callable[[Store], Awaitable[T]]) -> T:
    from corral.services.container import open_store

    store = open_store(settings)
    await store.open()
    try:
        return await action(store)
    finally:
        await store.close()
