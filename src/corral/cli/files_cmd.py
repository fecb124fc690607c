"""`corral artifacts`: list the files a job saved from its outputs, or download them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from corral.cli.common import (
    JsonOpt,
    ServerOpt,
    TokenOpt,
    client_session,
    output_notes,
    print_rows,
)
from corral.cli.config import fail
from corral.cli.job_ids import resolve
from corral.domain.files import relative_path
from corral.errors import InvalidInput


def register(app: typer.Typer) -> None:
    app.command("artifacts")(artifacts)


def artifacts(
    job_id: str = typer.Argument(..., help="A job id or a unique prefix (8+ characters)."),
    download: Path | None = typer.Option(
        None, "--download", "-d", file_okay=False, help="Save them under this directory."
    ),
    as_json: bool = JsonOpt,
    server: str | None = ServerOpt,
    token: str | None = TokenOpt,
) -> None:
    """List a job's artifacts; with --download, save the latest attempt's copy of each path.

    A directory or glob given to `--output` is one zip artifact; outputs the worker
    could not collect (missing, unsafe, not uploaded) are said on stderr.
    """
    with client_session(server, token) as client:
        job_id = resolve(client, job_id)
        found = client.artifacts(job_id)
        for note in output_notes(client.get(job_id)):
            typer.echo(f"not collected: {note}", err=True)
        if download is None:
            columns = ("id", "path", "attempt", "size", "sha256", "created_at")
            print_rows(found, columns, as_json, "Artifacts")
            return
        saved = []
        for artifact in latest_per_path(found):
            target = _target(download, str(artifact["path"]))
            target.parent.mkdir(parents=True, exist_ok=True)
            client.download_artifact(job_id, str(artifact["id"]), target)
            saved.append(str(target))
    for line in saved if not as_json else [json.dumps(saved)]:
        typer.echo(line)


def latest_per_path(found: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A retried job keeps each attempt's artifacts; the newest attempt's copy wins."""
    latest: dict[str, dict[str, Any]] = {}
    for artifact in found:
        kept = latest.get(artifact["path"])
        if kept is None or artifact["attempt"] > kept["attempt"]:
            latest[artifact["path"]] = artifact
    return [latest[p] for p in sorted(latest)]


def _target(root: Path, path: str) -> Path:
    """Never trust a server-supplied path to stay under ``root``."""
    try:
        return root.joinpath(*relative_path(path).parts)
    except InvalidInput:
        fail(f"refusing artifact path {path!r}", 1)
