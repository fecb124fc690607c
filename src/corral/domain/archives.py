"""What makes an input archive hostile, judged without writing a byte.

An input archive comes from whoever submitted the job, so it is hostile until
proven otherwise. The dispatcher inspects one as it is uploaded, so a bad one
is refused (400) before it is kept, and the worker checks it again as it
extracts, because it runs whatever file a job names (one stored before these
checks existed, or sent through a path that does not inspect). Both apply the
rules here, so they can never disagree on what is refused:

- every entry's path must stay inside the directory it is extracted to: no
  absolute paths, no ``..`` (zip-slip), no backslashes or NULs;
- only regular files and directories: a symlink would let a later entry write
  through it, and devices or FIFOs have no business in a job's tree;
- at most ``MAX_ENTRIES`` entries, so the central directory alone cannot
  exhaust the reader;
- at most ``MAX_TOTAL`` bytes once inflated (a zip bomb), counted on what the
  decompressor actually puts out, piece by piece, and stopped at the first
  piece past the budget: the sizes an archive declares are the attacker's word.

Reading here means only inflating into memory a piece at a time; the caller
owns the file object and decides what, if anything, is written.
"""

from __future__ import annotations

import lzma
import stat
import zipfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO, Any

from corral.domain.files import relative_path
from corral.errors import InvalidInput

MAX_ENTRIES = 10_000
MAX_TOTAL = 1 << 30  # bytes once inflated
PIECE = 1 << 16  # bytes inflated per read: memory stays bounded whatever the ratio
ZIP_MAGIC = b"PK\x03\x04"  # a local file header: how every ordinary zip begins
ZIP_TYPES = frozenset({"application/zip", "application/x-zip-compressed"})

# What zipfile raises on a damaged or unsupported archive: RuntimeError for an
# encrypted entry, NotImplementedError for an unknown compression method, the
# codecs' own errors (OSError from bz2) and ValueError/EOFError for cut streams.
_UNREADABLE: tuple[type[BaseException], ...] = (
    zipfile.BadZipFile,
    zipfile.LargeZipFile,
    RuntimeError,
    NotImplementedError,
    ValueError,
    EOFError,
    OSError,
    zlib.error,
    lzma.LZMAError,
)


class ArchiveRefused(InvalidInput):
    """The archive must not be extracted.

    An ``InvalidInput``, so every dialect answers an upload 400 with the same
    words a worker puts in a refused job's ``error_message``. ``reason`` is the
    bare why, for callers that add their own prefix.
    """

    def __init__(self, reason: str, **context: Any) -> None:
        super().__init__(f"input archive refused: {reason}", **context)
        self.reason = reason


class NotAZip(ArchiveRefused):
    """No zip structure at all (no end-of-central-directory record).

    Such bytes cannot be a zip-slip or a bomb for any reader that needs the
    central directory; the dispatcher keeps them as an ordinary file, and a
    worker asked to extract them refuses them like any unreadable archive.
    """


@dataclass(frozen=True, slots=True)
class ArchiveLimits:
    """The budget an archive must fit; smaller ones make tests cheap."""

    max_entries: int = MAX_ENTRIES
    max_total: int = MAX_TOTAL


DEFAULT_LIMITS = ArchiveLimits()


@dataclass(frozen=True, slots=True)
class Entry:
    """An entry that passed the path and type checks, and where it belongs."""

    info: zipfile.ZipInfo
    path: PurePosixPath

    @property
    def is_dir(self) -> bool:
        return self.info.is_dir()


@dataclass(frozen=True, slots=True)
class ArchiveSummary:
    entries: int
    total: int  # bytes the file entries really inflated to


def looks_like_zip(filename: str, content_type: str | None, head: bytes = b"") -> bool:
    """Any one sign is enough: each of them alone is what some client sends for a zip."""
    if filename.lower().endswith(".zip"):
        return True
    if content_type and content_type.split(";", 1)[0].strip().lower() in ZIP_TYPES:
        return True
    return head.startswith(ZIP_MAGIC)


