"""Every job in its own cgroup: limits, kill-all, leftover count and the OOM reason.

What the machine offers is found once, at worker start (``detect``), and logged:
- pure cgroup v2 (every current distribution): one hierarchy gives the limits
  (``memory.max``, ``cpu.max``, ``pids.max``), ``cgroup.kill`` and ``memory.events``;
- mixed (these development machines): the v2 hierarchy at ``unified`` has
  ``cgroup.kill`` but no controllers, which are mounted as cgroup v1 (``memory``,
  ``pids``, ``cpu``, ``freezer``): each job joins the v2 group for tracking and
  killing, plus the v1 groups of the limits it has;
- nothing writable (an unprivileged container): ``prlimit`` sets rlimits on what is
  exec'd (address space for memory, process count for pids, nothing for cpus) and the
  job's process group is all that is killed at its end.

Each job's groups live under a worker-owned parent, ``<own cgroup>/corral/w-<key>``
in every hierarchy (``key`` is derived from the work dir, which one worker locks at a
time, so a restarted worker finds and kills what its predecessor left behind).

A job joins its groups from its first exec'd process: ``argv_prefix()`` is a ``/bin/sh``
step that writes its own pid to each ``cgroup.procs`` and then ``exec``s the job, so
the spawn stays on CPython's vfork path and the job is inside its cgroup before it
can fork. Everything here is blocking file I/O of a few microseconds per file, done
inline on the event loop, except waiting for a killed group to empty.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import shlex
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path

from corral.agent.limits import Resources

log = logging.getLogger("corral.agent.cgroups")

MOUNTS = Path("/proc/self/mounts")
OWN = Path("/proc/self/cgroup")
LIMITED = ("memory", "pids", "cpu")  # the controllers whose limits a job can ask for
CPU_PERIOD = 100_000  # microseconds: the quota is cpus x this
MIN_QUOTA = 1_000  # the kernel refuses a smaller cpu quota
POOL_SIZE = 256  # idle tracking groups kept at most
KILL_ROUNDS = 200  # x KILL_PAUSE: how long a kill waits for its group to empty
KILL_PAUSE = 0.01
# Joins every cgroup.procs named before "--", then becomes the job; a failed join stops
# the job before it runs unconfined (125: the shell convention for "could not run").
JOIN = 'while [ "$1" != -- ]; do echo $$ > "$1" || exit 125; shift; done; shift; exec "$@"'


@dataclass(frozen=True, slots=True)
class Hierarchy:
    """The worker's parent group in one mounted hierarchy."""

    version: int  # 1 or 2
    parent: Path  # <mount>/<own cgroup>/corral/w-<key>


@dataclass(slots=True)
class Cgroups:
    """What this machine offers, and the per-job groups made from it."""

    mode: str  # "cgroup v2", "mixed cgroup v1 + v2", "cgroup v1", "setrlimit"
    reason: str
    track: Hierarchy | None = None  # every job joins it: counting and killing
    limits: dict[str, Hierarchy] = field(default_factory=dict)  # controller -> hierarchy
    # Empty tracking groups kept for jobs without limits: a cgroup's mkdir and rmdir
    # take a millisecond each under load, while reusing an empty group costs nothing.
    idle: list[Path] = field(default_factory=list)
    made: int = 0

    def job(self, name: str, limits: Resources) -> JobCgroup:
        """Make the groups of one job, with its limits written, before it is spawned."""
        if self.track is not None and limits == Resources():
            return self._pooled()
        dirs: dict[Hierarchy, Path] = {}
        if self.track is not None:
            dirs[self.track] = self.track.parent / name
        for controller, hierarchy in self.limits.items():
            if _asked(limits, controller):
                dirs.setdefault(hierarchy, hierarchy.parent / name)
        group = JobCgroup(self, limits, dirs)
        group.create()
        return group

    def _pooled(self) -> JobCgroup:
        """A tracking group with nothing in it and no limits, reused or made."""
        assert self.track is not None
        if self.idle:
            return JobCgroup(self, Resources(), {self.track: self.idle.pop()}, pooled=True)
        self.made += 1
        group = JobCgroup(
            self, Resources(), {self.track: self.track.parent / f"pool-{self.made}"}, pooled=True
        )
        group.create()
        return group

    def sweep(self) -> int:
        """Kill and remove the job groups a previous run of this worker left behind;
        returns how many processes were killed. Blocking: it runs once, at start."""
        killed = 0
        for hierarchy in self._hierarchies():
            for stale in [p for p in hierarchy.parent.iterdir() if p.is_dir()]:
                group = JobCgroup(self, Resources(), {hierarchy: stale})
                if hierarchy == self.track:  # a process is in every hierarchy: count once
                    killed += group.leftovers(0) or 0
                group.kill_blocking()
                group.remove()
        return killed

    def close(self) -> None:
        """Remove the idle groups and the worker's (empty) parent groups."""
        while self.idle:
            with contextlib.suppress(OSError):
                self.idle.pop().rmdir()
        for hierarchy in self._hierarchies():
            with contextlib.suppress(OSError):
                hierarchy.parent.rmdir()

    def _hierarchies(self) -> list[Hierarchy]:
        found = [self.track] if self.track is not None else []
        return found + [h for h in self.limits.values() if h not in found]


