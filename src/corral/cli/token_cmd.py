"""`corral token create|list|revoke`: API tokens, on the database host or over HTTP.

Where a command acts:

1. ``--data-dir`` / ``CORRAL_DATA_DIR`` or ``--database-url`` / ``CORRAL_DATABASE_URL``
   given: straight on that database (which must exist: cli/database.py);
2. else ``--server`` / ``CORRAL_URL`` given, or a saved ``corral login``: over HTTP,
   with ``--token`` / ``CORRAL_TOKEN`` or the saved login's token;
3. else the default database, ``./corral-data``, refused when it is not there.

Over HTTP an admin sees and revokes every token; anyone else their own personal
tokens. ``create`` without ``--role`` mints a personal token for the signed-in
user (it acts with their role); with one, an admin mints a token of that role.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import typer

from corral.cli.common import JsonOpt, print_rows
from corral.cli.config import fail, resolve_credentials
from corral.cli.database import DatabaseUrlOpt, DataDirOpt, existing, run_on_store
from corral.cli.durations import seconds
from corral.cli.remote import Remote, RemoteError, remote_errors
from corral.client.credentials import CredentialsError, load_saved

token_app = typer.Typer(
    help="Manage API tokens, on the server's database or over HTTP (--server / a saved login)."
)
COLUMNS = ("id", "name", "role", "state", "owner", "expires_at", "last_used_at")
HTTP_HINT = ", or manage tokens over HTTP with --server URL (or CORRAL_URL) and an admin token"

ServerOpt = typer.Option(
    None,
    "--server",
    envvar="CORRAL_URL",
    help="Act over HTTP on this dispatcher (or replicas' URLs, comma-separated).",
)
TokenOpt = typer.Option(None, "--token", envvar="CORRAL_TOKEN", help="API token (HTTP only).")


def register(app: typer.Typer) -> None:
    app.add_typer(token_app, name="token")


def _over_http(server: str | None, data_dir: Path | None, database_url: str | None) -> bool:
    if data_dir is not None or database_url:
        return False
    if server:
        return True
    try:
        return load_saved() is not None
    except CredentialsError:
        return False


def _remote(server: str | None, token: str | None) -> Remote:
    url, secret = resolve_credentials(server, token)
    return Remote(url, secret)


@token_app.command("create")
def create(
    role: str | None = typer.Option(
        None, help="admin, submitter, viewer, worker or agent (omit over HTTP: a personal token)"
    ),
    name: str = typer.Option("", help="A label to recognise the token by."),
    expires_in: str | None = typer.Option(
        None, "--expires-in", help="Lifetime such as 90d, 12h or 3600 (default: never expires)."
    ),
    project: str | None = typer.Option(
        None, help="The TaskDriver project an agent token is bound to (agent tokens only)."
    ),
    server: str | None = ServerOpt,
    token: str | None = TokenOpt,
    data_dir: Path | None = DataDirOpt,
    database_url: str | None = DatabaseUrlOpt,
) -> None:
    """Mint a token and print it (it is shown only once)."""
    lifetime = seconds(expires_in, "--expires-in")
    if _over_http(server, data_dir, database_url):
        body: dict[str, Any] = {"name": name, "expires_in": lifetime}
        path = "/api/v1/me/tokens"
        if role is not None:
            body |= {"role": role, "project_id": project}
            path = "/api/v1/admin/tokens"
        with _remote(server, token) as remote, remote_errors():
            minted = remote.call("POST", path, body)
        typer.echo(minted["token"])
        return
    if role is None:
        fail("--role is required on the database (a personal token needs a login: --server)", 2)
    settings = existing(data_dir, database_url, HTTP_HINT)
    typer.echo(run_on_store(settings, lambda s: _mint(s, role, name, project, lifetime)))


async def _mint(store: Any, role: str, name: str, project: str | None, life: int | None) -> str:
    from corral.services.tokens import TokenService

    _, secret = await TokenService(store).mint(
        role, name or f"{role}-token", project_id=project, expires_in=life
    )
    return secret


@token_app.command("list")
def list_tokens(
    as_json: bool = JsonOpt,
    server: str | None = ServerOpt,
    token: str | None = TokenOpt,
    data_dir: Path | None = DataDirOpt,
    database_url: str | None = DatabaseUrlOpt,
) -> None:
    """List tokens (id, name, role, state, expiry, last use); secrets are never stored."""
    if _over_http(server, data_dir, database_url):
        with _remote(server, token) as remote, remote_errors():
            rows = _admin_or_own(remote, "GET", "")
    else:
        settings = existing(data_dir, database_url, HTTP_HINT)
        records = run_on_store(settings, lambda store: store.list_tokens())
        rows = [_record_row(r) for r in records]
    if as_json:
        typer.echo(json.dumps(rows))
        return
    print_rows([_display(r) for r in rows], COLUMNS, False, "Tokens")


@token_app.command("revoke")
def revoke(
    token_id: str = typer.Argument(..., help="The token's id, from `corral token list`."),
    server: str | None = ServerOpt,
    token: str | None = TokenOpt,
    data_dir: Path | None = DataDirOpt,
    database_url: str | None = DatabaseUrlOpt,
) -> None:
    """Revoke a token; dispatchers refuse it within their two-second cache."""
    if _over_http(server, data_dir, database_url):
        with _remote(server, token) as remote, remote_errors():
            _admin_or_own(remote, "DELETE", f"/{token_id}")
    else:
        settings = existing(data_dir, database_url, HTTP_HINT)
        run_on_store(settings, lambda store: store.revoke_token(token_id))
    typer.echo(f"{token_id} revoked")


def _admin_or_own(remote: Remote, method: str, suffix: str) -> Any:
    """Admins act on every token; anyone else (403 there) on their own personal ones."""
    try:
        return remote.call(method, f"/api/v1/admin/tokens{suffix}")
    except RemoteError as exc:
        if exc.status != 403:
            raise
    return remote.call(method, f"/api/v1/me/tokens{suffix}")


def _record_row(record: Any) -> dict[str, Any]:
    """A database record in the admin API's shape, so both paths print alike."""
    state = "active"
    if record.revoked:
        state = "revoked"
    elif record.expires_at is not None and record.expires_at <= time.time():
        state = "expired"
    return {
        "id": record.id,
        "name": record.name,
        "role": record.role,
        "state": state,
        "created_at": _iso(record.created_at),
        "expires_at": _iso(record.expires_at),
        "last_used_at": _iso(record.last_used_at),
        "user_id": record.user_id,
        "project_id": record.project_id,
        "executor_id": record.executor_id,
    }


def _display(row: dict[str, Any]) -> dict[str, Any]:
    """Whom a token belongs to, and times to the minute, for people reading a table."""
    owners = (("user", "user_id"), ("project", "project_id"), ("worker", "executor_id"))
    owner = next((f"{kind} {row[key]}" for kind, key in owners if row.get(key)), None)
    times = {k: (row.get(k) or "never")[:16].replace("T", " ") for k in COLUMNS[5:]}
    return row | times | {"owner": owner}


def _iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
