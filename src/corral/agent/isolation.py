"""How far a worker keeps its jobs from itself and from each other: the isolation level.

- ``none``: jobs run as the worker's own user (trusted, single-user machines).
- ``user``: each running job gets its own unprivileged uid/gid from a range (no
  passwd entry), a job directory owned by that uid with mode 0700, HOME there, and
  nothing of the worker's (token, work dir, binary cache, other jobs) it can read.
- ``sandbox``: ``user`` inside bubblewrap namespaces (``sandbox.py``): read-only
  host, private /tmp, own PID namespace, and no network when the job asks for none.

The uid switch happens in what is exec'd (``setpriv``), never in the worker's
child before exec: ``preexec_fn`` and ``Popen(user=)`` push CPython off its vfork
path (about 25 spawns/s from a big process instead of 1,600). ``auto`` picks the
strongest level the machine allows and says why.
"""

from __future__ import annotations

import logging
import os
import shutil
import stat
from dataclasses import dataclass
from pathlib import Path

from corral.agent import sandbox
from corral.agent.levels import AUTO as AUTO
from corral.agent.levels import CHOICES as CHOICES
from corral.agent.levels import DEFAULT_UID_RANGE as DEFAULT_UID_RANGE
from corral.agent.levels import Level as Level

log = logging.getLogger("corral.agent.isolation")

SETPRIV = "setpriv"
# What ``user`` needs: CAP_CHOWN (0) and CAP_FOWNER (3) to hand a job its directory
# (chown, then chmod 0700 a directory no longer ours), CAP_DAC_OVERRIDE (1) to read
# and remove what jobs leave, CAP_SETGID (6) and CAP_SETUID (7) for setpriv.
USER_CAPS = {
    0: "CAP_CHOWN",
    1: "CAP_DAC_OVERRIDE",
    3: "CAP_FOWNER",
    6: "CAP_SETGID",
    7: "CAP_SETUID",
}
# The worker's own identity, which a job running as another uid must not carry.
DROPPED_ENV = ("USER", "LOGNAME")


class IsolationUnavailable(Exception):
    """The requested level cannot work on this machine; the worker must not start."""


@dataclass(frozen=True, slots=True)
class Choice:
    level: Level
    reason: str


def choose(requested: str) -> Choice:
    """The level to run at, and why; ``IsolationUnavailable`` when an explicit level can't work."""
    if requested not in CHOICES:
        raise IsolationUnavailable(f"unknown isolation {requested!r}; choose one of {CHOICES}")
    if requested == Level.NONE:
        return Choice(Level.NONE, "asked for: jobs run as the worker's own user")
    user_ok, user_why = can_switch_uid()
    if requested == Level.USER:
        if not user_ok:
            raise IsolationUnavailable(f"--isolation user cannot work here: {user_why}")
        return Choice(Level.USER, "asked for")
    sandbox_ok, sandbox_why = sandbox.works() if user_ok else (False, user_why)
    if requested == Level.SANDBOX:
        if not sandbox_ok:
            raise IsolationUnavailable(f"--isolation sandbox cannot work here: {sandbox_why}")
        return Choice(Level.SANDBOX, "asked for")
    if sandbox_ok:
        return Choice(Level.SANDBOX, "auto: bubblewrap namespaces and uid switching work here")
    if user_ok:
        return Choice(Level.USER, f"auto: no sandbox ({sandbox_why})")
    return Choice(Level.NONE, f"auto: cannot give jobs their own uid ({user_why})")


def can_switch_uid() -> tuple[bool, str]:
    """Whether this process may chown job dirs and exec jobs as other uids through setpriv."""
    if shutil.which(SETPRIV) is None:
        return False, "setpriv (util-linux) is not installed"
    missing = [name for cap, name in USER_CAPS.items() if not _has_cap(cap)]
    if missing:
        return False, f"the worker lacks {', '.join(missing)} (run it as root)"
    return True, "ok"


def _has_cap(cap: int) -> bool:
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("CapEff:"):
                    return bool(int(line.split()[1], 16) >> cap & 1)
    except OSError:
        pass
    return os.geteuid() == 0


def parse_uid_range(text: str) -> range:
    """``"200000-265535"`` as a range of uids a job may get; never root or the worker's."""
    try:
        first, last = (int(part) for part in text.split("-", 1))
    except ValueError:
        raise IsolationUnavailable(
            f"--uid-range must look like 200000-265535, got {text!r}"
        ) from None
    if not 0 < first <= last < 2**32 - 1:
        raise IsolationUnavailable(f"--uid-range {text!r} must be increasing, above 0")
    uids = range(first, last + 1)
    if os.getuid() in uids or os.getgid() in uids:
        raise IsolationUnavailable(f"--uid-range {text!r} holds the worker's own uid or gid")
    return uids


