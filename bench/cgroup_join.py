"""What a cgroup join costs a job's start, with cgroup v2 as it is mounted now (as root).

A job's first process joins its cgroup by writing its pid to ``cgroup.procs`` before
it runs anything (docs/isolation.md). Without ``favordynmods`` on the cgroup2 mount
that write waits for an RCU grace period whenever such writes are rare, as between
single jobs. This starts ``/bin/sh -c 'date +%s%N'`` the way a worker starts a job, one
at a time with a pause between (the worker idle between jobs), without and with the
join at the head of the script, and prints the medians and 95th percentiles of the
time from just before the spawn to ``date`` reading its clock.

    .venv/bin/python bench/cgroup_join.py [--samples 40]

Run it before and after a worker's first start on a fresh host to see what the
worker's remount (``action: cgroup_favordynmods``) changed.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from corral.agent.favordynmods import MOUNTINFO, parse_mountinfo  # noqa: E402

PAUSE = 0.05  # seconds between two starts: the host's joins are rare, as between jobs


def starts(script: str, group: Path | None, samples: int) -> tuple[float, float]:
    """Median and 95th percentile (ms) from spawn to ``date``'s clock."""
    waits = []
    for _ in range(samples):
        join = f"echo $$ > {group / 'cgroup.procs'} || exit 125; " if group else ""
        began = time.time_ns()
        out = subprocess.run(["/bin/sh", "-c", join + script], capture_output=True, check=True)
        waits.append((int(out.stdout) - began) / 1e6)
        time.sleep(PAUSE)
    waits.sort()
    return statistics.median(waits), waits[int(len(waits) * 0.95) - 1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--samples", type=int, default=40)
    args = parser.parse_args()
    mount = next((m for m in parse_mountinfo(MOUNTINFO.read_text()) if m.fstype == "cgroup2"), None)
    if mount is None or os.geteuid() != 0:
        sys.exit("needs root and a cgroup2 mount")
    on = "favordynmods" in mount.options
    print(f"cgroup2 at {mount.point}: favordynmods {'on' if on else 'off'}")
    group = mount.point / f"corral-join-{os.getpid()}"  # a cgroup goes with rmdir only
    group.mkdir()
    try:
        for label, where in (("without the join", None), ("with the join", group)):
            p50, p95 = starts("date +%s%N", where, args.samples)
            print(f"  sh -c 'date' {label:17}: p50 {p50:5.1f} ms, p95 {p95:5.1f} ms")
    finally:
        group.rmdir()


if __name__ == "__main__":
    main()
