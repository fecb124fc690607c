"""Run one job as a real process group, from its fresh directory to its exit status.

An ``Execution`` is created per attempt. It prepares a per-job directory under
the work dir (removed afterwards), resolves what to run (``/bin/sh -c`` for a
command, a sha256-verified cached download for a binary), spawns it with a
minimal environment behind the worker's isolation (its own uid, bubblewrap:
``isolation.py``), forwards its output, enforces its timeout, and can be told
to stop for a reason (cancel, lost lease, shutdown). It never talks to the
dispatcher itself: the reason and the exit status are handed back to the agent,
which decides what to report.
"""

from __future__ import annotations

import asyncio
import enum
import errno
import logging
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from corral.agent.binaries import BinaryError
from corral.agent.cgroups import JobCgroup
from corral.agent.isolation import JobIdentity
from corral.agent.jobfiles import JobFilesError, prepare_inputs, save_outputs
from corral.agent.limits import LimitError, Resources
from corral.agent.output import OutputForwarder, PipeReader
from corral.agent.process import ProcessGroup, spawn, spawn_in
from corral.agent.workdir import INHERITED_ENV, WORKER_MARK, Executor
from corral.domain.env import validate_env
from corral.domain.jobs import JobSpec
from corral.errors import InvalidInput

log = logging.getLogger("corral.agent.executor")

DEFAULT_PATH = "/usr/local/bin:/usr/bin:/bin"
EOF_GRACE = 2.0  # seconds to wait for pipes after the group is gone (a setsid escapee holds them)


class StopReason(enum.StrEnum):
    TIMEOUT = "timeout"
    CANCEL = "cancel"  # a user cancelled it: report ``cancelled``
    LOST = "lost"  # the dispatcher gave the job to someone else: report nothing
    LEASE_EXPIRED = "lease_expired"  # we could not renew in time: report nothing
    SHUTDOWN = "shutdown"  # the worker is going away: hand it back for another attempt


