"""The work dir one worker owns, and what every job run on it shares.

``Executor`` holds the settings of every attempt (``executor.py`` runs them): the work
dir, locked for its life, with its job directories, spool and binary cache; the
isolation level and the cgroups jobs go in; the environment jobs inherit; and the
threads spawns go to while other jobs run.
"""

from __future__ import annotations

import fcntl
import logging
import os
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from corral.agent import cgroup_detect
from corral.agent.binaries import BinaryCache
from corral.agent.cgroups import worker_key
from corral.agent.isolation import Isolation, Level
from corral.agent.jobdirs import JobDirs
from corral.agent.jobfiles import FileTransfer
from corral.agent.limits import LimitPolicy
from corral.agent.process import sweep_orphans

log = logging.getLogger("corral.agent.executor")

# Inherited from the worker's own environment; everything else comes from the job.
INHERITED_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "USER", "LOGNAME", "TMPDIR")
WORKER_MARK = "CORRAL_WORKER_DIR"  # names the work dir in every job's environment
SPAWN_THREADS = 4  # spawns in flight at once, each thread waiting in vfork() for an exec


class WorkDirBusy(Exception):
    """Another live worker holds this work dir."""


class Executor:
    """Shared settings of every execution on this worker, and the work dir it owns.

    The work dir is locked (``flock``) for the executor's life: two workers sharing
    one would sweep each other's jobs. On taking the lock, processes left behind
    by a previous, killed run of this worker are killed and stale job dirs removed.
    """

    def __init__(
        self,
        work_dir: Path,
        binaries: BinaryCache,
        *,
        grace: float = 5.0,
        flush_interval: float = 0.1,
        output_budget: int = 1 << 20,
        files: FileTransfer | None = None,
        limits: LimitPolicy | None = None,
        isolation: Isolation | None = None,
        cgroup_favordynmods: bool = False,
    ) -> None:
        self.work_dir = work_dir = work_dir.resolve()
        self.jobs_dir = work_dir / "jobs"
        self.binaries = binaries
        self.grace = grace
        self.flush_interval = flush_interval
        self.output_budget = output_budget
        self.files = files  # input archives and artifacts; None: jobs using them fail
        self.isolation = isolation or Isolation(Level.NONE)
        # What jobs inherit of the worker's environment, read once: os.environ decodes
        # every value it is asked for.
        self.inherited = {name: os.environ[name] for name in INHERITED_ENV if name in os.environ}
        self.spool_dir = work_dir / "spool"
        self.jobs_dir.mkdir(parents=True, exist_ok=True)
        self._lock = _lock(work_dir / ".lock")
        orphans = sweep_orphans(f"{WORKER_MARK}={work_dir}".encode())
        if orphans:
            log.warning(
                "killed orphaned job processes", extra={"action": "orphans_killed", "pids": orphans}
            )
        shutil.rmtree(self.jobs_dir, ignore_errors=True)
        self.jobs_dir.mkdir()
        self.isolation.secure_work_dir(work_dir)
        # Every job in its own cgroup (None: no cgroups at all, for tests of other parts).
        self.limits = limits
        # ``cgroup_favordynmods``: remount cgroup v2 for cheaper joins (favordynmods.py);
        # the worker's choice, off by default for the tests and tools that build executors.
        self.cgroups = (
            cgroup_detect.start(worker_key(work_dir), favordynmods=cgroup_favordynmods)
            if limits is not None
            else None
        )
        # Spawns go to these threads while other jobs run (process.spawn_in says why);
        # ``active`` counts the attempts spawning or running.
        self.spawner = ThreadPoolExecutor(SPAWN_THREADS, thread_name_prefix="corral-spawn")
        self.active = 0
        # Job directories are reused where nothing of a job can outlive it (jobdirs.py).
        tracked = self.cgroups is not None and self.cgroups.track is not None
        self.dirs = JobDirs(work_dir, reuse=self.isolation.level is Level.NONE and tracked)

    def close(self) -> None:
        """Release the work dir."""
        self.spawner.shutdown()
        if self.cgroups is not None:
            self.cgroups.close()
        if self._lock >= 0:
            os.close(self._lock)
            self._lock = -1


def _lock(path: Path) -> int:
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise WorkDirBusy(f"work dir {path.parent} is in use by another worker") from None
    return fd
