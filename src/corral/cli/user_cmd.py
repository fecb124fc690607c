"""`corral user create`: login accounts, straight from the configured database.

The password is read from standard input so it never shows in ``ps`` or shell history.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import typer

from corral.settings import ServerSettings

user_app = typer.Typer(help="Manage login users (reads the server's database directly).")


def register(app: typer.Typer) -> None:
    app.add_typer(user_app, name="user")


DataDir = typer.Option(Path("./corral-data"), envvar="CORRAL_DATA_DIR")
DatabaseUrl = typer.Option(None, envvar="CORRAL_DATABASE_URL")


async def _create(settings: ServerSettings, email: str, password: str, role: str) -> str:
    from corral.services.accounts import AccountService
    from corral.services.container import open_store

    store = open_store(settings)
    await store.open()
    try:
        user = await AccountService(store).mint_user(email, password, role)
        return user.id
    finally:
        await store.close()


@user_app.command("create")
def create(
    email: str = typer.Option(..., help="The login email."),
    role: str = typer.Option(..., help="admin, submitter or viewer"),
    password_stdin: bool = typer.Option(
        False, "--password-stdin", help="Read the password from standard input."
    ),
    data_dir: Path = DataDir,
    database_url: str | None = DatabaseUrl,
) -> None:
    """Create a user and print its id."""
    from corral.errors import CorralError

    if not password_stdin:
        typer.echo("error: pass the password on standard input with --password-stdin", err=True)
        raise typer.Exit(2)
    password = sys.stdin.readline().rstrip("\r\n")
    settings = ServerSettings(data_dir=data_dir, database_url=database_url)
    try:
        user_id = asyncio.run(_create(settings, email, password, role))
    except CorralError as exc:
        typer.echo(f"error: {exc.message}", err=True)
        raise typer.Exit(2) from None
    typer.echo(user_id)