class PrepareError(Exception):
    """The job cannot start here; nothing was run."""

    def __init__(self, message: str, *, retryable: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.retryable = retryable


@dataclass(frozen=True, slots=True)
class JobRun:
    """What the agent asks the executor to run: one attempt of one job."""

    job_id: str
    attempt: int
    spec: JobSpec
    resources: Resources | None = None  # what the job asked for; None: nothing
    network: bool = True  # False: run only where no network can be given (sandbox)


@dataclass(frozen=True, slots=True)
class RunResult:
    """How an attempt ended. ``started`` is False when nothing was spawned."""

    started: bool
    returncode: int | None = None  # raw: negative means killed by that signal
    stop_reason: StopReason | None = None
    error: str | None = None
    retryable: bool = False
    duration: float = 0.0
    dropped: int = 0  # output bytes the agent could not forward
    notes: tuple[str, ...] = ()  # outputs that could not be saved as artifacts
    leftover_processes: int | None = None  # killed in its cgroup after the leader exited
    limit_error: str | None = None  # a limit the job died of (memory), said as its error

    @property
    def exit_code(self) -> int | None:
        """Shell convention: a death by signal N reads as 128 + N."""
        if self.returncode is None:
            return None
        return 128 - self.returncode if self.returncode < 0 else self.returncode


def job_env(run: JobRun, base: dict[str, str] | os._Environ[str], work_dir: Path) -> dict[str, str]:
    """A minimal inherited environment with the job's variables and secrets merged over
    it (the dispatcher refused names that would change what runs, and any name in
    both maps); the ``CORRAL_*`` variables come last so a job cannot hide from the
    orphan sweep."""
    env = {name: base[name] for name in INHERITED_ENV if name in base}
    env.setdefault("PATH", DEFAULT_PATH)
    env.update(run.spec.env)
    env.update(run.spec.secret_env)
    env.update(
        {
            "CORRAL_JOB_ID": run.job_id,
            "CORRAL_ATTEMPT": str(run.attempt),
            WORKER_MARK: str(work_dir),
        }
    )
    return env


def resolve_workdir(job_dir: Path, working_directory: str | None) -> Path:
    """The job's cwd: ``job_dir`` or a relative path inside it; absolute paths and ``..``
    are refused so a job cannot be pointed at the worker's own files."""
    if not working_directory:
        return job_dir
    relative = PurePosixPath(working_directory)
    if relative.is_absolute() or ".." in relative.parts or "\x00" in working_directory:
        raise PrepareError(
            f"working_directory must be a relative path inside the job directory, "
            f"got {working_directory!r}"
        )
    return job_dir.joinpath(*relative.parts)


class Execution:
    """One attempt: ``await run()`` once; ``stop(reason)`` at any time, from anywhere."""

    def __init__(self, executor: Executor, run: JobRun, forwarder: OutputForwarder) -> None:
        self.executor = executor
        self.job = run
        self.forwarder = forwarder
        self.group: ProcessGroup | None = None
        self.cgroup: JobCgroup | None = None
        self.leftovers: int | None = None
        self.stop_reason: StopReason | None = None
        self._stopped = asyncio.Event()
        self._kill_now = False
        self._running: ProcessGroup | None = None  # the group while its leader is awaited
        self._spawning = False
        self._stop_turns: list[asyncio.Future[bool]] = []  # waiting for a run slot
        self._finished = False
        # Asked right before spawning: False when the attempt may no longer start (its
        # lease ran out by the worker's clock); it then ends as LEASE_EXPIRED, unstarted.
        self.may_start: Callable[[], bool] = lambda: True

    @property
    def started(self) -> bool:
        """Its process is spawned, or being spawned: no longer one to hand back."""
        return self._spawning or self.group is not None

    @property
    def finished(self) -> bool:
        """``run()`` has returned: stopping it now changes nothing."""
        return self._finished

    def when_stopped(self, turn: asyncio.Future[bool]) -> None:
        """Resolve ``turn`` False when the attempt is stopped (if nothing resolved it first)."""
        self._stop_turns.append(turn)

    def stop(self, reason: StopReason, *, now: bool = False) -> None:
        """Ask the attempt to end; the first reason wins. Before spawn, nothing will run.

        ``now`` skips the grace period (a second shutdown signal): SIGKILL at once.
        """
        if self.stop_reason is None:
            self.stop_reason = reason
        self._stopped.set()
        for turn in self._stop_turns:
            if not turn.done():
                turn.set_result(False)
        if now:
            self._kill_now = True
            if self.group is not None:
                self.group.signal_group(signal.SIGKILL)
        self._terminate()

    def _terminate(self) -> None:
        """While the job runs: TERM -> grace -> KILL of its whole group, in the background
        (``wait_exit`` waits for it before the sweep); once only, the first grace wins."""
        if self._running is not None:
            self._running.terminate(0.0 if self._kill_now else self.executor.grace)

    async def run(self) -> RunResult:
        job_dir = self.executor.dirs.path(self.job.job_id, self.job.attempt)
        begun = time.monotonic()
        identity: JobIdentity | None = None
        try:
            argv, cwd = await self._prepare(job_dir)
            if self.stop_reason is None and not self.may_start():
                self.stop(StopReason.LEASE_EXPIRED)
            if self.stop_reason is not None:
                return RunResult(started=False, stop_reason=self.stop_reason)
            identity = await self._isolate(job_dir)
            returncode = await self._execute(argv, cwd, identity)
            limit_error = self.cgroup.oom_message() if self.cgroup is not None else None
            notes = await self._save_outputs(cwd)
        except (PrepareError, JobFilesError) as exc:
            return RunResult(started=False, error=exc.message, retryable=exc.retryable)
        finally:
            self._finished = True
            await self._release_cgroup()
            await self.executor.dirs.remove(job_dir)
            self.executor.isolation.release(identity)
        return RunResult(
            started=True,
            returncode=returncode,
            stop_reason=self.stop_reason,
            duration=time.monotonic() - begun,
            dropped=sum(self.forwarder.dropped().values()),
            notes=notes,
            leftover_processes=self.leftovers,
            limit_error=limit_error,
        )

    def _confine(self, argv: list[str]) -> list[str]:
        """Make the job's cgroup with its limits; its prefix goes first in the argv."""
        if self.executor.cgroups is None or self.executor.limits is None:
            return argv
        name = f"{self.job.job_id}.{self.job.attempt}"
        try:
            limits = self.executor.limits.apply(self.job.resources)
            self.cgroup = self.executor.cgroups.job(name, limits)
        except LimitError as exc:
            raise PrepareError(exc.message) from exc
        except OSError as exc:
            raise PrepareError(f"could not create the job's cgroup: {exc}", retryable=True) from exc
        return self.cgroup.wrap(argv, self.job.spec.command)

    async def _sweep_cgroup(self, leader: int) -> None:
        """The leader is gone: count what is left in the job's cgroup, then kill it all."""
        if self.cgroup is not None:
            self.leftovers = await self.cgroup.sweep(leader)

    async def _release_cgroup(self) -> None:
        """Kill (again: a run cancelled mid-way never swept) and remove the job's cgroup:
        inline when it goes back to the pool (one read), else in a thread, as a cgroup's
        rmdir takes a millisecond or more under load."""
        if self.cgroup is not None and self.cgroup.pooled:
            self.cgroup.release()
        elif self.cgroup is not None:
            await asyncio.to_thread(self.cgroup.release)

    async def _prepare(self, job_dir: Path) -> tuple[list[str], Path]:
        spec = self.job.spec
        if not self.job.network and not self.executor.isolation.network_control:
            raise PrepareError(
                f"this worker cannot run a job without network "
                f"(isolation {self.executor.isolation.level}); nothing was run",
                retryable=True,
            )
        try:  # the dispatcher checked at submission; a job stored before that rule was not
            validate_env(spec.env, spec.secret_env)
        except InvalidInput as exc:
            raise PrepareError(f"job environment refused: {exc.message}") from exc
        cwd = resolve_workdir(job_dir, spec.working_directory)
        # The archive lands at the job's root and the command runs in working_directory
        # inside it, so only an archive-less job gets its working directory made here.
        self._make_dirs(job_dir, job_dir if spec.input_file_id else cwd)
        run = self.job
        await prepare_inputs(self.executor.files, run.job_id, run.attempt, run.spec, job_dir, cwd)
        if spec.command is not None:
            return ["/bin/sh", "-c", spec.command, "sh", *spec.arguments], cwd
        if spec.binary_url is None or spec.binary_sha256 is None:
            raise PrepareError("the job has neither a command nor a binary_url to run")
        fetch = asyncio.ensure_future(
            self.executor.binaries.fetch(spec.binary_url, spec.binary_sha256)
        )
        stopped = asyncio.ensure_future(self._stopped.wait())
        await asyncio.wait({fetch, stopped}, return_when=asyncio.FIRST_COMPLETED)
        stopped.cancel()
        if not fetch.done():  # stopped while downloading: the caller sees stop_reason
            fetch.cancel()
            return [], cwd
        try:
            binary = fetch.result()
        except BinaryError as exc:
            raise PrepareError(exc.message, retryable=exc.retryable) from exc
        return [str(binary), *spec.arguments], cwd

    async def _save_outputs(self, cwd: Path) -> tuple[str, ...]:
        """Upload the declared outputs while the lease is still ours."""
        if self.stop_reason in (StopReason.LOST, StopReason.LEASE_EXPIRED):
            return ()
        run = self.job
        return await save_outputs(self.executor.files, run.job_id, run.attempt, run.spec, cwd)

    async def _isolate(self, job_dir: Path) -> JobIdentity | None:
        """The job's own uid and its directory handed over to it (``isolation.py``); in a
        thread when an input archive filled it, inline (a few syscalls) when it is empty."""
        acquire = self.executor.isolation.acquire
        try:
            if self.job.spec.input_file_id:
                return await asyncio.to_thread(acquire, job_dir)
            return acquire(job_dir)
        except OSError as exc:
            raise PrepareError(f"could not isolate the job: {exc}", retryable=True) from exc

    async def _execute(self, argv: list[str], cwd: Path, identity: JobIdentity | None) -> int:
        iso, work_dir = self.executor.isolation, self.executor.work_dir
        env = iso.env(job_env(self.job, self.executor.inherited, work_dir), identity)
        binary = Path(argv[0]) if self.job.spec.command is None else None
        argv = iso.wrap(
            argv, identity, cwd=cwd, work_dir=work_dir, network=self.job.network, binary=binary
        )
        argv = self._confine(argv)  # last: the cgroup join runs before any uid switch
        self._spawning = True
        self.executor.active += 1
        try:
            group = await self._spawn(argv, cwd, env)
        except OSError as exc:  # the job's fault (no such file, not executable) or ours
            self._spawning = False
            self.executor.active -= 1
            retryable = exc.errno not in (errno.ENOENT, errno.EACCES, errno.ENOEXEC, errno.ENOTDIR)
            message = f"could not start {argv[0]}: {exc.strerror or exc}"
            raise PrepareError(message, retryable=retryable) from exc
        except BaseException:  # cancelled: spawn_in kills the group when it lands
            self.executor.active -= 1
            raise
        self.group = group
        forwarder = self.forwarder
        readers = [
            PipeReader(group.stdout_fd, lambda d: forwarder.feed("stdout", d)),
            PipeReader(group.stderr_fd, lambda d: forwarder.feed("stderr", d)),
        ]
        log.debug(
            "job started",
            extra={
                "action": "job_started",
                "job_id": self.job.job_id,
                "attempt": self.job.attempt,
                "pid": group.pid,
            },
        )
        # A timeout is a stop like the others; stop() itself starts the group's termination
        # (no task per job stands by for it).
        timeout = self.job.spec.timeout
        loop = asyncio.get_running_loop()
        timer = None if timeout is None else loop.call_later(timeout, self._timed_out)
        self._running = group
        if self.stop_reason is not None:  # stopped while it was being spawned
            self._terminate()
        try:
            returncode = await group.wait_exit(self._sweep_cgroup)
        finally:
            self._running = None
            self.executor.active -= 1
            if timer is not None:
                timer.cancel()
        await _await_eof(readers)
        await forwarder.close()
        return returncode

    def _make_dirs(self, job_dir: Path, cwd: Path) -> None:
        """Inline on the loop: a mkdir (or a rename) is cheaper than a thread hop."""
        try:
            self.executor.dirs.make(job_dir)
            if cwd != job_dir:
                cwd.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            message = f"could not create the job directory: {exc}"
            raise PrepareError(message, retryable=True) from exc

    async def _spawn(self, argv: list[str], cwd: Path, env: dict[str, str]) -> ProcessGroup:
        """Inline when it is the only job (nothing to hold up: a thread's wake-up would
        only delay it), else in a spawner thread, so the other jobs' pipes, exits and
        reports go on while this one's vfork() waits for its exec."""
        if self.executor.active == 1:
            return spawn(argv, cwd=cwd, env=env)
        return await spawn_in(self.executor.spawner, argv, cwd=cwd, env=env)

    def _timed_out(self) -> None:
        self.stop(StopReason.TIMEOUT)  # no-op when a stop reason is already set


async def _await_eof(readers: list[PipeReader]) -> None:
    if all(r.eof.done() for r in readers):  # usually: the pipes closed with the leader
        return
    _, pending = await asyncio.wait([r.eof for r in readers], timeout=EOF_GRACE)
    if pending:  # a process that left the group still holds a pipe: stop listening
        for reader in readers:
            reader.close()
