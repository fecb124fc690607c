"""``favordynmods`` on cgroup v2: reading mountinfo, and the remount done for real.

The remounts run as root in a mount namespace of their own, on a fresh mount of the
host's cgroup2 hierarchy (at a temporary directory, with the host's options and
``nosuid,nodev,noexec``), so no mount of the host is touched. The option itself belongs
to the hierarchy, not to a mount: where the host lacks it, these tests turn it on for the
whole host, as a worker started there would; they never turn it (or any other option)
off, which each test checks.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from corral.agent.favordynmods import (
    MOUNTINFO,
    NOT_FLAGS,
    OPTION,
    Mount,
    cgroup2_mount_of,
    parse_mountinfo,
    turn_on,
)

SAMPLE = (
    "29 23 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 "
    "cgroup2 rw,nsdelegate,memory_recursiveprot\n"
    "41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw,favordynmods\n"
    "33 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n"
    r"68 47 0:38 / /tmp/with\040space rw master:1 shared:9 - cgroup2 none rw"
    "\n"
    "garbage without a separator\n"
)


def host_cgroup2() -> Mount:
    """The host's cgroup2 mount; these tests are about it, so without one they fail."""
    if os.geteuid() != 0:
        pytest.fail("favordynmods tests need root (they mount and remount cgroup2)")
    mount = next((m for m in parse_mountinfo(MOUNTINFO.read_text()) if m.fstype == "cgroup2"), None)
    if mount is None:
        pytest.fail("no cgroup2 hierarchy is mounted on this machine")
    return mount


def flags(mount: Mount) -> set[str]:
    return {o for o in mount.options if o not in NOT_FLAGS}


# Runs in the private namespace: mounts the hierarchy at argv[1], runs the test's code
# (which sees ``point`` and ``options``), prints what ``result`` holds as JSON.
PRELUDE = """
import json, subprocess, sys
from pathlib import Path
from corral.agent.favordynmods import *
point, options = Path(sys.argv[1]), sys.argv[2].split(",") if sys.argv[2] else []
mounted = ",".join(["nosuid", "nodev", "noexec", *options])
subprocess.run(["mount", "-t", "cgroup2", "-o", mounted, "none", str(point)], check=True)
def mine(raw):
    return [m.point for m in parse_mountinfo(raw)] == [point]
def line():
    return next(l for l in MOUNTINFO.read_text().splitlines() if mine(l))
"""


