"""`corral` with a time stamp at each step of a job's path: for bench/latency_steps.py only.

Run as ``python bench/stamps.py server|worker ...`` (the arguments of ``corral``): a few of
the server's or the worker's own functions are wrapped to append ``<unix time> <step>``
to the file named by ``$BENCH_STAMPS`` as they begin or return. Wall-clock time, so the
stamps of the server, the worker, the driver and the job's own ``date`` line up. Each
stamp costs a line written to a file: a few microseconds against milliseconds of path.
"""

from __future__ import annotations

import functools
import inspect
import os
import sys
import time
from typing import Any

OUT = open(os.environ["BENCH_STAMPS"], "a", buffering=1)  # noqa: SIM115 - the process's life


def stamp(owner: Any, name: str, begins: str | None, returns: str | None) -> None:
    """Wrap ``owner.name``: stamp ``begins`` as it is entered and ``returns`` as it returns."""
    wrapped = getattr(owner, name)

    def note(step: str | None) -> None:
        if step is not None:
            OUT.write(f"{time.time():.6f} {step}\n")

    if inspect.iscoroutinefunction(wrapped):

        @functools.wraps(wrapped)
        async def stamped(*args: Any, **kwargs: Any) -> Any:
            note(begins)
            result = await wrapped(*args, **kwargs)
            note(returns)
            return result

    else:

        @functools.wraps(wrapped)
        def stamped(*args: Any, **kwargs: Any) -> Any:  # type: ignore[misc]
            note(begins)
            result = wrapped(*args, **kwargs)
            note(returns)
            return result

    setattr(owner, name, stamped)


def stamp_server() -> None:
    from corral.api.native import hotpath
    from corral.services import jobs
    from corral.store.sqlite import engine as sqlite_engine

    stamp(hotpath.HotPaths, "__call__", "server: request in its hot route", "server: answer sent")
    stamp(jobs.JobService, "submit", "server: submit service called", None)
    stamp(sqlite_engine.Writer, "_commit_now", "server: COMMIT begins", "server: COMMIT done")


def stamp_worker() -> None:
    from corral.agent import dispatcher, executor

    stamp(dispatcher.Dispatcher, "claim", None, "worker: claim answer read")
    stamp(executor.Execution, "_prepare", "worker: preparing the job", None)
    stamp(executor, "spawn", "worker: spawn called", "worker: spawn returned")


def main() -> None:
    sys.argv = ["corral", *sys.argv[1:]]
    stamp_server() if sys.argv[1] == "server" else stamp_worker()
    from corral.cli.main import app

    app()


if __name__ == "__main__":
    main()
