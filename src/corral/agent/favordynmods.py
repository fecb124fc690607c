"""``favordynmods`` on the cgroup v2 hierarchy jobs are tracked in: why, and turning it on.

Every job joins its cgroup by writing its pid to ``cgroup.procs`` (``cgroups.py``). That
write takes the kernel's global ``cgroup_threadgroup_rwsem`` for writing, and unless
cgroup v2 is mounted with ``favordynmods`` (Linux 6.0+) taking it waits for an RCU grace
period: several milliseconds whenever such writes are rare, as they are between single
jobs. On a 2-core development host (Linux 6.18), ``sh -c 'echo $$ > cgroup.procs; date'``
reached its clock in 9.2 ms (median) against 2.8 ms without the join; with the option,
2.8 ms both. Its price is a slightly dearer fork and exit for every process of the host
(the read side of that lock takes a shared atomic instead of a per-CPU count), small
against the milliseconds it takes off every job start.

The option belongs to the whole v2 hierarchy, not to one of its mounts: each mount shows
it, and a mount or remount of any of them (from the host's cgroup namespace) sets the
hierarchy's options to exactly those it names. So the worker reconfigures the mount with
every option the hierarchy has now plus ``favordynmods`` (naming only the new one would
drop the ``nsdelegate`` and ``memory_recursiveprot`` systemd mounts it with), through
``fspick(2)`` and ``fsconfig(2)``: unlike ``mount(2)`` with ``MS_REMOUNT``, which also
resets the mount's own flags (``nosuid``, ``nodev``, ``noexec``) to whatever it is
passed, that touches the hierarchy's options and nothing else. Each option is handed
over before anything changes, so an option the kernel refuses changes nothing.

It is never a reason to stop: without the right (not root), on a kernel without the
option (EINVAL before 6.0), or in a container whose cgroup namespace is not the host's
(the kernel takes the remount and ignores it), the worker says why in one line and
runs on.
"""

from __future__ import annotations

import ctypes
import errno
import logging
import os
import platform
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger("corral.agent.cgroups")

MOUNTINFO = Path("/proc/self/mountinfo")
OPTION = "favordynmods"
# fsconfig(2) and fspick(2) have had the same numbers on every architecture but alpha and
# the MIPS ABIs since Linux 5.2 (the unified numbering from 424 up).
SYS_FSCONFIG = 431
SYS_FSPICK = 433
UNIFIED_NUMBERS = {"x86_64", "aarch64", "arm64", "riscv64", "s390x", "ppc64le", "ppc64"}
AT_FDCWD = -100
FSPICK_CLOEXEC = 0x1
FSCONFIG_SET_FLAG = 0
FSCONFIG_CMD_RECONFIGURE = 7
# Superblock options that are no cgroup2 flag: read-only or not is left as it is.
NOT_FLAGS = frozenset({"rw", "ro"})


@dataclass(frozen=True, slots=True)
class Mount:
    """One line of ``/proc/self/mountinfo``: where, what, and the filesystem's options."""

    point: Path
    fstype: str
    options: tuple[str, ...]  # the superblock's (after the " - "), not the mount's own


@dataclass(frozen=True, slots=True)
class Outcome:
    """What became of the option, in one word (``result``) and one sentence (``message``)."""

    result: str  # turned_on, already_on, left_off, refused, unsupported, ignored, not_used
    message: str
    mount: Path | None = None


class OptionRefused(OSError):
    """The kernel refused to take one of the options: nothing was changed."""

    def __init__(self, option: str, code: int) -> None:
        super().__init__(code, f"{os.strerror(code)} (option {option})")
        self.option = option


def parse_mountinfo(text: str) -> list[Mount]:
    """Every mount in ``text`` (``/proc/self/mountinfo``'s format, proc(5)): the fields
    before the ``-`` separator vary in number, and spaces in paths are octal escapes."""
    mounts = []
    for line in text.splitlines():
        before, sep, after = line.partition(" - ")
        fields, tail = before.split(), after.split()
        if not sep or len(fields) < 5 or len(tail) < 3:
            continue
        point = Path(_unescape(fields[4]))
        mounts.append(Mount(point, tail[0], tuple(tail[2].split(","))))
    return mounts


def _unescape(field: str) -> str:
    """``\\040`` (space), ``\\011`` (tab), ``\\012`` (newline), ``\\134`` (backslash)."""
    return field.encode().decode("unicode_escape") if "\\" in field else field


def cgroup2_mount_of(path: Path, mounts: Sequence[Mount]) -> Mount | None:
    """The mount ``path`` lies in (the deepest mount point above it), if it is cgroup2."""
    above = [m for m in mounts if path.is_relative_to(m.point)]
    found = max(above, key=lambda m: len(m.point.parts), default=None)
    return found if found is not None and found.fstype == "cgroup2" else None