@contextmanager
def open_zip(archive: IO[bytes] | Path) -> Iterator[zipfile.ZipFile]:
    """Open for reading; only failures to read the archive itself become refusals.

    The body of the ``with`` is not covered, so a caller's own errors (a full
    disk while extracting) are not mistaken for a bad archive.
    """
    if not zipfile.is_zipfile(archive):
        raise NotAZip("the archive cannot be read: File is not a zip file")
    try:
        zf = zipfile.ZipFile(archive)
    except _UNREADABLE as exc:
        raise ArchiveRefused(f"the archive cannot be read: {exc}") from None
    with zf:
        yield zf


def check_entries(zf: zipfile.ZipFile, max_entries: int = MAX_ENTRIES) -> list[Entry]:
    """Every entry's count, type and path, before a single byte is inflated."""
    infos = zf.infolist()
    if len(infos) > max_entries:
        raise ArchiveRefused(f"the archive has more than {max_entries} entries", limit=max_entries)
    entries = []
    for info in infos:
        _check_type(info)
        entries.append(Entry(info, _entry_path(info)))
    return entries


def _entry_path(info: zipfile.ZipInfo) -> PurePosixPath:
    name = info.filename
    try:
        return relative_path(name.rstrip("/") if info.is_dir() else name, "archive entry")
    except InvalidInput:
        raise ArchiveRefused(
            f"archive entry {name!r} is not a safe relative path", entry=name
        ) from None


def _check_type(info: zipfile.ZipInfo) -> None:
    """Zip keeps the Unix mode in the high 16 bits of ``external_attr`` (0 from DOS tools)."""
    mode = info.external_attr >> 16
    if stat.S_ISLNK(mode):
        raise ArchiveRefused(f"archive entry {info.filename!r} is a symlink", entry=info.filename)
    if stat.S_IFMT(mode) not in (0, stat.S_IFREG, stat.S_IFDIR):
        raise ArchiveRefused(
            f"archive entry {info.filename!r} is not a regular file", entry=info.filename
        )


class InflateBudget:
    """Bytes an archive may still inflate to, shared by all its entries."""

    def __init__(self, max_total: int = MAX_TOTAL) -> None:
        self.max_total = max_total
        self.used = 0

    def spend(self, size: int) -> None:
        self.used += size
        if self.used > self.max_total:
            raise ArchiveRefused(
                f"the archive inflates to more than {self.max_total} bytes", limit=self.max_total
            )


def inflate(zf: zipfile.ZipFile, entry: Entry, budget: InflateBudget) -> Iterator[bytes]:
    """The entry's bytes as they really come out, ``PIECE`` at a time.

    The piece that crosses the budget is refused before it is handed on, so a
    caller writing what it gets never writes past the budget.
    """
    try:
        with zf.open(entry.info) as src:
            while piece := src.read(PIECE):
                budget.spend(len(piece))
                yield piece
    except ArchiveRefused:
        raise
    except _UNREADABLE as exc:
        raise ArchiveRefused(f"the archive cannot be read: {exc}") from None


def inspect_zip(
    archive: IO[bytes] | Path,
    *,
    max_entries: int = MAX_ENTRIES,
    max_total: int = MAX_TOTAL,
) -> ArchiveSummary:
    """Everything a worker would check while extracting, with the bytes thrown away.

    Every file entry is inflated in full (up to the budget): a bomb only shows
    itself in the decompressor's output, and a damaged stream or a bad CRC only
    at its end.
    """
    with open_zip(archive) as zf:
        entries = check_entries(zf, max_entries)
        budget = InflateBudget(max_total)
        for entry in entries:
            if not entry.is_dir:  # never read by an extractor, whatever it holds
                for _ in inflate(zf, entry, budget):
                    pass
        return ArchiveSummary(entries=len(entries), total=budget.used)
