"""What every client command shares: credentials options, the SDK session, and tables.

Lists are rich tables on a terminal and tab-separated text otherwise; ``--json``
prints the server's JSON for scripts. A server error is one line on stderr and
a non-zero exit, never a traceback.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import typer

from corral.cli.config import fail, resolve_credentials

if TYPE_CHECKING:
    from corral.client.client import JsonClient

ServerOpt = typer.Option(
    None,
    "--server",
    envvar="CORRAL_URL",
    help="Dispatcher URL, or replicas' URLs comma-separated (the next is tried when one "
    "cannot be reached).",
)
TokenOpt = typer.Option(None, "--token", envvar="CORRAL_TOKEN", help="API token.")
JsonOpt = typer.Option(False, "--json", help="Print JSON.")
TERMINAL = ("completed", "failed", "cancelled")


@contextmanager
def client_session(server: str | None, token: str | None) -> Iterator[JsonClient]:
    """A JSON client of the dispatcher; its errors end the command with one line."""
    url, secret = resolve_credentials(server, token)
    from corral.client.client import JsonClient
    from corral.client.errors import CorralAPIError

    try:
        with JsonClient(url, secret) as client:
            yield client
    except CorralAPIError as exc:
        fail(str(exc), 2 if exc.status in (400, 404, 409, 422) else 1)
    except KeyboardInterrupt:  # Ctrl-C while waiting or following: the job keeps running
        raise typer.Exit(130) from None


def print_rows(
    rows: list[dict[str, Any]], columns: Sequence[str], as_json: bool, title: str
) -> None:
    if as_json:
        typer.echo(json.dumps(rows))
        return
    cells = [[cell(row.get(c)) for c in columns] for row in rows]
    if not sys.stdout.isatty():
        for line in [list(columns), *cells]:
            typer.echo("\t".join(line))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    for column in columns:
        table.add_column(column)
    for line in cells:
        table.add_row(*line)
    Console().print(table)


def cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, list):
        return ",".join(str(v) for v in value) or "-"
    return str(value)


def output_notes(job: dict[str, Any]) -> list[str]:
    """What the worker could not collect of a job's ``--output`` paths (missing, too big,
    not uploaded), as it noted in the job's result."""
    result = job.get("result")
    notes = result.get("output_notes") if isinstance(result, dict) else None
    return [str(n) for n in notes] if isinstance(notes, list) else []
