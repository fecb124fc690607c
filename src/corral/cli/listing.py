"""`corral jobs` as people read it: one line per job that fits an 80-column terminal.

Ids are shortened to the prefix every command accepts; the name (or else the
command) takes whatever width is left and is cut with an ellipsis. ``--wide``
and ``--json`` give full ids and every column.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import typer

from corral.cli.job_ids import short

WIDTH = 80
HEADER = ("ID", "STATUS", "EXIT", "CREATED", "WORKER")
# Column widths, spaces included, of the fixed part of a line; the rest is the command.
WIDTHS = (9, 10, 5, 12, 13)


def print_jobs(rows: list[dict[str, Any]]) -> None:
    typer.echo(_line((*HEADER, "NAME / COMMAND")))
    for row in rows:
        typer.echo(_line(_cells(row)))


def _cells(row: dict[str, Any]) -> tuple[str, ...]:
    code = row.get("exit_code")
    what = row.get("name") or row.get("command") or row.get("type") or "-"
    return (
        short(str(row["id"])),
        str(row.get("status") or "-"),
        "-" if code is None else str(code),
        _created(row.get("created_at")),
        str(row.get("executor_id") or "-"),
        " ".join(str(what).split()),  # one line, whatever newlines the command holds
    )


def _line(cells: tuple[str, ...]) -> str:
    fixed = "".join(_fit(c, w - 1).ljust(w) for c, w in zip(cells, WIDTHS, strict=False))
    return (fixed + _fit(cells[-1], WIDTH - len(fixed))).rstrip()


def _fit(text: str, width: int) -> str:
    return text if len(text) <= width else text[: max(0, width - 1)] + "…"


def _created(value: Any) -> str:
    """``12-03 01:55`` (UTC, as the server says it): the date and minute are enough here."""
    if not value:
        return "-"
    try:
        return datetime.fromisoformat(str(value)).strftime("%m-%d %H:%M")
    except ValueError:
        return str(value)[:11]
