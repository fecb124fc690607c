"""A job's files on the worker: its input archive before the run, its outputs after.

Before the process starts, the input archive is streamed to a temporary file
in the job directory and extracted safely (``archive.py``) into the working
directory, and every declared input must then exist; any refusal fails the
job with nothing run. After the process exits, each declared output is
uploaded as an artifact of this attempt before the outcome is reported; an
output that is missing or unsafe is noted in the job's result, not fatal.

An output may name a file, a directory or a glob (``*``, ``?``, ``[...]``,
``**`` for any depth): a directory, or everything a glob matches, is zipped
into one artifact named after it plus ``.zip`` (``results/`` gives
``results.zip``, ``out/*.log`` gives ``out/*.log.zip``), its entries named
relative to the working directory. Symlinks and special files are left out,
since the job chose where they lead; a glob matching nothing is noted as missing.
"""

from __future__ import annotations

import asyncio
import logging
import os
import tempfile
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
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
            collected = await asyncio.to_thread(collect_output, cwd, name)
        except FileNotFoundError:
            notes.append(f"missing output: {name}")
            continue
        except ArchiveError as exc:
            notes.append(str(exc))
            continue
        try:
            if files is None:
                notes.append(f"output {name} not uploaded: this worker cannot upload files")
                continue
            stale = await _upload(files, job_id, attempt, name, collected, notes)
        finally:
            collected.discard()
        if stale:  # the job is someone else's now: nothing more to save
            break
    return tuple(notes)


async def _upload(
    files: FileTransfer, job_id: str, attempt: int, name: str, out: Collected, notes: list[str]
) -> bool:
    """Upload one collected output, noting a failure; True when the lease is gone."""
    try:
        await files.upload_artifact(job_id, attempt, out.path, out.source)
    except TransferError as exc:
        if exc.stale:
            return True
        notes.append(f"output {name} not uploaded: {exc.message}")
        log.warning(
            "output upload failed",
            extra={"action": "output_upload_failed", "job_id": job_id, "error": exc.message},
        )
    return False


GLOB_CHARS = frozenset("*?[")


@dataclass(frozen=True, slots=True)
class Collected:
    """What to upload for one output: the artifact path and the file holding it."""

    path: str
    source: Path
    temporary: bool = False  # a zip made here, removed once uploaded

    def discard(self) -> None:
        if self.temporary:
            self.source.unlink(missing_ok=True)


def collect_output(cwd: Path, name: str) -> Collected:
    """The file an output names, or a zip of the directory or glob matches it names.

    Raises ``FileNotFoundError`` when nothing is there, ``ArchiveError`` when unsafe.
    """
    try:
        rel = relative_path(name.rstrip("/") or name, "output")
    except InvalidInput as exc:
        raise ArchiveError(exc.message) from None
    if GLOB_CHARS & set(name):
        matches = sorted(cwd.glob(str(rel)))
        if not matches:
            raise FileNotFoundError(name)
        return _zipped(cwd, matches, f"{rel}.zip")
    target = cwd.joinpath(*rel.parts)
    if target.is_dir() and not target.is_symlink():
        return _zipped(cwd, [target], f"{rel}.zip")
    return Collected(str(rel), output_file(cwd, name))


def _zipped(cwd: Path, roots: list[Path], path: str) -> Collected:
    """Zip the regular files under ``roots`` (entries relative to ``cwd``) to a temp file."""
    home = os.path.realpath(cwd)
    fd, temp = tempfile.mkstemp(prefix="corral-output-", suffix=".zip")
    try:
        with os.fdopen(fd, "wb") as raw, zipfile.ZipFile(raw, "w", zipfile.ZIP_DEFLATED) as zf:
            for found in _regular_files(roots):
                real = os.path.realpath(found)
                if real.startswith(home + os.sep):  # never a file reached through a link
                    zf.write(found, found.relative_to(cwd).as_posix())
    except BaseException:
        os.unlink(temp)
        raise
    return Collected(path, Path(temp), temporary=True)


def _regular_files(roots: list[Path]) -> Iterator[Path]:
    """Regular files at or below ``roots``, symlinks neither followed nor kept."""
    for root in roots:
        if root.is_symlink():
            continue
        if root.is_file():
            yield root
            continue
        for folder, dirs, names in os.walk(root):
            dirs.sort()
            for entry in sorted(names):
                item = Path(folder, entry)
                if item.is_file() and not item.is_symlink():
                    yield item
