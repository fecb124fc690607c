"""`corral mcp`: Corral as a stdio MCP server for desktop agent clients (docs/mcp.md)."""

from __future__ import annotations

import os
from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    app.command("mcp")(mcp)


def mcp(
    server: str = typer.Option(
        ...,
        "--server",
        envvar="CORRAL_URL",
        help="The dispatcher's URL (any replica; of a comma-separated list, the first).",
    ),
    token_file: Path | None = typer.Option(
        None,
        "--token-file",
        envvar="CORRAL_TOKEN_FILE",
        help="A file holding the token the agent acts with (e.g. an agent token); "
        "without it, CORRAL_TOKEN.",
    ),
) -> None:
    """Serve MCP over stdin/stdout, forwarding to the dispatcher's /mcp endpoint."""
    import anyio

    from corral.mcp.stdio import endpoint, reason, serve

    token = _token(token_file)
    server = server.split(",")[0].strip()  # one MCP session lives on one replica
    try:
        anyio.run(serve, server, token)
    except KeyboardInterrupt:
        pass
    except Exception as exc:
        typer.echo(f"error: MCP session with {endpoint(server)} failed: {reason(exc)}", err=True)
        raise typer.Exit(1) from None


def _token(token_file: Path | None) -> str:
    """From the file (never from the command line, where `ps` would show it)."""
    if token_file is None:
        token = os.environ.get("CORRAL_TOKEN", "").strip()
        if not token:
            typer.echo("error: give --token-file (or set CORRAL_TOKEN)", err=True)
            raise typer.Exit(2)
        return token
    try:
        token = token_file.read_text().strip()
    except OSError as exc:
        typer.echo(f"error: cannot read {token_file}: {exc.strerror}", err=True)
        raise typer.Exit(2) from None
    if not token:
        typer.echo(f"error: {token_file} is empty", err=True)
        raise typer.Exit(2)
    return token
