"""Where the time goes, per process, in a py-spy raw profile taken with --subprocesses.

py-spy's raw format is one collapsed stack per line, ``frame;frame;...;leaf count``,
each stack rooted in ``process PID:"command line"``. This groups the samples by kind of
process (Corral's server, Corral's worker, Celery's worker, ...) and prints, for each, the
functions with the largest share of its samples: "self" where the sample's innermost
Python frame was, "incl" anywhere on the stack.

    .venv/bin/python bench/profile_summary.py prof.txt [--top 15]
"""

from __future__ import annotations

import argparse
import re
from collections import Counter, defaultdict
from pathlib import Path

KINDS = {
    "corral.cli.main server": "Corral server",
    "corral.cli.main worker": "Corral worker",
    "celery_app worker": "Celery worker",
    "celery_app.py": "Celery driver",
    "vs_celery.py": "bench driver",
}
LINE = re.compile(r" \(([^)]*?):\d+\)$")  # the line number: one function, one row


def kind(root: str) -> str:
    return next((name for key, name in KINDS.items() if key in root), "other")


def function(frame: str) -> str:
    """``name (path/to/module.py:12)`` -> ``name (module.py)``, site-packages trimmed."""
    match = LINE.search(frame)
    if not match:
        return frame
    path = match.group(1)
    short = path.split("site-packages/")[-1].split("/src/")[-1]
    return f"{frame[: match.start()]} ({short})"


def summarise(path: Path) -> dict[str, tuple[int, Counter[str], Counter[str]]]:
    totals: Counter[str] = Counter()
    own: defaultdict[str, Counter[str]] = defaultdict(Counter)
    anywhere: defaultdict[str, Counter[str]] = defaultdict(Counter)
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit() or not stack.startswith("process "):
            continue  # a command line spread over several lines: only its last one counts
        frames = stack.split(";")
        roots = [f for f in frames if f.startswith("process ")]
        name = kind(roots[-1])  # the innermost process: a child of the driver
        calls = [function(f) for f in frames if not f.startswith(("process ", "thread "))]
        totals[name] += int(count)
        if calls:
            own[name][calls[-1]] += int(count)
            for call in set(calls):
                anywhere[name][call] += int(count)
    return {name: (totals[name], own[name], anywhere[name]) for name in totals}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("profile", type=Path)
    parser.add_argument("--top", type=int, default=15)
    args = parser.parse_args()
    for name, (total, own, anywhere) in sorted(summarise(args.profile).items()):
        print(f"\n== {name}: {total:,} samples")
        for label, counts in (("self", own), ("incl", anywhere)):
            for call, n in counts.most_common(args.top):
                print(f"  {label} {n / total:6.1%}  {call}")


if __name__ == "__main__":
    main()