def in_own_mount_namespace(tmp_path: Path, code: str) -> dict[str, str]:
    """Run ``code`` (after ``PRELUDE``) in a private mount namespace; its ``result``."""
    host = host_cgroup2()
    point = tmp_path / "cgroup2 here"
    point.mkdir()
    script = PRELUDE + code + "\nprint(json.dumps(result))"
    argv = ["unshare", "-m", "--propagation", "private", sys.executable, "-c", script]
    done = subprocess.run(
        [*argv, str(point), ",".join(sorted(flags(host)))],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    after = host_cgroup2()
    assert flags(after) >= flags(host), "a remount turned a host option off"
    assert after.point == host.point
    result: dict[str, str] = json.loads(done.stdout)
    return result


def test_mountinfo_is_read_past_optional_fields_and_escapes() -> None:
    mounts = parse_mountinfo(SAMPLE)
    assert [(m.point, m.fstype) for m in mounts] == [
        (Path("/sys/fs/cgroup"), "cgroup2"),
        (Path("/sys/fs/cgroup/unified"), "cgroup2"),
        (Path("/sys/fs/cgroup/memory"), "cgroup"),
        (Path("/tmp/with space"), "cgroup2"),
    ]
    # The filesystem's options (after " - "), not the mount's own (nosuid, relatime...).
    assert mounts[0].options == ("rw", "nsdelegate", "memory_recursiveprot")


def test_the_deepest_cgroup2_mount_holds_the_tracked_path() -> None:
    mounts = parse_mountinfo(SAMPLE)
    unified = cgroup2_mount_of(Path("/sys/fs/cgroup/unified/corral/w-1"), mounts)
    assert unified is not None and unified.point == Path("/sys/fs/cgroup/unified")
    pure = cgroup2_mount_of(Path("/sys/fs/cgroup/system.slice/corral/w-1"), mounts)
    assert pure is not None and pure.point == Path("/sys/fs/cgroup")
    assert cgroup2_mount_of(Path("/srv"), mounts) is None


def test_the_remount_adds_favordynmods_and_keeps_every_other_option(tmp_path: Path) -> None:
    result = in_own_mount_namespace(
        tmp_path, "reconfigure(point, [OPTION, *options])\nresult = {'line': line()}"
    )
    fields = result["line"].split()
    mount_flags, fs_options = set(fields[5].split(",")), set(fields[-1].split(","))
    assert OPTION in fs_options
    assert {"nosuid", "nodev", "noexec"} <= mount_flags  # the mount's own flags stay
    assert fs_options - NOT_FLAGS == flags(host_cgroup2())  # one hierarchy, one set


def test_an_option_the_kernel_refuses_changes_nothing(tmp_path: Path) -> None:
    code = """
before = line()
try:
    reconfigure(point, [OPTION, "no_such_option", *options])
    result = {"refused": ""}
except OptionRefused as exc:
    result = {"refused": exc.option, "same": str(line() == before)}
"""
    assert in_own_mount_namespace(tmp_path, code) == {"refused": "no_such_option", "same": "True"}


def test_a_hierarchy_seen_without_it_is_remounted_and_said_so(tmp_path: Path) -> None:
    # Decided from a mountinfo where the option is missing (this host may have it on for
    # good already), checked against the kernel's own after the real remount.
    code = """
seen = "\\n".join(
    l.replace(",favordynmods", "") if mine(l) else l
    for l in MOUNTINFO.read_text().splitlines()
)
outcome = turn_on(point / "corral" / "w-1", seen=seen)
result = {"result": outcome.result, "message": outcome.message, "line": line()}
"""
    result = in_own_mount_namespace(tmp_path, code)
    assert result["result"] == "turned_on", result
    assert result["message"].startswith(f"cgroup v2 at {tmp_path / 'cgroup2 here'} remounted")
    assert "RCU grace period" in result["message"]
    assert OPTION in result["line"].split()[-1].split(",")


def test_without_cap_sys_admin_it_says_why_and_goes_on() -> None:
    host = host_cgroup2()
    lacking = MOUNTINFO.read_text().replace(",favordynmods", "")
    code = (
        "import sys; from pathlib import Path; from corral.agent.favordynmods import turn_on; "
        "o = turn_on(Path(sys.argv[1]) / 'corral', seen=sys.argv[2]); print(o.result, o.message)"
    )
    unprivileged = ["setpriv", "--bounding-set=-sys_admin", "--", sys.executable, "-c", code]
    done = subprocess.run(
        [*unprivileged, str(host.point), lacking], capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"refused cgroup v2 at {host.point} without favordynmods")
    assert "may not remount it (not root)" in done.stdout
    assert flags(host_cgroup2()) >= flags(host)


def test_left_alone_when_the_worker_is_told_so() -> None:
    outcome = turn_on(Path("/sys/fs/cgroup/corral/w-1"), enabled=False, seen=SAMPLE)
    assert (outcome.result, outcome.mount) == ("left_off", Path("/sys/fs/cgroup"))
    assert "--no-cgroup-favordynmods" in outcome.message
    # Already on: nothing to leave off, and said so.
    assert turn_on(Path("/sys/fs/cgroup/unified/x"), enabled=False, seen=SAMPLE).result == (
        "already_on"
    )


def test_nothing_to_do_without_cgroup_v2_tracking() -> None:
    assert turn_on(None).result == "not_used"
    assert turn_on(Path("/sys/fs/cgroup/memory/x"), seen=SAMPLE).result == "not_used"