def reconfigure(point: Path, options: Sequence[str]) -> None:
    """Set the options of the filesystem mounted at ``point`` to exactly ``options``.

    Raises ``OptionRefused`` when the kernel does not take one of them (nothing has
    changed then) and ``OSError`` for anything else (EPERM without CAP_SYS_ADMIN)."""
    if platform.machine() not in UNIFIED_NUMBERS:
        raise OSError(errno.ENOSYS, f"fspick(2) is not wired for {platform.machine()} here")
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    fd = libc.syscall(
        ctypes.c_long(SYS_FSPICK),
        ctypes.c_long(AT_FDCWD),
        ctypes.c_char_p(os.fsencode(point)),
        ctypes.c_long(FSPICK_CLOEXEC),
    )
    if fd < 0:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code), str(point))
    try:
        for option in options:
            if _fsconfig(libc, fd, FSCONFIG_SET_FLAG, option) < 0:
                raise OptionRefused(option, ctypes.get_errno())
        if _fsconfig(libc, fd, FSCONFIG_CMD_RECONFIGURE, None) < 0:
            code = ctypes.get_errno()
            raise OSError(code, os.strerror(code), str(point))
    finally:
        os.close(fd)


def _fsconfig(libc: ctypes.CDLL, fd: int, command: int, key: str | None) -> int:
    name = None if key is None else key.encode()
    result: int = libc.syscall(
        ctypes.c_long(SYS_FSCONFIG),
        ctypes.c_long(fd),
        ctypes.c_long(command),
        ctypes.c_char_p(name),
        ctypes.c_void_p(None),
        ctypes.c_long(0),
    )
    return result


def turn_on(tracked: Path | None, *, enabled: bool = True, seen: str | None = None) -> Outcome:
    """Give the cgroup v2 hierarchy ``tracked`` lies in ``favordynmods`` when it lacks it
    (and ``enabled``); say what was done, or why not. Never raises.

    ``seen`` is the mountinfo text to decide from (default: read now); what is remounted
    must be cgroup2 by the kernel's own mountinfo, which also says whether it took."""
    mount = _mount(tracked, seen)
    if mount is None:
        return Outcome("not_used", "favordynmods: jobs are not tracked in cgroup v2 here")
    where = f"cgroup v2 at {mount.point}"
    if OPTION in mount.options:
        return Outcome("already_on", f"{where} has favordynmods: {GAIN}", mount.point)
    if not enabled:
        why = f"{where} left without favordynmods (--no-cgroup-favordynmods): {COST}"
        return Outcome("left_off", why, mount.point)
    real = _mount(tracked) if seen is not None else mount
    if real is None or real.point != mount.point:  # never remount what is no cgroup2
        return Outcome("not_used", f"favordynmods: {mount.point} is no cgroup v2 mount here")
    return _remount(mount, tracked)


def _remount(mount: Mount, tracked: Path | None) -> Outcome:
    """Reconfigure ``mount`` with the option added; the outcome as the kernel has it."""
    where = f"cgroup v2 at {mount.point}"
    try:
        reconfigure(mount.point, [OPTION, *(o for o in mount.options if o not in NOT_FLAGS)])
    except OptionRefused as exc:
        if exc.option == OPTION:
            why = f"{where} without favordynmods: the kernel has no such option (Linux 6.0+)"
            return Outcome("unsupported", f"{why}; {COST}", mount.point)
        why = f"{where} left as it is: its option {exc.option} cannot be carried over"
        return Outcome("refused", f"{why} ({exc.strerror}); {COST}", mount.point)
    except OSError as exc:
        cause = "the worker may not remount it (not root)" if exc.errno == errno.EPERM else exc
        return Outcome("refused", f"{where} without favordynmods: {cause}; {COST}", mount.point)
    now = _mount(tracked)
    if now is None or OPTION not in now.options:  # another cgroup namespace than the host's
        why = f"{where} without favordynmods: the kernel took the remount, not the option"
        return Outcome("ignored", f"{why} (a container?); {COST}", mount.point)
    return Outcome("turned_on", f"{where} remounted with favordynmods: {GAIN}", mount.point)


GAIN = "a job joins its cgroup without waiting for an RCU grace period (milliseconds per start)"
COST = "each job's cgroup join may wait for an RCU grace period (milliseconds per start)"


def _mount(tracked: Path | None, seen: str | None = None) -> Mount | None:
    if tracked is None:
        return None
    try:
        text = MOUNTINFO.read_text() if seen is None else seen
    except OSError:
        return None
    return cgroup2_mount_of(tracked, parse_mountinfo(text))


def tune(tracked: Path | None, *, enabled: bool) -> Outcome:
    """``turn_on`` and its one log line (``action: cgroup_favordynmods``)."""
    outcome = turn_on(tracked, enabled=enabled)
    extra = {"action": "cgroup_favordynmods", "result": outcome.result}
    if outcome.mount is not None:
        extra["mount"] = str(outcome.mount)
    log.info(outcome.message, extra=extra)
    return outcome
