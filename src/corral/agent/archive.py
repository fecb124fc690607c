"""Safe extraction of a job's input archive, and safe paths for its outputs.

An archive comes from whoever submitted the job, so it is hostile until
proven otherwise: entries with absolute paths or ``..`` (zip-slip), symlinks
(which would let a later entry write through them), devices, more than
``MAX_ENTRIES`` entries, or more than ``MAX_TOTAL`` bytes once inflated are
all refused. The byte budget is counted on what actually comes out of the
decompressor, never on the sizes the archive claims.
"""

from __future__ import annotations

import os
import stat
import zipfile
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from corral.domain.files import relative_path
from corral.errors import InvalidInput

MAX_ENTRIES = 10_000
MAX_TOTAL = 1 << 30
_PIECE = 1 << 16


class ArchiveError(Exception):
    """The archive is refused; the job must not run."""


def _member_path(info: zipfile.ZipInfo) -> PurePosixPath:
    name = info.filename
    try:
        return relative_path(name.rstrip("/") if info.is_dir() else name, "archive entry")
    except InvalidInput:
        raise ArchiveError(f"archive entry {name!r} is not a safe relative path") from None


def _check_type(info: zipfile.ZipInfo) -> None:
    """Zip keeps the Unix mode in the high 16 bits of ``external_attr`` (0 from DOS tools)."""
    mode = info.external_attr >> 16
    kind = stat.S_IFMT(mode)
    if stat.S_ISLNK(mode):
        raise ArchiveError(f"archive entry {info.filename!r} is a symlink")
    if kind not in (0, stat.S_IFREG, stat.S_IFDIR):
        raise ArchiveError(f"archive entry {info.filename!r} is not a regular file")


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
        with zipfile.ZipFile(archive) as zf:
            infos = zf.infolist()
            if len(infos) > max_entries:
                raise ArchiveError(f"the archive has more than {max_entries} entries")
            plan = []
            for info in infos:
                _check_type(info)
                plan.append((info, _member_path(info)))
            budget = max_total
            for info, rel in plan:
                budget -= _extract_one(zf, info, _inside(dest, rel), budget, max_total)
            return max_total - budget
    except (zipfile.BadZipFile, zipfile.LargeZipFile, RuntimeError, ValueError, EOFError) as exc:
        # RuntimeError: encrypted entries; ValueError/EOFError: corrupt streams.
        raise ArchiveError(f"the archive cannot be read: {exc}") from None


def _extract_one(
    zf: zipfile.ZipFile, info: zipfile.ZipInfo, target: Path, budget: int, max_total: int
) -> int:
    if info.is_dir():
        target.mkdir(parents=True, exist_ok=True)
        return 0
    target.parent.mkdir(parents=True, exist_ok=True)
    written = 0
    with zf.open(info) as src, open(target, "wb") as out:
        while piece := src.read(_PIECE):
            written += len(piece)
            if written > budget:
                raise ArchiveError(f"the archive inflates to more than {max_total} bytes")
            out.write(piece)
    return written


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
