"""`corral token create|list|revoke`: API tokens, straight from the configured database."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import typer

from corral.settings import ServerSettings
from corral.store.base import Store

T = TypeVar("T")

token_app = typer.Typer(help="Manage API tokens (reads the server's database directly).")


def register(app: typer.Typer) -> None:
    app.add_typer(token_app, name="token")


DataDir = typer.Option(Path("./corral-data"), envvar="CORRAL_DATA_DIR")
DatabaseUrl = typer.Option(None, envvar="CORRAL_DATABASE_URL")


async def _mint(store: Store, role: str, name: str, project: str | None) -> str:
    from corral.services.tokens import TokenService

    _, secret = await TokenService(store).mint(role, name, project_id=project)
    return secret


@token_app.command("create")
def create(
    role: str = typer.Option(..., help="admin, submitter, viewer, worker or agent"),
    name: str = typer.Option("", help="A label to recognise the token by."),
    project: str | None = typer.Option(
        None, help="The TaskDriver project an agent token is bound to (agent tokens only)."
    ),
    data_dir: Path = DataDir,
    database_url: str | None = DatabaseUrl,
) -> None:
    """Mint a token and print it (it is shown only once)."""
    from corral.errors import CorralError

    settings = ServerSettings(data_dir=data_dir, database_url=database_url)
    try:
        secret = asyncio.run(
            _on_store(settings, lambda store: _mint(store, role, name or f"{role}-token", project))
        )
    except CorralError as exc:
        typer.echo(f"error: {exc.message}", err=True)
        raise typer.Exit(2) from None
    typer.echo(secret)


async def _on_store(settings: ServerSettings, action: Callable[[Store], Awaitable[T]]) -> T:
    from corral.services.container import open_store

    store = open_store(settings)
    await store.open()
    try:
        return await action(store)
    finally:
        await store.close()


@token_app.command("list")
def list_tokens(data_dir: Path = DataDir, database_url: str | None = DatabaseUrl) -> None:
    """List tokens (id, name, role, revoked); the secrets themselves are never stored."""
    settings = ServerSettings(data_dir=data_dir, database_url=database_url)
    for token in asyncio.run(_on_store(settings, lambda store: store.list_tokens())):
        state = "revoked" if token.revoked else "active"
        bound = f"\tproject {token.project_id}" if token.project_id else ""
        typer.echo(f"{token.id}\t{token.name}\t{token.role}\t{state}{bound}")


@token_app.command("revoke")
def revoke(
    token_id: str = typer.Argument(..., help="The token's id, from `corral token list`."),
    data_dir: Path = DataDir,
    database_url: str | None = DatabaseUrl,
) -> None:
    """Revoke a token; dispatchers refuse it within their two-second cache."""
    from corral.errors import CorralError

    settings = ServerSettings(data_dir=data_dir, database_url=database_url)
    try:
        asyncio.run(_on_store(settings, lambda store: store.revoke_token(token_id)))
    except CorralError as exc:
        typer.echo(f"error: {exc.message}", err=True)
        raise typer.Exit(2) from None
    typer.echo(f"{token_id} revoked")
