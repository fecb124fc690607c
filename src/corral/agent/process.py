"""Process groups on the fast path: spawn, wait through a pidfd, kill the whole group.

Why this shape:
- ``subprocess.Popen(start_new_session=True, close_fds=True)`` without
  ``preexec_fn`` or ``user=`` keeps CPython on its vfork path; each job leads
  its own session, so its process group id is its pid and one ``killpg``
  reaches every descendant that did not call ``setsid`` itself.
- Exit is noticed through ``os.pidfd_open`` registered with the event loop: no
  thread per child and no SIGCHLD handler, which is what lets a worker start
  hundreds of short jobs per second.
- The leader is only reaped *after* the group has been swept with SIGKILL. While
  the leader is a zombie its pid cannot be reused, so the sweep can never hit an
  unrelated process group.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import functools
import os
import signal
import subprocess
import threading
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path

READ_SIZE = 64 * 1024
GROUP_POLL = 0.05  # seconds between looks at a stopping group's members


class ProcessGroup:
    """A spawned job leader and its group; stdout/stderr are raw non-blocking pipe fds."""

    def __init__(self, popen: subprocess.Popen[bytes], stdout_fd: int, stderr_fd: int) -> None:
        self.popen = popen
        self.pid = popen.pid
        self.stdout_fd = stdout_fd
        self.stderr_fd = stderr_fd
        self._exited = False
        self._terminating: asyncio.Future[None] | None = None

    @property
    def exited(self) -> bool:
        """True once the leader has exited (it may still be an unreaped zombie)."""
        return self._exited

    def signal_group(self, signum: int) -> None:
        """Signal every process of the group; a group already gone is not an error."""
        if self.popen.returncode is not None:
            return  # reaped: the pgid may now belong to someone else
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, signum)

    async def wait_exit(self, before_sweep: Callable[[int], Awaitable[None]] | None = None) -> int:
        """Wait for the leader, sweep the rest of its group, reap, return the raw returncode.

        ``before_sweep(pid)`` runs once the leader (and any ``terminate``) is done and
        before the group's SIGKILL: the job's cgroup counts and kills what is left there.

        While a ``terminate`` runs, the sweep waits for it: the leader (often the
        ``/bin/sh -c`` wrapper, which dies at once on SIGTERM) going first must not cut
        short the grace of the processes that handle the signal.
        """
        if not self._exited:
            await _leader_exit(self.pid)
            self._exited = True
        if self._terminating is not None:
            await asyncio.shield(self._terminating)
        if before_sweep is not None:
            await before_sweep(self.pid)
        # Leftovers (backgrounded children) die with the job: no descendant outlives it.
        self.signal_group(signal.SIGKILL)
        return self.popen.wait()

    def terminate(self, grace: float) -> asyncio.Future[None]:
        """Start, in the background and once (a later call gets the first): SIGTERM to the
        group; up to ``grace`` seconds for *every* process of the group to exit, whatever
        the leader does; then SIGKILL to the group. ``wait_exit`` waits for it."""
        if self._terminating is None:
            self._terminating = asyncio.ensure_future(self._term_then_kill(grace))
        return self._terminating

    async def _term_then_kill(self, grace: float) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace
        signalled = time.monotonic()
        self.signal_group(signal.SIGTERM)
        if not self._exited:
            try:
                await asyncio.wait_for(_leader_exit(self.pid), grace)
                self._exited = True
            except TimeoutError:
                pass
        # The leader has gone (or the grace is over): its group may live on. /proc has
        # no event to wait on, so poll; this runs only while a job is being stopped.
        while group_alive(self.pid, signalled) and loop.time() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(GROUP_POLL)
        self.signal_group(signal.SIGKILL)


def spawn(argv: Sequence[str], *, cwd: Path, env: Mapping[str, str]) -> ProcessGroup:
    """Start ``argv`` as the leader of a new session with stdin from /dev/null.

    The pipes are made here rather than by Popen so the parent holds bare fds
    (no buffered file objects) and can read them non-blocking from the loop.
    """
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    try:
        popen = subprocess.Popen(
            list(argv),
            stdin=_devnull(),
            stdout=out_w,
            stderr=err_w,
            cwd=cwd,
            env=env,
            close_fds=True,
            start_new_session=True,
        )
    except BaseException:
        for fd in (out_r, err_r):
            os.close(fd)
        raise
    finally:
        os.close(out_w)
        os.close(err_w)
    os.set_blocking(out_r, False)
    os.set_blocking(err_r, False)
    return ProcessGroup(popen, out_r, err_r)


async def spawn_in(
    pool: concurrent.futures.Executor, argv: Sequence[str], *, cwd: Path, env: Mapping[str, str]
) -> ProcessGroup:
    """``spawn`` in one of ``pool``'s threads, so the event loop runs on meanwhile.

    vfork() holds the spawning thread until the child has exec'd ``/bin/sh``: half a
    millisecond on an idle host, several on a busy one, where the child waits for a
    core. CPython lets go of the GIL for that wait (3.12, and 3.11 since a late 3.11
    release), so from a thread the loop goes on reading pipes, reaping exits and
    reporting; on the loop, every spawn would stop the worker that long. A spawn
    whose caller is cancelled meanwhile is not left running: its group is killed.
    """
    call = functools.partial(spawn, argv, cwd=cwd, env=env)
    future = asyncio.get_running_loop().run_in_executor(pool, call)
    try:
        return await asyncio.shield(future)
    except asyncio.CancelledError:
        future.add_done_callback(_kill_abandoned)
        raise


def _kill_abandoned(future: asyncio.Future[ProcessGroup]) -> None:
    """Kill the group of a spawn nobody waits for any more, close its pipes, reap it."""
    if future.cancelled() or future.exception() is not None:
        return
    group = future.result()
    group.signal_group(signal.SIGKILL)
    for fd in (group.stdout_fd, group.stderr_fd):
        with contextlib.suppress(OSError):
            os.close(fd)
    asyncio.get_running_loop().run_in_executor(None, group.popen.wait)


_null = -1
_null_lock = threading.Lock()


def _devnull() -> int:
    """One ``/dev/null`` for every job's stdin (close-on-exec here, dup'd onto fd 0 in
    the child; read-write, as ``subprocess.DEVNULL``, which opens and closes it again
    for each spawn)."""
    global _null
    with _null_lock:
        if _null < 0:
            _null = os.open(os.devnull, os.O_RDWR | os.O_CLOEXEC)
        return _null


async def _leader_exit(pid: int) -> None:
    """Resolve when ``pid`` has exited, without reaping it."""
    loop = asyncio.get_running_loop()
    try:
        pidfd = os.pidfd_open(pid)
    except (AttributeError, OSError):  # no pidfd (old kernel): a thread waits instead
        await asyncio.to_thread(os.waitid, os.P_PID, pid, os.WEXITED | os.WNOWAIT)
        return
    done: asyncio.Future[None] = loop.create_future()

    def ready() -> None:
        if not done.done():
            done.set_result(None)

    loop.add_reader(pidfd, ready)
    try:
        await done
    finally:
        loop.remove_reader(pidfd)
        os.close(pidfd)


def sweep_orphans(marker: bytes) -> list[int]:
    """SIGKILL every process whose environment carries ``marker`` (``NAME=value``).

    A worker killed with SIGKILL cannot take its job groups with it (they lead their
    own sessions, and PR_SET_PDEATHSIG would need ``preexec_fn``). Every job's
    environment names its worker's work dir, and only one worker may hold a work
    dir at a time, so at startup anything still carrying the mark is an orphan of a
    previous run of this worker.
    """
    needle = b"\0" + marker + b"\0"
    killed: list[int] = []
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) == os.getpid():
            continue
        try:
            with open(f"/proc/{name}/environ", "rb") as environ:
                if needle not in b"\0" + environ.read() + b"\0":
                    continue
            os.kill(int(name), signal.SIGKILL)
            killed.append(int(name))
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
    return killed


def group_alive(pgid: int, since: float) -> bool:
    """Whether any process of group ``pgid`` was running at a look taken after ``since``
    (monotonic). Zombies do not count: the unreaped leader stays a member until reaped."""
    return pgid in _live_groups(since)


_scanned: tuple[float, frozenset[int]] = (float("-inf"), frozenset())


def _live_groups(since: float) -> frozenset[int]:
    """The process groups with a running member, from one /proc scan shared by every
    group being stopped at the same moment (a drain may stop hundreds at once); a scan
    older than ``since`` or than ``GROUP_POLL`` is taken again."""
    global _scanned
    at, groups = _scanned
    now = time.monotonic()
    if at >= since and now - at < GROUP_POLL:
        return groups
    live = set()
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as stat:
                fields = stat.read().rsplit(b")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError, IndexError):
            continue
        if len(fields) > 2 and fields[0] not in (b"Z", b"X"):
            live.add(int(fields[2]))
    _scanned = (now, frozenset(live))
    return _scanned[1]


def alive(pid: int) -> bool:
    """Whether ``pid`` exists and is not a zombie (for tests and diagnostics)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            state = stat.read().rsplit(b")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False
    return state not in (b"Z", b"X")
