"""How long the `corral` command takes to start, and the CPU it spends: prints figures,
asserts nothing.

Each command line runs ``--runs`` times, each time in a fresh interpreter, as a user
runs it: `corral --version`, `corral --help`, `corral jobs --help`, and `corral jobs`
listing 20 jobs of a real `corral server` (SQLite, started from this tree), with
`python -c pass` as the floor no command can go below. With ``--against REV`` the
same command lines of the source at git revision REV run too, alternating with this
tree's (one run of each, then the next round), so a change in the machine's load
falls on both alike. Both trees are copied out and byte-compiled first, as an
installed package is; ``--source`` leaves them uncompiled, so that every module is
compiled from source at every start, as in a checkout with PYTHONDONTWRITEBYTECODE=1.

For each command line and tree: the median wall time and the median CPU time (user +
system of the finished child, from getrusage), and whether REV printed the same and
exited the same. The load average is printed before and after: on a shared machine
the wall times move with it, the CPU times much less.

    PYTHONPATH=src .venv/bin/python bench/cli_start.py [--runs 10] [--against REV] [--source]
"""

from __future__ import annotations

import argparse
import compileall
import io
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.dispatcher import server  # noqa: E402

THIS = "this tree"
JOBS = 20
FLOOR = "python -c pass"
COMMANDS = {  # label -> arguments of `corral`; None: the bare interpreter
    FLOOR: None,
    "corral --version": ("--version",),
    "corral --help": ("--help",),
    "corral jobs --help": ("jobs", "--help"),
    f"corral jobs ({JOBS} jobs, live server)": ("jobs",),
}


class Sample:
    """One command line of one tree: its times, and what its last run printed."""

    def __init__(self) -> None:
        self.wall: list[float] = []
        self.cpu: list[float] = []
        self.last: tuple[int, str] = (0, "")

    def add(self, wall: float, cpu: float, code: int, stdout: str) -> None:
        self.wall.append(wall)
        self.cpu.append(cpu)
        self.last = (code, stdout)


def run_once(argv: list[str], env: dict[str, str], sample: Sample) -> None:
    """Wall time around the child, CPU time from the rusage of the child once reaped."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    sample.add(wall, cpu, done.returncode, done.stdout)


def copy_tree(rev: str | None, dest: Path, compiled: bool) -> Path:
    """The ``src`` of this checkout (``rev`` None) or of a git revision, under ``dest``."""
    if rev is None:
        shutil.copytree(ROOT / "src", dest / "src", ignore=shutil.ignore_patterns("__pycache__"))
    else:
        archive = subprocess.run(
            ["git", "-C", str(ROOT), "archive", rev, "src"], capture_output=True, check=True
        ).stdout
        with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
            tar.extractall(dest, filter="data")
    if compiled:
        compileall.compile_dir(dest / "src", quiet=1)
    return dest / "src"


def child_env(src: Path, url: str, token: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CORRAL_")}
    # Never write bytecode: the runs must find what copy_tree left, no more.
    env.update(PYTHONPATH=str(src), PYTHONDONTWRITEBYTECODE="1", COLUMNS="100")
    env.update(CORRAL_URL=url, CORRAL_TOKEN=token)
    return env


@contextmanager
def live_server(root: Path) -> Iterator[tuple[str, str]]:
    """A `corral server` of this tree holding ``JOBS`` pending jobs."""
    with server(root / "data", None) as (url, admin):
        body = [{"command": "true", "name": f"bench-{i}"} for i in range(JOBS)]
        answer = httpx.post(
            f"{url}/api/v1/jobs/bulk", json=body, headers={"Authorization": f"Bearer {admin}"}
        )
        answer.raise_for_status()
        yield url, admin


def measure(
    trees: dict[str, Path], runs: int, url: str, token: str
) -> dict[tuple[str, str], Sample]:
    samples = {(label, tree): Sample() for label in COMMANDS for tree in trees}
    for round_ in range(runs + 1):  # round 0 warms the page cache and is dropped
        for label, args in COMMANDS.items():
            for tree, src in trees.items():
                argv = [sys.executable, "-m", "corral.cli.main", *(args or ())]
                if args is None:
                    argv = [sys.executable, "-c", "pass"]
                sample = samples[label, tree] if round_ else Sample()
                run_once(argv, child_env(src, url, token), sample)
    return samples


def report(samples: dict[tuple[str, str], Sample], trees: list[str]) -> None:
    print(f"{'command line':38} {'tree':10} {'wall p50':>9} {'cpu p50':>9}  same as {THIS}")
    for label in COMMANDS:
        mine = samples[label, THIS]
        for tree in trees:
            sample = samples[label, tree]
            wall = statistics.median(sample.wall) * 1000
            cpu = statistics.median(sample.cpu) * 1000
            same = "" if tree == THIS else ("yes" if sample.last == mine.last else "NO")
            print(f"{label:38} {tree:10} {wall:6.0f} ms {cpu:6.0f} ms  {same}")


def load() -> str:
    one, five, _ = os.getloadavg()
    return f"{one:.2f} (1 min), {five:.2f} (5 min)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--against", metavar="REV", help="a git revision to compare with")
    parser.add_argument("--source", action="store_true", help="no bytecode: compile each start")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        trees = {THIS: copy_tree(None, root / "this", not args.source)}
        if args.against:
            short = subprocess.run(
                ["git", "-C", str(ROOT), "rev-parse", "--short", args.against],
                capture_output=True,
                text=True,
                check=True,
            ).stdout.strip()
            trees[short] = copy_tree(args.against, root / "rev", not args.source)
        with live_server(root) as (url, token):
            print(f"load average before: {load()}; {os.cpu_count()} CPUs")
            samples = measure(trees, args.runs, url, token)
            print(f"load average after:  {load()}")
    bytecode = "from source" if args.source else "byte-compiled"
    print(f"median of {args.runs} runs each, alternating; modules {bytecode}")
    report(samples, list(trees))


if __name__ == "__main__":
    main()
