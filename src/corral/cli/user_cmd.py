"""`corral user create|list|set-role|disable|enable|reset-password`, on the database.

Like `corral token`, these open the server's configured database directly (and
refuse when there is none there: cli/database.py): whoever can read it holds
every account anyway, so the commands act as an admin (``OPERATOR``) through
the same account service as the admin API, with the same checks on roles,
emails and passwords. A password is prompted for twice, unechoed, on a
terminal, or read from standard input with ``--password-stdin``: never from an
argument, so it shows in neither ``ps`` nor shell history.
"""

from __future__ import annotations

import getpass
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import typer

from corral.cli.common import JsonOpt, print_rows
from corral.cli.config import fail
from corral.cli.database import DatabaseUrlOpt, DataDirOpt, existing, run_on_store
from corral.domain.principals import Principal, Role

if TYPE_CHECKING:
    from corral.services.accounts import AccountService, UserView
    from corral.store.base import Store

T = TypeVar("T")

user_app = typer.Typer(help="Manage login users (reads the server's database directly).")

# Not a user, so the service's guard against an admin locking themselves out never fires.
OPERATOR = Principal(id="cli-operator", name="corral user (database access)", role=Role.ADMIN)
COLUMNS = ("id", "email", "role", "status", "created_at")


def register(app: typer.Typer) -> None:
    app.add_typer(user_app, name="user")


PasswordStdin = typer.Option(
    False, "--password-stdin", help="Read the password from standard input (for scripts)."
)


def _run(
    data_dir: Path | None,
    database_url: str | None,
    action: Callable[[AccountService], Awaitable[T]],
) -> T:
    """Run one account action on the existing database; a refused one exits 2."""
    from corral.services.accounts import AccountService

    def on_store(store: Store) -> Awaitable[T]:
        return action(AccountService(store))

    return run_on_store(existing(data_dir, database_url), on_store)


def _read_password(password_stdin: bool) -> str:
    """From stdin with the flag; else prompted twice without echo, on a terminal only."""
    if password_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    if not sys.stdin.isatty():
        fail("not a terminal: pass the password on standard input with --password-stdin", 2)
    from corral.auth.password_policy import problem

    password = getpass.getpass("Password (at least 12 characters): ")
    reason = problem(password)
    if reason is not None:
        fail(reason, 2)
    if getpass.getpass("Repeat the password: ") != password:
        fail("the two passwords differ; nothing was changed", 2)
    return password


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
    data_dir: Path | None = DataDirOpt,
    database_url: str | None = DatabaseUrlOpt,
) -> None:
    """Create a user and print its id; the password is prompted for when not piped."""
    existing(data_dir, database_url)  # refuse before asking for a password
    password = _read_password(password_stdin)
    user = _run(data_dir, database_url, lambda a: a.mint_user(email, password, role))
    typer.echo(user.id)


@user_app.command("list")
def list_users(
    as_json: bool = JsonOpt,
    data_dir: Path | None = DataDirOpt,
    database_url: str | None = DatabaseUrlOpt,
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
    data_dir: Path | None = DataDirOpt,
    database_url: str | None = DatabaseUrlOpt,
) -> None:
    """Change a user's role; it applies to the user's next request, even on a live login."""
    user = _run(data_dir, database_url, lambda a: _change(a, email, role=role))
    typer.echo(f"{user.email} is now {user.role}")


@user_app.command("disable")
def disable(
    email: str = typer.Argument(..., help="The user's email."),
    data_dir: Path | None = DataDirOpt,
    database_url: str | None = DatabaseUrlOpt,
) -> None:
    """Refuse the user's logins and every token they already hold."""
    user = _run(data_dir, database_url, lambda a: _change(a, email, disabled=True))
    typer.echo(f"{user.email} disabled")


@user_app.command("enable")
def enable(
    email: str = typer.Argument(..., help="The user's email."),
    data_dir: Path | None = DataDirOpt,
    database_url: str | None = DatabaseUrlOpt,
) -> None:
    """Let a disabled user log in again."""
    user = _run(data_dir, database_url, lambda a: _change(a, email, disabled=False))
    typer.echo(f"{user.email} enabled")


@user_app.command("reset-password")
def reset_password(
    email: str = typer.Argument(..., help="The user's email."),
    password_stdin: bool = PasswordStdin,
    data_dir: Path | None = DataDirOpt,
    database_url: str | None = DatabaseUrlOpt,
) -> None:
    """Set a new password (prompted for, or read from standard input); the old one stops."""
    existing(data_dir, database_url)
    password = _read_password(password_stdin)
    user = _run(data_dir, database_url, lambda a: _change(a, email, password=password))
    typer.echo(f"{user.email} password changed")
