"""Stored files: uploaded input archives and the artifacts a job's attempts produced.

A file is bytes kept in the database in fixed-size chunks, so every dispatcher
replica sharing the database can serve it; no replica's local disk holds state.
An artifact is a file tied to one attempt of one job and a relative ``path``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import PurePosixPath

from corral.errors import InvalidInput

CHUNK_SIZE = 1 << 20  # bytes per stored chunk: bounded memory on upload and download
MAX_PATH = 1024
MAX_FILENAME = 255


@dataclass(frozen=True, slots=True)
class NewFile:
    """What is known of a file before its bytes arrive."""

    id: str
    owner_id: str
    filename: str
    content_type: str
    created_at: float
    expires_at: float
    job_id: str | None = None
    attempt: int | None = None
    path: str | None = None


@dataclass(frozen=True, slots=True)
class StoredFile:
    """A complete file: its bytes are all stored and its digest is final."""

    id: str
    owner_id: str
    filename: str
    size: int
    sha256: str
    content_type: str
    created_at: float
    expires_at: float
    job_id: str | None = None
    attempt: int | None = None
    path: str | None = None

    @property
    def chunks(self) -> int:
        return -(-self.size // CHUNK_SIZE)


def relative_path(path: str, field: str = "path") -> PurePosixPath:
    """A path that stays inside the directory it is relative to, or ``InvalidInput``.

    Shared by the dispatcher (artifact paths) and the worker (outputs and archive
    entries): absolute paths, ``..`` components, NULs and backslashes are refused.
    """
    if not path or len(path) > MAX_PATH or "\x00" in path or "\\" in path:
        raise InvalidInput(
            f"{field} must be a relative path of 1-{MAX_PATH} characters", field=field
        )
    parsed = PurePosixPath(path)
    if (
        parsed.is_absolute()
        or ".." in parsed.parts
        or not parsed.parts
        or parsed == PurePosixPath(".")
    ):
        raise InvalidInput(f"{field} must be a relative path inside the job directory", field=field)
    return parsed


def clean_filename(name: str) -> str:
    """The last component of a client-supplied name, for ``Content-Disposition``."""
    base = name.replace("\\", "/").rsplit("/", 1)[-1].replace("\x00", "").strip()
    if not base or base in (".", ".."):
        raise InvalidInput("filename is required", field="filename")
    return base[:MAX_FILENAME]
