"""Stored files: uploaded input archives and the artifacts a job's attempts produced.

A file is bytes kept in the database in fixed-size chunks, so every dispatcher
replica sharing the database can serve it; no replica's local disk holds state.
An artifact is a file tied to one attempt of one job and a relative ``path``.
"""

from __future__ import annotations

import unicodedata
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

    Shared by the dispatcher (job paths, artifact paths) and the worker (outputs and
    archive entries): absolute paths, ``..`` components, NULs and backslashes are
    refused, and so are other control characters (a path that addresses a file is
    refused rather than silently changed, unlike a stored name: ``stored_path``).
    """
    if not path or len(path) > MAX_PATH or "\x00" in path or "\\" in path:
        raise InvalidInput(
            f"{field} must be a relative path of 1-{MAX_PATH} characters", field=field
        )
    if any(unicodedata.category(c) == "Cc" for c in path):
        raise InvalidInput(f"{field} may not contain control characters", field=field)
    parsed = PurePosixPath(path)
    if (
        parsed.is_absolute()
        or ".." in parsed.parts
        or not parsed.parts
        or parsed == PurePosixPath(".")
    ):
        raise InvalidInput(f"{field} must be a relative path inside the job directory", field=field)
    return parsed


# Characters that are no part of a name anyone means to give: C0/C1 controls and DEL
# (a CR/LF in a name ends the header it is sent in), the line and paragraph
# separators, and the bidirectional overrides that make "txt.exe" read "exe.txt".
_BIDI_CONTROLS = frozenset(
    "\u061c\u200e\u200f"  # Arabic letter mark, LRM, RLM
    "\u202a\u202b\u202c\u202d\u202e"  # embeddings and overrides
    "\u2066\u2067\u2068\u2069"  # isolates
)
_STRIPPED_CATEGORIES = frozenset({"Cc", "Zl", "Zp"})


def strip_controls(text: str) -> str:
    """``text`` without control characters; what is stored as a name or path."""
    return "".join(
        c
        for c in text
        if c not in _BIDI_CONTROLS and unicodedata.category(c) not in _STRIPPED_CATEGORIES
    )


def clean_filename(name: str) -> str:
    """The last component of a client-supplied name, without control characters.

    It is echoed in ``Content-Disposition`` and in URLs: nothing in it may end a
    header line or disguise the name's extension.
    """
    base = strip_controls(name).replace("\\", "/").rsplit("/", 1)[-1].strip()
    if not base or base in (".", ".."):
        raise InvalidInput("filename is required", field="filename")
    return base[:MAX_FILENAME]


def stored_path(path: str, field: str = "path") -> PurePosixPath:
    """An artifact's ``path`` as it is stored: control characters stripped, then
    held to ``relative_path``'s rules (so a path that was only controls is refused)."""
    return relative_path(strip_controls(path), field)
