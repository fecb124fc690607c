"""`corral user create|list|set-role|disable|enable|reset-password`, on the database.

Like `corral token`, these open the server's configured database directly:
whoever can read it holds every account anyway, so the commands act as an
admin (``OPERATOR``) through the same account service as the admin API, with
the same checks on roles, emails and passwords. Passwords are read from
standard input so they never show in ``ps`` or shell history.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import typer

from corral.cli.common import JsonOpt, print_rows
from corral.domain.principals import Principal, Role
from corral.settings import ServerSettings

if TYPE_CHECKING:
    from corral.services.accounts import AccountService, UserView

T = TypeVar("T")

user_app = typer.Typer(help="Manage login users (reads the server's database directly).")

# Not a user, so the service's guard against an admin locking themselves out never fires.
OPERATOR = Principal(id="cli-operator", name="corral user (database access)", role=Role.ADMIN)
COLUMNS = ("id", "email", "role", "status", "created_at")


def register(app: typer.Typer) -> None:
    app.add_typer(user_app, name="user")


DataDir = typer.Option(Path("./corral-data"), envvar="CORRAL_DATA_DIR")
DatabaseUrl = typer.Option(None, envvar="CORRAL_DATABASE_URL")
PasswordStdin = typer.Option(
    False, "--password-stdin", help="Read the password from standard input."
)


async def _on_accounts(
    settings: ServerSettings, action: Callable[[AccountService], Awaitable[T]]
) -> T:
    from corral.services.accounts import AccountService
    from corral.services.container import open_store

    store = open_store(settings)
    await store.open()
    try:
        return await action(AccountService(store))
    finally:
        await store.close()


def _run(
    data_dir: Path, database_url: str | None, action: Callable[[AccountService], Awaitable[T]]
) -> T:
    """Run one account action; a refused one is one line on stderr and exit code 2."""
    from corral.errors import CorralError

    settings = ServerSettings(data_dir=data_dir, database_url=database_url)
    try:
        return asyncio.run(_on_accounts(settings, action))
    except CorralError as exc:
        typer.echo(f"error: {exc.message}", err=True)
        raise typer.Exit(2) from None


def _read_password(password_stdin: bool) -> str:
    if not password_stdin:
        typer.echo("error: pass the password on standard input with --password-stdin", err=True)
        raise typer.Exit(2)
    return sys.stdin.readline().rstrip("\r\n")


def _row(user: UserView) -> dict[str, Any]:
    created = datetime.fromtimestamp(user.created_at, UTC).isoformat(timespec="seconds")
    return {
        "id": user.id,
        "email": user.email,
        "role": user.role,
        "status": "disabled" if user.disabled else "active",
        "created_at": created.replace("+00:00", "Z"),
    }


@user_app.command("create")
def create(
    email: str = typer.Option(..., help="The login email."),
    role: str = typer.Option(..., help="admin, submitter or viewer"),
    password_stdin: bool = PasswordStdin,
    data_dir: Path = DataDir,
    database_url: str | None = DatabaseUrl,
) -> None:
    """Create a user and print its id."""
    password = _read_password(password_stdin)
    user = _run(data_dir, database_url, lambda a: a.mint_user(email, password, role))
    typer.echo(user.id)


@user_app.command("list")
def list_users(
    as_json: bool = JsonOpt, data_dir: Path = DataDir, database_url: str | None = DatabaseUrl
) -> None:
    """List users, oldest first; password hashes are never shown."""
    users = _run(data_dir, database_url, lambda a: a.list_users(OPERATOR))
    print_rows([_row(u) for u in users], COLUMNS, as_json, "Users")


async def _change(accounts: AccountService, email: str, **change: Any) -> UserView:
    user = await accounts.find_user(OPERATOR, email)
    return await accounts.update_user(OPERATOR, user.id, **change)


@user_app.command("set-role")
def set_role(
    email: str = typer.Argument(..., help="The user's email."),
    role: str = typer.Argument(..., help="admin, submitter or viewer"),
    data_dir: Path = DataDir,
    database_url: str | None = DatabaseUrl,
) -> None:
    """Change a user's role; it applies to the user's next request, even on a live login."""
    user = _run(data_dir, database_url, lambda a: _change(a, email, role=role))
    typer.echo(f"{user.email} is now {user.role}")


@user_app.command("disable")
def disable(
    email: str = typer.Argument(..., help="The user's email."),
    data_dir: Path = DataDir,
    database_url: str | None = DatabaseUrl,
) -> None:
    """Refuse the user's logins and every token they already hold."""
    user = _run(data_dir, database_url, lambda a: _change(a, email, disabled=True))
    typer.echo(f"{user.email} disabled")


@user_app.command("enable")
def enable(
    email: str = typer.Argument(..., help="The user's email."),
    data_dir: Path = DataDir,
    database_url: str | None = DatabaseUrl,
) -> None:
    """Let a disabled user log in again."""
    user = _run(data_dir, database_url, lambda a: _change(a, email, disabled=False))
    typer.echo(f"{user.email} enabled")


@user_app.command("reset-password")
def reset_password(
    email: str = typer.Argument(..., help="The user's email."),
    password_stdin: bool = PasswordStdin,
    data_dir: Path = DataDir,
    database_url: str | None = DatabaseUrl,
) -> None:
    """Set a new password (read from standard input); the old one stops working."""
    password = _read_password(password_stdin)
    user = _run(data_dir, database_url, lambda a: _change(a, email, password=password))
    typer.echo(f"{user.email} password changed")
