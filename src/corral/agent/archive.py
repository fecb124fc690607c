"""Safe extraction of a job's input archive, and safe paths for its outputs.

What makes an archive hostile is decided in ``corral.domain.archives``, the
same rules the dispatcher applies when the archive is uploaded; this worker
still applies them itself, because it extracts whatever file a job names,
whichever dispatcher stored it and however. Every entry is checked before
anything is written, then each is inflated through the shared byte budget, so
what lands on disk never exceeds it. What only a real directory can tell (that
a path, resolved, stays inside it) is checked here.
"""

from __future__ import annotations

import os
import stat
import zipfile
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from corral.domain.archives import (
    MAX_ENTRIES,
    MAX_TOTAL,
    ArchiveRefused,
    Entry,
    InflateBudget,
    check_entries,
    inflate,
    open_zip,
)
from corral.domain.files import relative_path
from corral.errors import InvalidInput

__all__ = ["MAX_ENTRIES", "MAX_TOTAL", "ArchiveError", "extract_zip", "output_file"]


class ArchiveError(Exception):
    """The archive is refused; the job must not run.

    Its text is the bare reason: the caller adds ``input archive refused:``.
    """


def _inside(dest: Path, rel: PurePosixPath) -> Path:
    target = dest.joinpath(*rel.parts)
    # Belt and braces: nothing on the way may lead outside (no symlinks are ever created).
    if not os.path.realpath(target).startswith(os.path.realpath(dest) + os.sep):
        raise ArchiveError(f"archive entry {str(rel)!r} leads outside the job directory")
    return target


def extract_zip(
    archive: BinaryIO | Path,
    dest: Path,
    *,
    max_entries: int = MAX_ENTRIES,
    max_total: int = MAX_TOTAL,
) -> int:
    """Extract every entry into ``dest``; return the bytes written, or raise ``ArchiveError``.

    Every entry is checked before anything is written, so a refused archive
    usually leaves ``dest`` untouched; one refused while inflating may leave
    partial files, but only inside ``dest``, which the caller removes.
    """
    try:
        with open_zip(archive) as zf:
            entries = check_entries(zf, max_entries)
            budget = InflateBudget(max_total)
            for entry in entries:
                _extract_one(zf, entry, _inside(dest, entry.path), budget)
            return budget.used
    except ArchiveRefused as exc:
        raise ArchiveError(exc.reason) from None


def _extract_one(zf: zipfile.ZipFile, entry: Entry, target: Path, budget: InflateBudget) -> None:
    if entry.is_dir:
        target.mkdir(parents=True, exist_ok=True)
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target, "wb") as out:
        for piece in inflate(zf, entry, budget):
            out.write(piece)


def output_file(cwd: Path, name: str) -> Path:
    """The regular file an ``outputs`` entry names inside ``cwd``; ``ArchiveError`` if unsafe.

    A symlink is refused even when it points inside: the job chose where it leads.
    """
    try:
        rel = relative_path(name, "output")
    except InvalidInput as exc:
        raise ArchiveError(exc.message) from None
    target = cwd.joinpath(*rel.parts)
    parent = os.path.realpath(target.parent)
    if parent != os.path.realpath(cwd) and not parent.startswith(os.path.realpath(cwd) + os.sep):
        raise ArchiveError(f"output {name!r} leads outside the working directory")
    try:
        mode = os.lstat(target).st_mode
    except FileNotFoundError:
        raise FileNotFoundError(name) from None
    if not stat.S_ISREG(mode):
        raise ArchiveError(f"output {name!r} is not a regular file")
    return target
