"""`corral token create|list|revoke`: API tokens, straight from the configured database."""

from __future__ import annotations

import asyncio
from pathlib import Path

import typer

from corral.settings import ServerSettings

token_app = typer.Typer(help="Manage API tokens (reads the server's database directly).")


def register(app: typer.Typer) -> None:
    app.add_typer(token_app, name="token")


DataDir = typer.Option(Path("./corral-data"), envvar="CORRAL_DATA_DIR")
DatabaseUrl = typer.Option(None, envvar="CORRAL_DATABASE_URL")


async def _with_services(settings: ServerSettings, role: str, name: str) -> str:
    from corral.services.container import open_store
    from corral.services.tokens import TokenService

    store = open_store(settings)
    await store.open()
    try:
        _, secret = await TokenService(store).mint(role, name)
        return secret
    finally:
        await store.close()


@token_app.command("create")
def create(
    role: str = typer.Option(..., help="admin, submitter, viewer or worker"),
    name: str = typer.Option("", help="A label to recognise the token by."),
    data_dir: Path = DataDir,
    database_url: str | None = DatabaseUrl,
) -> None:
    """Mint a token and print it (it is shown only once)."""
    from corral.errors import CorralError

    settings = ServerSettings(data_dir=data_dir, database_url=database_url)
    try:
        secret = asyncio.run(_with_services(settings, role, name or f"{role}-token"))
    except CorralError as exc:
        typer.echo(f"error: {exc.message}", err=True)
        raise typer.Exit(2) from None
    typer.echo(secret)
