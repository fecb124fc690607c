"""A throwaway PostgreSQL server for tests: real engine, real concurrency, no mocks.

One server per test session (``PgServer.start``/``stop``), tuned for speed
(no fsync), listening on a free port on 127.0.0.1. Tests that restart PostgreSQL
under load start one of their own (``PgServer(durable=True)``: a commit is on
disk before it is acknowledged, as in production, so an immediate stop loses
nothing acknowledged) and ``restart`` it on the same port. Migrations run once into
``corral_template``; each test then gets its own database copied from it
(``CREATE DATABASE ... TEMPLATE``), which takes milliseconds.

PostgreSQL refuses to run as root, so under root the server binaries run as
the ``postgres`` system user through ``runuser``. Missing binaries are an
error, never a skip: a contract suite that silently skips one adapter proves
nothing about it.
"""

from __future__ import annotations

import asyncio
import atexit
import glob
import itertools
import os
import shutil
import socket
import stat
import subprocess
import tempfile
from pathlib import Path

import asyncpg

from corral.store.postgres.store import PostgresStore

TEMPLATE = "corral_template"
USER = "corral"
_RUN_AS = "postgres"


def find_pg_bin() -> Path:
    """The directory holding ``initdb`` and ``pg_ctl``: PATH first, then Debian's layout."""
    initdb, pg_ctl = shutil.which("initdb"), shutil.which("pg_ctl")
    if initdb and pg_ctl and Path(initdb).parent == Path(pg_ctl).parent:
        return Path(initdb).parent
    for folder in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if (Path(folder) / "initdb").exists() and (Path(folder) / "pg_ctl").exists():
            return Path(folder)
    raise RuntimeError(
        "PostgreSQL server binaries (initdb, pg_ctl) not found on PATH or in "
        "/usr/lib/postgresql/*/bin; install PostgreSQL (e.g. apt-get install postgresql) "
        "to run the PostgreSQL half of the contract tests"
    )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class PgServer:
    """One PostgreSQL instance in a temporary directory."""

    def __init__(self, *, durable: bool = False) -> None:
        self.durable = durable
        self.bin = find_pg_bin()
        self.as_root = os.geteuid() == 0
        self.port = 0
        self.host = "127.0.0.1"  # where it listens (tests/multihost.py: a host's address)
        self.root: Path | None = None
        self._counter = itertools.count(1)
        self._template_ready = False

    @property
    def data(self) -> Path:
        assert self.root is not None
        return self.root / "data"

    def dsn(self, database: str = "postgres") -> str:
        return f"postgresql://{USER}@{self.host}:{self.port}/{database}"

    def _command(self, *args: str) -> list[str]:
        """One of the server binaries with its arguments, as the server's own user."""
        command = [str(self.bin / args[0]), *args[1:]]
        return ["runuser", "-u", _RUN_AS, "--", *command] if self.as_root else command

    def _next_port(self) -> int:
        return _free_port()

    def _run(self, *args: str) -> None:
        command = self._command(*args)
        done = subprocess.run(command, cwd=self.root, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            log = self.root / "server.log" if self.root else None
            tail = log.read_text()[-3000:] if log and log.exists() else ""
            raise RuntimeError(
                f"{' '.join(command)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}\n"
                f"{tail}"
            )

    def _make_root(self) -> Path:
        root = Path(tempfile.mkdtemp(prefix="corral-pg-"))
        if self.as_root:
            # The server user must reach its directory: let it traverse the parents.
            for parent in root.parents:
                mode = parent.stat().st_mode
                if not mode & stat.S_IXOTH:
                    parent.chmod(stat.S_IMODE(mode) | 0o755)
            shutil.chown(root, user=_RUN_AS, group=_RUN_AS)
        return root

    def start(self) -> None:
        self.root = self._make_root()
        atexit.register(self.stop)
        self._run(
            "initdb",
            "-D",
            str(self.data),
            "-A",
            "trust",
            "-U",
            USER,
            "-E",
            "UTF8",
            "--locale=C",
            "--no-sync",
        )
        self.launch()

    def launch(self) -> None:
        """``pg_ctl start`` on the initialised data directory; waits until it serves."""
        assert self.root is not None
        for tries in range(3):
            self.port = self._next_port()
            try:
                self.start_again()
                return
            except RuntimeError:
                if tries == 2:  # the free port may have been taken meanwhile; try another
                    raise

    def start_again(self) -> None:
        """Start the server on its port (after ``halt``, or the first time)."""
        assert self.root is not None
        # Without fsync a commit still reaches the OS before it is acknowledged when
        # synchronous_commit is on: a killed server loses none (an OS crash could).
        commit = "on" if self.durable else "off"
        options = (
            f"-p {self.port} -c listen_addresses={self.host} "
            f"-c unix_socket_directories={self.root} -c max_connections=200 "
            f"-c fsync=off -c synchronous_commit={commit} -c full_page_writes=off"
        )
        self._run(
            "pg_ctl",
            "-D",
            str(self.data),
            "-l",
            str(self.root / "server.log"),
            "-w",
            "-t",
            "60",
            "-o",
            options,
            "start",
        )

    def halt(self, mode: str = "immediate") -> None:
        """Stop the server, keeping its data: ``immediate`` is a crash (recovery at the
        next start), ``fast`` a clean shutdown that disconnects every client."""
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop")

    def stop(self) -> None:
        if self.root is None:
            return
        if (self.data / "postmaster.pid").exists():
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(self.root, ignore_errors=True)
        self.root = None

    async def make_template(self) -> str:
        """Create ``corral_template`` with every migration applied, once per session."""
        if not self._template_ready:
            conn = await asyncpg.connect(self.dsn())
            try:
                await conn.execute(f"CREATE DATABASE {TEMPLATE}")
            finally:
                await conn.close()
            store = PostgresStore(self.dsn(TEMPLATE), min_size=1, max_size=1)
            await store.open()  # applies the migrations, as a dispatcher would
            await store.close()
            self._template_ready = True
        return self.dsn(TEMPLATE)

    async def new_database(self, *, migrated: bool = True) -> str:
        """A fresh database of its own (migrated unless asked not to); returns its DSN."""
        template = await self.make_template() if migrated else "template0"
        template = template.rsplit("/", 1)[-1]
        name = f"test_{os.getpid()}_{next(self._counter)}"
        conn = await asyncpg.connect(self.dsn())
        try:
            # A backend that served the template may still be exiting after its client
            # closed; PostgreSQL then refuses the copy for a moment.
            for delay in (0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 0):
                try:
                    await conn.execute(f"CREATE DATABASE {name} TEMPLATE {template}")
                    break
                except asyncpg.ObjectInUseError:
                    if not delay:
                        raise
                    await asyncio.sleep(delay)
        finally:
            await conn.close()
        return self.dsn(name)

    async def drop_database(self, dsn: str) -> None:
        name = dsn.rsplit("/", 1)[1]
        conn = await asyncpg.connect(self.dsn())
        try:
            await conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        finally:
            await conn.close()
