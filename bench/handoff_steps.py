"""Where the server's part of one job goes, step by step, hot and after an idle moment.

The ASGI app is called directly (no socket, SQLite without its fsync, as
``bench/in_process.py --no-fsync``). Each round submits one job while a long-poll claim
waits for work (the worker's usual state between jobs), so the submit hands the job to
the claim in its own transaction (``services/handoff.py``). A few of the server's own
functions are wrapped to note the time they start and end; the medians of those times,
in ms after the submit entered the app, are printed for two cases:

  hot    the submit right after the claim parked (the process busy all along);
  idle   the process idle for ``--idle`` seconds before the submit, as between single
         jobs on a quiet machine (cold caches: the same steps take several times longer).

    .venv/bin/python bench/handoff_steps.py [--rounds 300] [--idle 0.005]

Prints figures, asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import logging
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.in_process import UNTHROTTLED, request_parts  # noqa: E402
from corral.api.app import create_app  # noqa: E402
from corral.api.native import hotpath  # noqa: E402
from corral.services import jobs, leasing  # noqa: E402
from corral.services.container import Services, open_store  # noqa: E402
from corral.settings import ServerSettings  # noqa: E402
from corral.store.sqlite import engine as sqlite_engine  # noqa: E402

STAMPS: list[tuple[str, float]] = []
# (wrapped function, the step it marks): the first time each is entered in a round.
STEPS = {
    "hot route entered": (hotpath.HotPaths, "__call__"),
    "job service entered": (jobs.JobService, "submit"),
    "store write begun": (sqlite_engine.Writer, "_run"),
    "commit begun": (sqlite_engine.Writer, "_commit_now"),
    "claim's jobs recorded": (leasing.LeaseService, "_record_claims"),
}


def stamping(step: str, function: Callable[..., Any]) -> Callable[..., Any]:
    if asyncio.iscoroutinefunction(function):

        @functools.wraps(function)
        async def stamped_async(*args: Any, **kwargs: Any) -> Any:
            STAMPS.append((step, time.perf_counter()))
            return await function(*args, **kwargs)

        return stamped_async

    @functools.wraps(function)
    def stamped(*args: Any, **kwargs: Any) -> Any:
        STAMPS.append((step, time.perf_counter()))
        return function(*args, **kwargs)

    return stamped


def request(app: Any, path: str, body: Any, token: str, sent: dict[str, float], name: str) -> Any:
    """One request through the ASGI app; ``sent[name]`` is when its answer was complete."""
    scope, receive = request_parts("POST", path, body, token)

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.body" and not message.get("more_body"):
            sent[name] = time.perf_counter()

    return app(scope, receive, send)


async def rounds(
    app: Any, services: Services, token: str, count: int, idle: float
) -> dict[str, list[float]]:
    steps: dict[str, list[float]] = defaultdict(list)
    claim = {"executor_id": "steps", "n": 1, "wait": 30}
    for number in range(count):
        sent: dict[str, float] = {}
        waiting = asyncio.ensure_future(
            request(app, "/api/v1/jobs/claim", claim, token, sent, "claim")
        )
        while not services.hub.parked:  # noqa: ASYNC110 (the services offer no event for it)
            await asyncio.sleep(0)
        await asyncio.sleep(idle)  # with idle > 0 the process rests
        STAMPS.clear()
        began = time.perf_counter()
        submit = request(app, "/api/v1/jobs", {"command": "true"}, token, sent, "submit")
        await asyncio.gather(submit, waiting)
        if number < count // 10:  # warm-up
            continue
        first: dict[str, float] = {}
        for step, at in STAMPS:
            first.setdefault(step, at)
        for step, at in (*first.items(), ("claim's answer sent", sent["claim"])):
            steps[step].append((at - began) * 1000)
        steps["submit's answer sent"].append((sent["submit"] - began) * 1000)
    return steps


async def run(args: argparse.Namespace) -> None:
    for step, (owner, name) in STEPS.items():
        setattr(owner, name, stamping(step, getattr(owner, name)))
    with tempfile.TemporaryDirectory() as tmp:
        settings = ServerSettings(data_dir=Path(tmp), **UNTHROTTLED)  # type: ignore[arg-type]
        settings.sqlite_synchronous = "OFF"  # measurement only: the process's own work
        services = Services(open_store(settings), settings)
        app = create_app(settings, services)
        async with app.router.lifespan_context(app):
            token = (Path(tmp) / "admin-token").read_text().strip()
            hot = await rounds(app, services, token, args.rounds, 0.0)
            idle = await rounds(app, services, token, args.rounds, args.idle)
    print(
        f"one submit handed to a parked claim, ms after the submit entered the app "
        f"(medians of {args.rounds - args.rounds // 10}):"
    )
    print(f"  {'step':28} {'hot':>8} {'after ' + str(args.idle) + ' s idle':>18}")
    for step in sorted(idle, key=lambda s: statistics.median(idle[s])):
        print(
            f"  {step:28} {statistics.median(hot[step]):8.3f} {statistics.median(idle[step]):18.3f}"
        )


def main() -> None:
    logging.getLogger("corral").setLevel(logging.ERROR)  # the bootstrap token's notice
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=300)
    parser.add_argument("--idle", type=float, default=0.005)
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
