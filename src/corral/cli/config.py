"""How the CLI turns flags into credentials, and how it fails: one line, never a traceback.

The order (flags, then ``CORRAL_*``, then the saved login) lives in
``corral.client.credentials.resolve``, shared with the SDK.
"""

from __future__ import annotations

from typing import NoReturn

import typer

from corral.client.credentials import CredentialsError, resolve


def resolve_credentials(url: str | None, token: str | None) -> tuple[str, str]:
    """The dispatcher URL (or replicas' URLs, comma-separated) and token to use; exits
    with one clear line when a URL is malformed or no token is known."""
    from corral.failover import parse_urls  # httpx: only for a command that connects

    try:
        url, secret = resolve(url, token)
        parse_urls(url)
    except (CredentialsError, ValueError) as exc:
        fail(str(exc))
    if not secret:
        fail(
            f"no token for {url}: pass --token, set CORRAL_TOKEN, "
            "or run `corral login URL` (email and password)"
        )
    return url, secret


def fail(message: str, code: int = 1) -> NoReturn:
    """Print one line to stderr and exit non-zero: the CLI never shows a traceback."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)
