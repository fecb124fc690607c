"""`corral logs`: a job's output as a terminal would have shown it, or followed live.

By default stdout and stderr come together, in the order the dispatcher received
them, all on this command's stdout (so `corral logs ID | less` keeps the order);
``--stream`` keeps one. ``--tail N`` starts N lines from the end; ``--timestamps``
puts the time each line's chunk arrived (UTC) in front of it. ``--follow`` waits
for a job that has not started yet, streams until it ends and exits with its code.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import typer

from corral.cli import following
from corral.cli.common import ServerOpt, TokenOpt, client_session
from corral.cli.config import fail
from corral.cli.job_ids import resolve
from corral.client.events import EndEvent

if TYPE_CHECKING:
    from corral.client.client import JsonClient

STREAM_CHOICES = ("all", "stdout", "stderr")


def register(app: typer.Typer) -> None:
    app.command("logs")(logs)


def logs(
    job_id: str = typer.Argument(..., help="A job id or a unique prefix (8+ characters)."),
    follow: bool = typer.Option(
        False, "--follow", "-f", help="Keep streaming until the job ends (waits for it to start)."
    ),
    stream: str = typer.Option("all", "--stream", "-s", help="all (default), stdout or stderr."),
    tail: int | None = typer.Option(None, "--tail", "-n", min=0, help="Only the last N lines."),
    timestamps: bool = typer.Option(
        False, "--timestamps", "-t", help="Prefix each line with when it arrived (UTC)."
    ),
    server: str | None = ServerOpt,
    token: str | None = TokenOpt,
) -> None:
    """Print a job's output: stdout and stderr together, in arrival order."""
    if stream not in STREAM_CHOICES:
        fail(f"--stream must be one of {', '.join(STREAM_CHOICES)}", 2)
    wanted = ("stdout", "stderr") if stream == "all" else (stream,)
    with client_session(server, token) as client:
        job_id = resolve(client, job_id)
        stored = client.interleaved(job_id)
        chunks = [c for c in stored["chunks"] if c["stream"] in wanted]
        shown = dict.fromkeys(wanted, 0)  # bytes already printed, per stream
        lines = as_lines(chunks, timestamps)
        sys.stdout.write("".join(lines if tail is None else lines[len(lines) - tail :]))
        sys.stdout.flush()
        for name in wanted:
            if stored.get(f"{name}_truncated"):
                typer.echo(f"note: {name} was cut at the server's output cap", err=True)
        if not follow:
            return
        for chunk in chunks:
            shown[chunk["stream"]] += len(chunk["data"].encode())
        final = _follow(client, job_id, shown, timestamps)
    raise typer.Exit(following.exit_status(final))


def as_lines(chunks: list[dict[str, Any]], timestamps: bool) -> list[str]:
    """The chunks' text cut into lines (each keeping its newline), stamped when asked."""
    lines: list[str] = []
    open_line = False  # the last line has no newline yet: the next chunk continues it
    for chunk in chunks:
        for piece in str(chunk["data"]).splitlines(keepends=True):
            if open_line:
                lines[-1] += piece
            else:
                lines.append(_stamp(chunk.get("at"), timestamps) + piece)
            open_line = not piece.endswith(("\n", "\r"))
    return lines


def _stamp(at: str | None, timestamps: bool) -> str:
    if not timestamps:
        return ""
    return f"{at or '-'} "


def _follow(
    client: JsonClient, job_id: str, shown: dict[str, int], timestamps: bool
) -> dict[str, Any]:
    """Stream what arrives past what was printed; new output is stamped on receipt.

    The server replays the current attempt from offset 0: what was printed already is
    skipped. A stream whose offsets go back is a new attempt (a retry): its output is
    all new, and a line on stderr says so.
    """
    open_line = False
    ends: dict[str, int] = {}
    for event in client.follow(job_id):
        if isinstance(event, EndEvent):
            return {
                "status": event.status,
                "exit_code": event.exit_code,
                "error_message": event.error_message,
            }
        if event.stream not in shown:  # --stream: the other one
            continue
        if event.offset < ends.get(event.stream, 0):
            typer.echo("-- a new attempt starts --", err=True)
            shown, ends = dict.fromkeys(shown, 0), {}
        data = event.data.encode()
        ends[event.stream] = event.offset + len(data)
        skip = max(0, shown[event.stream] - event.offset)
        if skip >= len(data):
            continue
        shown[event.stream] = event.offset + len(data)
        text = _stamped(data[skip:].decode(errors="replace"), open_line, timestamps)
        open_line = not text.endswith(("\n", "\r"))
        sys.stdout.write(text)
        sys.stdout.flush()
    return following.wait_for(client, job_id)


def _stamped(text: str, open_line: bool, timestamps: bool) -> str:
    """``text`` with the time of receipt before each line it starts."""
    if not timestamps:
        return text
    now = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return "".join(
        (piece if open_line and i == 0 else f"{now} {piece}")
        for i, piece in enumerate(text.splitlines(keepends=True))
    )