class JobCgroup:
    """One job's groups, one per hierarchy it needs (the first is the tracking one)."""

    def __init__(
        self,
        setup: Cgroups,
        limits: Resources,
        dirs: dict[Hierarchy, Path],
        *,
        pooled: bool = False,
    ) -> None:
        self.setup = setup
        self.limits = limits
        self.dirs = dirs
        self.pooled = pooled  # an idle tracking group: handed back, not removed
        # Seen empty after the job's end: nothing can enter an empty group but a write to
        # its cgroup.procs, so releasing it needs no further look (one read per job).
        self.emptied = False
        first = next(iter(dirs.values()), None)
        self._procs_file = None if first is None else os.path.join(first, "cgroup.procs")

    def create(self) -> None:
        made: list[Path] = []
        try:
            for hierarchy, path in self.dirs.items():
                path.mkdir(exist_ok=True)
                made.append(path)
                _write_limits(hierarchy, path, self.limits, self.setup.limits)
        except OSError:
            for path in reversed(made):
                with contextlib.suppress(OSError):
                    path.rmdir()
            raise

    def argv_prefix(self) -> list[str]:
        """What to exec before the job's own argv so that it starts inside its groups."""
        if self.dirs:
            procs = [str(path / "cgroup.procs") for path in self.dirs.values()]
            return ["/bin/sh", "-c", JOIN, "sh", *procs, "--"]
        return _prlimit(self.limits)

    def wrap(self, argv: list[str], script: str | None = None) -> list[str]:
        """``argv`` made to start inside the job's groups.

        When ``argv`` is the job's own ``/bin/sh -c script`` (nothing between the worker
        and that shell: no uid switch, no sandbox), the join is written at the head of
        the script instead of exec'ing one shell more (an exec is most of a spawn's cost).
        The join runs before anything of the script, and a failed join ends it (125)."""
        if not self.dirs or script is None or argv[:3] != ["/bin/sh", "-c", script]:
            return [*self.argv_prefix(), *argv]
        joins = " && ".join(
            f"echo $$ > {shlex.quote(os.path.join(p, 'cgroup.procs'))}" for p in self.dirs.values()
        )
        return ["/bin/sh", "-c", f"{{ {joins}; }} || exit 125; {script}", *argv[3:]]

    def _procs(self) -> list[int]:
        """The pids in the tracking group (zombies are not members)."""
        if self._procs_file is None:
            return []
        try:
            return [int(pid) for pid in _read_all(self._procs_file).split()]
        except OSError:
            return []

    def leftovers(self, leader: int) -> int | None:
        """How many processes are still in the job's group besides its leader; None
        without a group to look in (the setrlimit fallback)."""
        if not self.dirs:
            return None
        return sum(1 for pid in self._procs() if pid != leader and not _sandbox_step(pid))

    async def sweep(self, leader: int) -> int | None:
        """The job's leader has exited: count the processes left in its group besides the
        leader, kill them all and wait (a bounded while) for the group to empty. The
        count; None without a group to look in (the setrlimit fallback)."""
        if not self.dirs:
            return None
        pids = self._procs()
        left = sum(1 for pid in pids if pid != leader and not _sandbox_step(pid))
        if pids:
            await self.kill_all()
        else:
            self.emptied = True
        return left

    def kill(self) -> bool:
        """One round of SIGKILL to everything in the job's group; True once it is empty.

        ``cgroup.kill`` (v2, Linux 5.14+) does it in one write. Without it, the group is
        frozen so nothing can fork while its pids are read and killed, then thawed so the
        kills land; callers repeat until the group is empty (a fork racing the freeze)."""
        pids = self._procs()
        if not pids:
            self.emptied = True
            return True
        track, path = next(iter(self.dirs.items()))
        killer = path / "cgroup.kill"
        if track.version == 2 and killer.exists():
            _write_quiet(killer, "1")
        else:
            self._freeze_and_kill(pids)
        return False

    async def kill_all(self) -> None:
        """Kill everything in the job's group and wait (a bounded while) until it is empty."""
        for _ in range(KILL_ROUNDS):
            if self.kill():
                return
            await asyncio.sleep(KILL_PAUSE)
        log.warning("job cgroup did not empty", extra={"action": "cgroup_stuck"})

    def kill_blocking(self) -> None:
        """``kill_all`` for where nothing else may run meanwhile: the sweep at start, and a
        run cancelled before its sweep (rare; the kill takes milliseconds)."""
        for _ in range(KILL_ROUNDS):
            if self.kill():
                return
            time.sleep(KILL_PAUSE)

    def release(self) -> None:
        """Kill what is left (nothing, usually: not even a look once seen empty) and remove
        the groups."""
        if not self.emptied:
            self.kill_blocking()
        self.remove()

    def _freeze_and_kill(self, pids: list[int]) -> None:
        freezer = self._freezer()
        if freezer is not None:
            _write_quiet(freezer, "FROZEN" if freezer.name == "freezer.state" else "1")
            pids = self._procs()
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        if freezer is not None:
            _write_quiet(freezer, "THAWED" if freezer.name == "freezer.state" else "0")

    def _freezer(self) -> Path | None:
        for path in self.dirs.values():
            for name in ("cgroup.freeze", "freezer.state"):
                if (path / name).exists():
                    return path / name
        return None

    def oom_message(self) -> str | None:
        """``memory limit of N MiB exceeded`` when the kernel killed something of the job
        for going over its memory limit; None otherwise."""
        memory = self.setup.limits.get("memory")
        if memory is None or self.limits.memory_mb is None or memory not in self.dirs:
            return None
        path = self.dirs[memory]
        if memory.version == 2:
            killed = _field(path / "memory.events", "oom_kill")
        else:
            killed = _field(path / "memory.oom_control", "oom_kill")
        if killed:
            return f"memory limit of {self.limits.memory_mb} MiB exceeded"
        return None

    def remove(self) -> None:
        """Remove the (empty) groups, or hand an empty pooled one back for the next job;
        one still busy is left for the next start's sweep."""
        if self.pooled and len(self.setup.idle) < POOL_SIZE and (self.emptied or not self._procs()):
            self.setup.idle.extend(self.dirs.values())  # list.extend is atomic: any thread
            return
        for path in reversed(list(self.dirs.values())):
            try:
                path.rmdir()
            except FileNotFoundError:
                pass
            except OSError as exc:
                log.warning(
                    "cannot remove job cgroup",
                    extra={"action": "cgroup_busy", "path": str(path), "error": exc.strerror},
                )


