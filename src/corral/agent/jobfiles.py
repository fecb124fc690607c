"""A job's files on the worker: its input archive before the run, its outputs after.

Before the process starts, the input archive is streamed to a temporary file
in the job directory and extracted safely (``archive.py``) into the working
directory, and every declared input must then exist; any refusal fails the
job with nothing run. After the process exits, each declared output is
uploaded as an artifact of this attempt before the outcome is reported; an
output that is missing or unsafe is noted in the job's result, not fatal.
"""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path
from typing import Protocol

from corral.agent.archive import ArchiveError, extract_zip, output_file
from corral.domain.files import relative_path
from corral.domain.jobs import JobSpec
from corral.errors import InvalidInput

log = logging.getLogger("corral.agent.files")
ARCHIVE_NAME = ".corral-input.zip"


class TransferError(Exception):
    """A download or upload failed; ``stale`` when the attempt lost its lease (409)."""

    def __init__(self, message: str, *, retryable: bool = False, stale: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.retryable = retryable
        self.stale = stale


class JobFilesError(Exception):
    """The job cannot start: its archive or inputs are refused, or could not be fetched."""

    def __init__(self, message: str, *, retryable: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.retryable = retryable


class FileTransfer(Protocol):
    """The dispatcher's file endpoints, as the worker uses them."""

    async def download_input(self, job_id: str, attempt: int, file_id: str, dest: Path) -> None:
        """Stream the job's input file to ``dest``; raise ``TransferError``."""

    async def upload_artifact(self, job_id: str, attempt: int, path: str, source: Path) -> None:
        """Stream ``source`` as the attempt's artifact at ``path``; raise ``TransferError``."""


async def prepare_inputs(
    files: FileTransfer | None,
    job_id: str,
    attempt: int,
    spec: JobSpec,
    job_dir: Path,
    cwd: Path,
) -> None:
    """Fetch and extract the input archive at the job's root, then check that the
    working directory and the declared inputs are there."""
    if spec.input_file_id:
        if files is None:
            raise JobFilesError("this worker cannot fetch input files", retryable=True)
        archive = job_dir / ARCHIVE_NAME
        try:
            await files.download_input(job_id, attempt, spec.input_file_id, archive)
        except TransferError as exc:
            message = f"could not download input {spec.input_file_id}: {exc.message}"
            raise JobFilesError(message, retryable=exc.retryable) from exc
        try:
            await asyncio.to_thread(_extract, archive, job_dir)
        except ArchiveError as exc:
            raise JobFilesError(f"input archive refused: {exc}") from exc
        if not await asyncio.to_thread(cwd.is_dir):
            where = cwd.relative_to(job_dir)
            raise JobFilesError(f"working directory {str(where)!r} is not in the input archive")
    for name in spec.inputs:
        if not await asyncio.to_thread(_input_exists, cwd, name):
            raise JobFilesError(f"missing input: {name}")


def _extract(archive: Path, cwd: Path) -> None:
    """Unlink the archive once open, so no entry can overwrite it while it is read."""
    with archive.open("rb") as fh:
        archive.unlink()
        extract_zip(fh, cwd)


def _input_exists(cwd: Path, name: str) -> bool:
    try:
        rel = relative_path(name, "input")
    except InvalidInput:
        return False
    return os.path.lexists(cwd.joinpath(*rel.parts))


async def save_outputs(
    files: FileTransfer | None, job_id: str, attempt: int, spec: JobSpec, cwd: Path
) -> tuple[str, ...]:
    """Upload each declared output; return notes on those that could not be saved."""
    notes: list[str] = []
    for name in spec.outputs:
        try:
            source = await asyncio.to_thread(output_file, cwd, name)
        except FileNotFoundError:
            notes.append(f"missing output: {name}")
            continue
        except ArchiveError as exc:
            notes.append(str(exc))
            continue
        if files is None:
            notes.append(f"output {name} not uploaded: this worker cannot upload files")
            continue
        try:
            await files.upload_artifact(job_id, attempt, str(relative_path(name)), source)
        except TransferError as exc:
            if exc.stale:  # the job is someone else's now: nothing more to save
                break
            notes.append(f"output {name} not uploaded: {exc.message}")
            log.warning(
                "output upload failed",
                extra={"action": "output_upload_failed", "job_id": job_id, "error": exc.message},
            )
    return tuple(notes)