class UidPool:
    """Uids for running jobs, handed out round-robin so a freed uid is the last reused:
    a process that escaped its job (before cgroups kill it) never meets the next job."""

    def __init__(self, uids: range) -> None:
        self.uids = uids
        self._next = 0
        self._busy: set[int] = set()

    def acquire(self) -> int | None:
        for _ in range(len(self.uids)):
            uid = self.uids[self._next]
            self._next = (self._next + 1) % len(self.uids)
            if uid not in self._busy:
                self._busy.add(uid)
                return uid
        return None

    def release(self, uid: int) -> None:
        self._busy.discard(uid)


@dataclass(frozen=True, slots=True)
class JobIdentity:
    """Who one job runs as, and where."""

    uid: int
    job_dir: Path


class Isolation:
    """One worker's level, applied to each job: ownership, environment, argv prefix."""

    def __init__(self, level: Level, uids: range | None = None) -> None:
        self.level = level
        self.pool = UidPool(uids or parse_uid_range(DEFAULT_UID_RANGE))
        self.setpriv = shutil.which(SETPRIV) or "/usr/bin/setpriv"

    @property
    def network_control(self) -> bool:
        """Whether a ``network: false`` job can be run here without network."""
        return self.level is Level.SANDBOX

    def secure_work_dir(self, work_dir: Path) -> None:
        """The work dir is traversable, not listable; a job reaches only its own dir."""
        if self.level is Level.NONE:
            return
        for path in (work_dir, work_dir / "jobs"):
            path.mkdir(parents=True, exist_ok=True)
            path.chmod(0o711)
        for private in ("spool",):  # unsent output of every job
            (work_dir / private).mkdir(exist_ok=True)
            (work_dir / private).chmod(0o700)
        closed = [str(d) for d in work_dir.parents if not d.stat().st_mode & stat.S_IXOTH]
        if closed and self.level is Level.USER:  # a sandbox mounts the job dir's path anew
            log.warning(
                "jobs cannot reach their directory by its full path (HOME, a binary_url "
                "binary): a parent of the work dir is closed to other users",
                extra={"action": "work_dir_unreachable", "closed": closed},
            )

    def acquire(self, job_dir: Path) -> JobIdentity | None:
        """Give the job its uid and its directory (everything in it, inputs included);
        None at ``none``. Raises ``OSError`` when the range is used up."""
        if self.level is Level.NONE:
            return None
        uid = self.pool.acquire()
        if uid is None:
            raise OSError(f"no free uid left in {self.pool.uids}")
        try:
            _give_tree(job_dir, uid)
        except OSError:
            self.pool.release(uid)
            raise
        return JobIdentity(uid, job_dir)

    def release(self, identity: JobIdentity | None) -> None:
        if identity is not None:
            self.pool.release(identity.uid)

    def env(self, env: dict[str, str], identity: JobIdentity | None) -> dict[str, str]:
        """The job's HOME is its own directory; the worker's user name is not handed down."""
        if identity is None:
            return env
        for name in DROPPED_ENV:
            env.pop(name, None)
        env["HOME"] = str(identity.job_dir)
        return env

    def wrap(
        self,
        argv: list[str],
        identity: JobIdentity | None,
        *,
        cwd: Path,
        work_dir: Path,
        network: bool,
        binary: Path | None = None,
    ) -> list[str]:
        """``argv`` behind the uid switch (and the sandbox): what the worker execs."""
        if identity is None:
            return argv
        uid = str(identity.uid)
        switch = [self.setpriv, "--reuid", uid, "--regid", uid, "--clear-groups"]
        switch += ["--no-new-privs", "--inh-caps=-all", "--bounding-set=-all", "--"]
        if self.level is not Level.SANDBOX:
            return [*switch, *argv]
        view = sandbox.View(identity.job_dir, cwd, work_dir, network, binary)
        return [*sandbox.argv(view), *switch, *argv]


def _give_tree(job_dir: Path, uid: int) -> None:
    """chown the job dir (and whatever its inputs put there) to ``uid``; mode 0700.

    ``lchown`` and no symlink following: an archive cannot make the worker chown
    something outside the job directory.
    """
    os.lchown(job_dir, uid, uid)
    job_dir.chmod(0o700)
    for root, dirs, files in os.walk(job_dir):
        for name in (*dirs, *files):
            os.lchown(os.path.join(root, name), uid, uid)


def readable_by_others(path: Path) -> bool:
    """Whether a file the worker reads its secret from can be read by another user."""
    return bool(path.stat().st_mode & (stat.S_IRGRP | stat.S_IROTH))
