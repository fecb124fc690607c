"""`corral login`, `corral whoami`, `corral logout`: a person's session on the CLI.

``corral login URL`` asks for an email and a password (the password prompt
does not echo; ``--password-stdin`` reads it from a pipe instead), signs in,
and with that 24-hour login mints a *personal token* named after this machine
(90 days by default, ``--expires-in``): that token is what is saved (mode 0600,
see ``corral.client.credentials``), so the CLI and the SDK keep working after
the login itself expired, and ``corral logout`` revokes it on the server before
forgetting it. ``corral login URL --token T`` saves a token minted elsewhere.
"""

from __future__ import annotations

import getpass
import json
import socket
import sys
from typing import Any

import typer

from corral.cli.config import fail, resolve_credentials
from corral.cli.durations import seconds
from corral.cli.remote import Remote, RemoteError, remote_errors
from corral.client.credentials import SavedLogin, forget_login, save_login

DEFAULT_LIFETIME = "90d"


def register(app: typer.Typer) -> None:
    for command in (login, whoami, logout):
        app.command(command.__name__)(command)


def login(
    url: str = typer.Argument(
        ...,
        help="Dispatcher URL, e.g. http://127.0.0.1:3000 (or replicas' URLs, comma-separated)",
    ),
    email: str | None = typer.Option(None, help="Your login email (prompted when omitted)."),
    password_stdin: bool = typer.Option(
        False, "--password-stdin", help="Read the password from standard input."
    ),
    token: str | None = typer.Option(
        None, "--token", help="Save this API token instead of signing in with a password."
    ),
    expires_in: str = typer.Option(
        DEFAULT_LIFETIME, "--expires-in", help="Lifetime of the saved personal token."
    ),
) -> None:
    """Sign in (email and password) and save a personal token for later commands."""
    from corral.failover import parse_urls

    try:
        url = ",".join(parse_urls(url))
    except ValueError as exc:
        fail(str(exc), 2)
    if token is not None:
        with Remote(url, token) as remote, remote_errors():
            me = remote.call("GET", "/api/v1/me")
        path = save_login(SavedLogin(url=url, token=token))
        typer.echo(f"logged in to {url} as {me['name']} ({me['role']}); saved to {path}")
        return
    lifetime = seconds(expires_in, "--expires-in")
    email = email or typer.prompt("Email")
    password = _password(password_stdin)
    with remote_errors():
        saved = _sign_in(url, email, password, lifetime)
    path = save_login(saved)
    typer.echo(f"logged in to {url} as {saved.email}; token saved to {path}")


def _password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    if not sys.stdin.isatty():
        fail("not a terminal: pass the password on standard input with --password-stdin", 2)
    return getpass.getpass("Password: ")


def _sign_in(url: str, email: str, password: str, lifetime: int | None) -> SavedLogin:
    """Password login, then a personal token minted with it; the login JWT is dropped."""
    with Remote(url) as anonymous:
        session = anonymous.call("POST", "/api/auth/login", {"email": email, "password": password})
    body = {"name": f"corral login on {socket.gethostname()}", "expires_in": lifetime}
    with Remote(url, session["token"]) as signed_in:
        minted = signed_in.call("POST", "/api/v1/me/tokens", body)
    return SavedLogin(url=url, token=minted["token"], token_id=minted["id"], email=email)


def whoami(
    server: str | None = typer.Option(
        None, "--server", envvar="CORRAL_URL", help="Dispatcher URL (or replicas' URLs)."
    ),
    token: str | None = typer.Option(None, "--token", envvar="CORRAL_TOKEN", help="API token."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Say who the current credentials speak for, on which server."""
    url, secret = resolve_credentials(server, token)
    with Remote(url, secret) as remote, remote_errors():
        me: dict[str, Any] = remote.call("GET", "/api/v1/me")
    if as_json:
        typer.echo(json.dumps(me | {"server": url}))
        return
    via = "a login" if me["credential"] == "login" else "a token"
    if me.get("token"):
        via = f"token {me['token']['name']!r} ({me['token']['id']})"
    typer.echo(f"{me['name']} ({me['role']}) on {url}, via {via}")


def logout() -> None:
    """Revoke the saved personal token on its server and forget the saved login."""
    saved = forget_login()
    if saved is None:
        typer.echo("not logged in")
        return
    if saved.token_id is not None:
        try:
            with Remote(saved.url, saved.token) as remote:
                remote.call("DELETE", f"/api/v1/me/tokens/{saved.token_id}")
        except RemoteError as exc:
            if exc.status not in (401, 404):  # already revoked or expired: nothing to do
                typer.echo(f"warning: the token was not revoked on the server: {exc}", err=True)
    typer.echo(f"logged out of {saved.url}")
