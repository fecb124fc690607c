"""A consistent copy of a live SQLite database, taken while the server keeps writing.

SQLite's online backup API copies the database page by page through a connection of
its own. Done in one step (``pages=-1``) the copy runs inside a single read
transaction: under WAL (the store's journal mode) that is a snapshot, so the copy is
the database as of one commit, and the server's writer is never blocked by it. (Done
in several steps, every commit from another connection would restart the copy, which
under steady writes might never finish.)

The copy is written beside its destination under a temporary name (mode 0600: it
holds every secret the database does), checked with
``PRAGMA integrity_check``, fsynced, and only then renamed over the destination: a
crash or a full disk mid-way leaves the previous backup intact, never half a file.
Everything Corral keeps is in that one file (jobs, output, uploaded files and
artifacts, accounts, the JWT key), so the copy is a whole backup.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

BUSY_MS = 30_000  # a checkpoint or recovery in progress: wait for it, as the store does


class BackupRefused(Exception):
    """The backup cannot be taken; the message says why, in one line."""


@dataclass(frozen=True)
class Copied:
    """What a backup holds: where, how big, how many jobs, at which schema version."""

    path: Path
    size: int
    jobs: int
    schema_version: int
    seconds: float


def backup(source: Path, destination: Path) -> Copied:
    """Copy ``source`` to ``destination`` (a file, or a directory to put a dated file in)."""
    if not source.is_file():
        raise BackupRefused(f"no Corral database at {source.resolve()}")
    target = _target(destination)
    if target.exists() and target.resolve() == source.resolve():
        raise BackupRefused(f"{target} is the database itself: choose another destination")
    partial = target.with_name(f".{target.name}.partial-{os.getpid()}")
    started = time.monotonic()
    try:
        _copy(source, partial)
        jobs, version = _check(partial)
        _fsync(partial)
        partial.replace(target)
        _fsync(target.parent)
    finally:
        partial.unlink(missing_ok=True)
    return Copied(target, target.stat().st_size, jobs, version, time.monotonic() - started)


def _target(destination: Path) -> Path:
    if destination.is_dir():
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        return destination / f"corral-{stamp}.sqlite3"
    if not destination.parent.is_dir():
        raise BackupRefused(f"no directory {destination.parent.resolve()} to write the backup in")
    return destination


def _copy(source: Path, partial: Path) -> None:
    try:
        # mode=rw, not the default rwc: never create a database where there was none.
        src = sqlite3.connect(f"file:{source}?mode=rw", uri=True, timeout=BUSY_MS / 1000)
    except sqlite3.Error as exc:
        raise BackupRefused(f"cannot open {source}: {exc}") from None
    # Mode 0600 before a byte is written: the copy holds secrets (the JWT key, jobs'
    # secret_env, token hashes), whatever the umask.
    os.close(os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    dst = sqlite3.connect(partial)
    try:
        src.execute(f"PRAGMA busy_timeout={BUSY_MS}")
        src.backup(dst, pages=-1)  # one step: one snapshot, see the module's docstring
        # A self-contained single file: the copy keeps no -wal beside it.
        dst.execute("PRAGMA journal_mode=DELETE")
    except sqlite3.Error as exc:
        raise BackupRefused(f"the backup of {source} failed: {exc}") from None
    finally:
        dst.close()
        src.close()


def _check(partial: Path) -> tuple[int, int]:
    """The copy's integrity, its number of jobs and its schema version."""
    conn = sqlite3.connect(f"file:{partial}?mode=ro", uri=True)
    try:
        verdict = conn.execute("PRAGMA integrity_check").fetchone()[0]
        if verdict != "ok":
            raise BackupRefused(f"the copy failed its integrity check: {verdict}")
        jobs = int(conn.execute("SELECT count(*) FROM jobs").fetchone()[0])
        version = conn.execute("SELECT max(version) FROM schema_migrations").fetchone()[0]
    finally:
        conn.close()
    return jobs, int(version or 0)


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        with contextlib.suppress(OSError):
            os.close(fd)
