"""Find, once at worker start, which cgroup hierarchies this worker can use, and why.

Read from ``/proc/self/mounts`` (which hierarchies are mounted, v1 or v2, with which
controllers) and ``/proc/self/cgroup`` (where this process sits in each), then tried
for real: the worker's parent group is created in each, and a hierarchy that refuses
(read-only, not delegated) is left out with the reason. cgroup v2 is preferred for
every controller it offers; v1 fills in the controllers v2 lacks (the mixed layout).
"""

from __future__ import annotations

import contextlib
import errno
import logging
from pathlib import Path

from corral.agent import favordynmods as dynmods
from corral.agent.cgroups import LIMITED, MOUNTS, OWN, Cgroups, Hierarchy

log = logging.getLogger("corral.agent.cgroups")

NEST = "corral"  # <own cgroup>/corral/<worker key>/<job>
AGENT_LEAF = "corral-agent"  # pure v2: where the worker moves itself to free its own group


def detect(key: str, *, v2: bool = True) -> Cgroups:
    """What this machine offers to a worker whose groups are named ``key``; ``v2=False``
    ignores cgroup v2 (to try the v1-only layout on a machine that has both)."""
    mounts = [m for m in _mounts() if v2 or m[0] != "cgroup2"]
    own = _own_paths()
    notes: list[str] = []
    unified, v2_controllers = _v2(mounts, own, key, notes)
    limits = dict.fromkeys(v2_controllers, unified) if unified is not None else {}
    for controller in LIMITED:
        if controller not in limits:
            v1 = _v1(mounts, own, controller, key, notes)
            if v1 is not None:
                limits[controller] = v1
    track = unified or _v1(mounts, own, "freezer", key, notes) or next(iter(limits.values()), None)
    return _describe(track, limits, notes)


def _describe(track: Hierarchy | None, limits: dict[str, Hierarchy], notes: list[str]) -> Cgroups:
    if track is None:
        why = "; ".join(notes) or "no cgroup hierarchy is mounted"
        why += ": limits are rlimits, only the job's process group is killed"
        return Cgroups("setrlimit", why)
    versions = {h.version for h in (track, *limits.values())}
    mode = {1: "cgroup v1", 2: "cgroup v2"}.get(min(versions) if len(versions) == 1 else 0)
    mode = mode or "mixed cgroup v1 + v2"
    where = ", ".join(f"{c} (v{h.version})" for c, h in sorted(limits.items())) or "none"
    reason = f"jobs tracked and killed in {track.parent}; limits: {where}"
    missing = [c for c in LIMITED if c not in limits]
    if missing:
        reason += f"; no {', '.join(missing)} limit"
    if notes:  # why a hierarchy or controller is not used
        reason += f" ({'; '.join(notes)})"
    return Cgroups(mode, reason, track, limits)


def _mounts() -> list[tuple[str, Path, set[str]]]:
    """(fstype, mount point, options) of every cgroup mount."""
    found = []
    with contextlib.suppress(OSError):
        for line in MOUNTS.read_text().splitlines():
            fields = line.split()
            if len(fields) >= 4 and fields[2] in ("cgroup", "cgroup2"):
                found.append((fields[2], Path(fields[1]), set(fields[3].split(","))))
    return found


def _own_paths() -> dict[str, str]:
    """Where this process sits: controller (or "" for v2) -> path in that hierarchy."""
    paths: dict[str, str] = {}
    with contextlib.suppress(OSError):
        for line in OWN.read_text().splitlines():
            _, controllers, path = line.split(":", 2)
            for controller in controllers.split(",") if controllers else [""]:
                paths[controller] = path
    return paths


def _parent(mount: Path, own: str, key: str, notes: list[str]) -> Path | None:
    parent = mount / own.lstrip("/") / NEST / key
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        notes.append(f"cannot create {parent}: {exc.strerror}")
        return None
    return parent


def _v1(
    mounts: list[tuple[str, Path, set[str]]],
    own: dict[str, str],
    controller: str,
    key: str,
    notes: list[str],
) -> Hierarchy | None:
    for fstype, mount, options in mounts:
        if fstype == "cgroup" and controller in options:
            parent = _parent(mount, own.get(controller, "/"), key, notes)
            return Hierarchy(1, parent) if parent is not None else None
    return None


def _v2(
    mounts: list[tuple[str, Path, set[str]]], own: dict[str, str], key: str, notes: list[str]
) -> tuple[Hierarchy | None, list[str]]:
    mount = next((m for fstype, m, _ in mounts if fstype == "cgroup2"), None)
    if mount is None or "" not in own:
        notes.append("no cgroup v2 hierarchy")
        return None, []
    parent = _parent(mount, own[""], key, notes)
    if parent is None:
        return None, []
    base = mount / own[""].lstrip("/")
    offered = _read(base / "cgroup.controllers").split()
    wanted = [c for c in LIMITED if c in offered]
    if not wanted:
        notes.append(f"cgroup v2 at {mount} has no memory, pids or cpu controller here")
        return Hierarchy(2, parent), []
    enabled = _enable(base, parent, wanted, notes)
    return Hierarchy(2, parent), enabled


def _enable(base: Path, parent: Path, wanted: list[str], notes: list[str]) -> list[str]:
    """Turn each of ``wanted`` on for the children of every group from ``base`` down to
    ``parent``; returns those that could be.

    cgroup v2 lets a group hand controllers to its children only while it has no
    processes of its own (the root excepted): when the worker's own group refuses
    (EBUSY), the worker and whatever shares its group move to a leaf beside ``corral``.
    """
    enabled = []
    for controller in wanted:
        try:
            for group in (base, base / NEST, parent):
                _subtree(group, controller, base)
        except OSError as exc:
            notes.append(f"cannot enable {controller} below {base}: {exc.strerror}")
            continue
        enabled.append(controller)
    return enabled


def _subtree(group: Path, controller: str, base: Path) -> None:
    control = group / "cgroup.subtree_control"
    try:
        control.write_text(f"+{controller}")
    except OSError as exc:
        if group != base or exc.errno != errno.EBUSY or not _leave(base):
            raise
        control.write_text(f"+{controller}")


def _leave(base: Path) -> bool:
    """Move every process of ``base`` into its ``corral-agent`` leaf."""
    leaf = base / AGENT_LEAF
    try:
        leaf.mkdir(exist_ok=True)
        for pid in _read(base / "cgroup.procs").split():
            with contextlib.suppress(ProcessLookupError):
                (leaf / "cgroup.procs").write_text(pid)
    except OSError:
        return False
    extra = {"action": "cgroup_leaf", "path": str(leaf)}
    log.info("worker moved to its own leaf cgroup", extra=extra)
    return True


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""


def start(key: str, *, favordynmods: bool = False) -> Cgroups:
    """Detect, say once what the worker got and why, turn ``favordynmods`` on where it
    helps (when asked: ``favordynmods.py``), and clear what a previous run left."""
    cgroups = detect(key)
    log.info(
        f"job isolation by {cgroups.mode}: {cgroups.reason}",
        extra={"action": "cgroups_detected", "mode": cgroups.mode, "reason": cgroups.reason},
    )
    track = cgroups.track
    dynmods.tune(track.parent if track and track.version == 2 else None, enabled=favordynmods)
    killed = cgroups.sweep()
    if killed:
        log.warning(
            "killed processes left in job cgroups by a previous run",
            extra={"action": "cgroup_orphans_killed", "count": killed},
        )
    return cgroups