def _read_all(path: str) -> bytes:
    """A small kernel file in one go: ``os.read`` until the end, no buffered file object."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        parts = [os.read(fd, 65536)]
        while parts[-1]:
            parts.append(os.read(fd, 65536))
        return b"".join(parts)
    finally:
        os.close(fd)


def _sandbox_step(pid: int) -> bool:
    """Whether ``pid`` is the sandbox's own init (``bwrap``, root's, not the job's): it
    can outlive the leader by a moment, and is no process the job left behind."""
    try:
        return Path(f"/proc/{pid}/comm").read_bytes() == b"bwrap\n"
    except OSError:
        return False


def _asked(limits: Resources, controller: str) -> bool:
    value = {"memory": limits.memory_mb, "pids": limits.pids, "cpu": limits.cpus}[controller]
    return value is not None


def _write_limits(
    hierarchy: Hierarchy, path: Path, limits: Resources, owners: dict[str, Hierarchy]
) -> None:
    """Write each limit the job has into the group of the hierarchy that holds it."""
    v2 = hierarchy.version == 2
    if limits.memory_mb is not None and owners.get("memory") == hierarchy:
        size = str(limits.memory_mb << 20)
        if v2:
            (path / "memory.max").write_text(size)
            _write_quiet(path / "memory.swap.max", "0")  # no swap: the limit is the limit
        else:
            (path / "memory.limit_in_bytes").write_text(size)
            _write_quiet(path / "memory.memsw.limit_in_bytes", size)  # memory + swap
    if limits.pids is not None and owners.get("pids") == hierarchy:
        (path / "pids.max").write_text(str(limits.pids))
    if limits.cpus is not None and owners.get("cpu") == hierarchy:
        quota = max(MIN_QUOTA, int(limits.cpus * CPU_PERIOD))
        if v2:
            (path / "cpu.max").write_text(f"{quota} {CPU_PERIOD}")
        else:
            (path / "cpu.cfs_period_us").write_text(str(CPU_PERIOD))
            (path / "cpu.cfs_quota_us").write_text(str(quota))


def _prlimit(limits: Resources) -> list[str]:
    """The setrlimit fallback: address space for memory, process count for pids."""
    options = []
    if limits.memory_mb is not None:
        options.append(f"--as={limits.memory_mb << 20}")
    if limits.pids is not None:
        options.append(f"--nproc={limits.pids}")
    return ["prlimit", *options, "--"] if options else []


def _write_quiet(path: Path, value: str) -> None:
    with contextlib.suppress(OSError):
        path.write_text(value)


def _field(path: Path, name: str) -> int:
    """A ``name value`` line of a flat-keyed cgroup file; 0 when absent."""
    try:
        for line in path.read_text().splitlines():
            key, _, value = line.partition(" ")
            if key == name:
                return int(value)
    except (OSError, ValueError):
        pass
    return 0


def worker_key(work_dir: Path) -> str:
    """The name of the worker's parent groups: one per work dir (which one worker locks)."""
    return "w-" + hashlib.sha256(str(work_dir).encode()).hexdigest()[:12]
