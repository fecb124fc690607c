"""The ``sandbox`` level's namespaces: one bubblewrap (``bwrap``) command line per job.

What a sandboxed job sees:
- the host filesystem read-only (``--ro-bind / /``), with a fresh /dev and a private
  /tmp (tmpfs, mode 1777);
- the worker's work dir replaced by an empty tmpfs (or its outermost parent that other
  users cannot traverse, such as ``/root``), with only its own job directory bound
  back read-write and, for a ``binary_url`` job, its verified binary read-only:
  other jobs' directories, the binary cache and the spool are not there at all;
- its own PID namespace with its own /proc: it sees only its own processes, not the
  worker's argv or environment, nor any other job's; when its first process ends,
  the kernel kills everything left in the namespace;
- its own IPC namespace; with ``network: false`` its own network namespace, which
  holds nothing but its own empty loopback: no network at all.

bwrap runs as root here (no user namespace needed) and the uid switch comes right
after it, inside the namespaces (``setpriv``, see ``isolation.py``). No
``--new-session``: the job must stay in the process group the worker signals, which
reaches the job's processes inside the namespace too.
"""

from __future__ import annotations

import functools
import shutil
import stat
import subprocess
from dataclasses import dataclass
from pathlib import Path

BWRAP = "bwrap"
PROBE_TIMEOUT = 10.0


@dataclass(frozen=True, slots=True)
class View:
    """What one sandboxed job is given of the machine."""

    job_dir: Path
    cwd: Path
    work_dir: Path
    network: bool
    binary: Path | None = None


def argv(view: View) -> list[str]:
    """The bwrap prefix for ``view``; the job's command follows it."""
    bwrap = shutil.which(BWRAP) or "/usr/bin/bwrap"
    line = [bwrap, "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc"]
    line += ["--perms", "1777", "--tmpfs", "/tmp"]
    line += list(_work_dir_view(view.work_dir))
    # bwrap makes missing parents of a mount point 0700: make them traversable first.
    line += ["--perms", "0711", "--dir", str(view.job_dir.parent)]
    line += ["--bind", str(view.job_dir), str(view.job_dir)]
    if view.binary is not None:
        line += ["--perms", "0755", "--dir", str(view.binary.parent)]
        line += ["--ro-bind", str(view.binary), str(view.binary)]
    # No --die-with-parent: a SIGTERM to the job's group ends this outer bwrap at once,
    # and the job must keep its grace to trap the signal and finish (the worker waits
    # for the whole group, then SIGKILLs it).
    line += ["--unshare-pid", "--unshare-ipc"]
    if not view.network:
        line.append("--unshare-net")
    line += ["--chdir", str(view.cwd), "--"]
    return line


@functools.cache
def _work_dir_view(work_dir: Path) -> list[str]:
    """An empty tmpfs over the work dir, so a job reaches its own directory by its full
    path (its HOME): when a parent is closed to other users (``/root``, a 0700 dir),
    the tmpfs goes over the outermost such parent instead, hiding it too, and every
    directory from there down to the work dir is made traversable (0711)."""
    closed = [d for d in reversed(work_dir.parents) if not d.stat().st_mode & stat.S_IXOTH]
    top = closed[0] if closed else work_dir
    line = ["--perms", "0711", "--tmpfs", str(top)]
    below = [work_dir, *work_dir.parents][: len(work_dir.relative_to(top).parts)]
    for directory in reversed(below):
        line += ["--perms", "0711", "--dir", str(directory)]
    return line


def works() -> tuple[bool, str]:
    """Try the real thing once: a bwrap with every namespace a job may get, running ``true``."""
    if shutil.which(BWRAP) is None:
        return False, "bwrap is not installed (Debian package bubblewrap)"
    probe = View(Path("/tmp"), Path("/"), Path("/tmp"), network=False)
    try:
        done = subprocess.run(
            [*argv(probe), "true"],
            capture_output=True,
            timeout=PROBE_TIMEOUT,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return False, f"bwrap could not run: {exc}"
    if done.returncode != 0:
        error = done.stderr.decode(errors="replace").strip().splitlines()
        return False, f"bwrap failed: {error[-1] if error else done.returncode}"
    return True, "ok"
