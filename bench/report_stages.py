"""Where one `PUT /jobs/{id}/complete` spends its time, layer by layer, in process.

bench/in_process.py gives the CPU a complete costs; this splits it. The ASGI app is
called directly, as there (SQLite without its fsync unless ``--fsync``), and the
functions each layer of a complete goes through are wrapped to add up their wall time:
each row includes the rows below it that it calls, so the gap between a row and the
ones it contains is that layer's own work. Microseconds per complete, over
``--rounds`` rounds of 1,000 (after one for warm-up); the wrappers cost about a
microsecond each.

    .venv/bin/python bench/report_stages.py [--rounds 3] [--fsync]

Prints figures, asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import inspect
import logging
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.in_process import UNTHROTTLED, call  # noqa: E402
from corral.api import headers, responses  # noqa: E402
from corral.api.app import create_app  # noqa: E402
from corral.api.native import executing, hotpath  # noqa: E402
from corral.services import leasing  # noqa: E402
from corral.settings import ServerSettings  # noqa: E402
from corral.store.sqlite import engine as sqlite_engine  # noqa: E402
from corral.store.sqlite import finish as sqlite_finish  # noqa: E402
from corral.store.sqlite import store as sqlite  # noqa: E402

# (owner, function, what the row says), outermost first: the order of the printout.
LAYERS: list[tuple[Any, str, str]] = [
    (headers.ResponseHeaders, "__call__", "common headers middleware (and all below)"),
    (hotpath.HotPaths, "__call__", "hot route: match, read, validate, answer"),
    (hotpath, "_match", "  matching the route"),
    (hotpath, "_valid_body", "  the body parsed and validated"),
    (hotpath, "_answer", "  authenticate, handle, render"),
    (hotpath, "principal_of", "    authentication (token cache)"),
    (executing, "_report", "    the handler"),
    (leasing.LeaseService, "finish", "      the lease service's finish"),
    (sqlite.SqliteStore, "finish_many", "        the store, until the commit is done"),
    (sqlite_engine.Writer, "_run", "          BEGIN and the op"),
    (sqlite_finish, "finish_plain", "            three UPDATEs, the job read back"),
    (sqlite_finish, "job_from_row", "              the Job built from its row"),
    (sqlite_engine.Writer, "_commit_now", "          COMMIT"),
    (leasing.LeaseService, "_after_finish", "        events, metrics, wake-ups"),
    (responses.JSON, "render", "    the answer rendered"),
]
SPENT: dict[str, float] = defaultdict(float)
COUNTING = [False]


def timed(owner: Any, name: str, label: str) -> None:
    wrapped = getattr(owner, name)

    def add(began: float) -> None:
        if COUNTING[0]:
            SPENT[label] += time.perf_counter() - began

    if inspect.iscoroutinefunction(wrapped):

        @functools.wraps(wrapped)
        async def layer(*args: Any, **kwargs: Any) -> Any:
            began = time.perf_counter()
            try:
                return await wrapped(*args, **kwargs)
            finally:
                add(began)

    else:

        @functools.wraps(wrapped)
        def layer(*args: Any, **kwargs: Any) -> Any:  # type: ignore[misc]
            began = time.perf_counter()
            try:
                return wrapped(*args, **kwargs)
            finally:
                add(began)

    setattr(owner, name, layer)


async def run(rounds: int, fsync: bool) -> float:
    """Complete ``rounds`` x 1,000 jobs (after a warm-up round); seconds they took."""
    with tempfile.TemporaryDirectory() as tmp:
        settings = ServerSettings(data_dir=Path(tmp), **UNTHROTTLED)  # type: ignore[arg-type]
        if not fsync:
            settings.sqlite_synchronous = "OFF"  # measurement only, as in_process.py
        app = create_app(settings)
        total = 0.0
        async with app.router.lifespan_context(app):
            token = (Path(tmp) / "admin-token").read_text().strip()
            for counted in [False] + [True] * rounds:
                jobs = [{"type": "bench", "command": "true"}] * 1000
                await call(app, "POST", "/api/v1/jobs/bulk", jobs, token)
                claimed: list[dict[str, Any]] = []
                while len(claimed) < 1000:
                    claim = {"executor_id": "bench", "n": 100}
                    claimed += (await call(app, "POST", "/api/v1/jobs/claim", claim, token))[1]
                COUNTING[0] = counted
                began = time.perf_counter()
                for job in claimed:
                    report = {"executor_id": "bench", "attempt": job["attempt"], "exit_code": 0}
                    await call(app, "PUT", f"/api/v1/jobs/{job['id']}/complete", report, token)
                total += (time.perf_counter() - began) if counted else 0.0
                COUNTING[0] = False
        return total


def main() -> None:
    logging.getLogger("corral").setLevel(logging.ERROR)  # the bootstrap token's notice
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--fsync", action="store_true", help="SQLite as the server runs it")
    args = parser.parse_args()
    for owner, name, label in LAYERS:
        timed(owner, name, label)
    total = asyncio.run(run(args.rounds, args.fsync))
    per = 1e6 / (args.rounds * 1000)
    print(f"one complete, in process, us of wall time ({'with' if args.fsync else 'no'} fsync)")
    print(f"{total * per:8.1f}  the whole request, as the ASGI server would call the app")
    for _, _, label in LAYERS:
        print(f"{SPENT[label] * per:8.1f}  {label}")


if __name__ == "__main__":
    main()
