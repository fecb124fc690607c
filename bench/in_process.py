"""The dispatcher's CPU per request, in process: prints figures, asserts nothing.

Over HTTP on a shared machine the rates swing with the load; here the ASGI app is
called directly (no socket, no uvicorn, no client in the same process's way) and the
process CPU time of each request is counted. Each round submits ``--per-round`` jobs
in one bulk request, claims them ten at a time and reports each with one
``PUT /jobs/{id}/complete`` (or, with ``--batched``, one ``POST /jobs/results`` per
claim); the smallest and the median round are printed.

    .venv/bin/python bench/in_process.py [--rounds 8] [--per-round 500] [--batched]
        [--no-fsync] [--profile out.prof]

``--no-fsync`` runs SQLite with ``synchronous=OFF`` so the figures count only the
process's own work (a commit's fsync costs the kernel time whatever the code does;
the server refuses this setting). ``--profile`` writes a cProfile of the run.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import logging
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import orjson

from corral.api.app import create_app
from corral.settings import ServerSettings

UNTHROTTLED = {
    "rate_limit": "off",
    "worker_rate_limit": "off",
    "auth_failure_rate_limit": "off",
    "login_rate_limit": "off",
}


def request_parts(
    method: str, path: str, body: Any, token: str
) -> tuple[dict[str, Any], Callable[[], Awaitable[dict[str, Any]]]]:
    """The ASGI scope and ``receive`` of one JSON request, as uvicorn would hand it over."""
    raw = orjson.dumps(body)
    headers = [
        (b"host", b"127.0.0.1"),
        (b"authorization", f"Bearer {token}".encode()),
        (b"content-type", b"application/json"),
        (b"content-length", str(len(raw)).encode()),
    ]
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "scheme": "http",
        "server": ("127.0.0.1", 3000),
        "client": ("127.0.0.1", 50000),
        "headers": headers,
    }
    messages = [{"type": "http.request", "body": raw, "more_body": False}]

    async def receive() -> dict[str, Any]:
        if messages:
            return messages.pop()
        await asyncio.Event().wait()  # the client stays: nothing more ever comes
        raise AssertionError

    return scope, receive


async def call(app: Any, method: str, path: str, body: Any, token: str) -> tuple[int, Any]:
    """One request through the ASGI app, as uvicorn would hand it over."""
    scope, receive = request_parts(method, path, body, token)
    answer: dict[str, Any] = {"body": b""}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            answer["status"] = message["status"]
        else:
            answer["body"] += message.get("body", b"")

    await app(scope, receive, send)
    return answer["status"], orjson.loads(answer["body"]) if answer["body"] else None


async def one_round(app: Any, token: str, jobs: int, batched: bool) -> dict[str, float]:
    body = [{"type": "bench", "command": "true", "priority": "background"}] * jobs
    started = time.process_time()
    status, _ = await call(app, "POST", "/api/v1/jobs/bulk", body, token)
    assert status == 201, status
    bulk = (time.process_time() - started) * 1e6 / jobs
    spent = {"claim": 0.0, "report": 0.0}
    counts = {"claim": 0, "report": 0}
    while True:
        started = time.process_time()
        status, claimed = await call(
            app, "POST", "/api/v1/jobs/claim", {"executor_id": "bench", "n": 10}, token
        )
        spent["claim"] += time.process_time() - started
        counts["claim"] += 1
        if status == 204:
            break
        for path, report in reports(claimed, batched):
            started = time.process_time()
            status, _ = await call(app, *path, report, token)
            spent["report"] += time.process_time() - started
            counts["report"] += 1
            assert status == 200, status
    total = sum(spent.values()) * 1000 / sum(counts.values())
    per = {key: spent[key] * 1000 / counts[key] for key in spent}
    return {"bulk submit (us per job)": bulk, **per, "per request": total}


def reports(claimed: list[dict[str, Any]], batched: bool) -> list[tuple[tuple[str, str], Any]]:
    if batched:
        results = [
            {"job_id": j["id"], "executor_id": "bench", "attempt": j["attempt"]}
            | {"status": "completed", "exit_code": 0}
            for j in claimed
        ]
        return [(("POST", "/api/v1/jobs/results"), results)]
    return [
        (
            ("PUT", f"/api/v1/jobs/{j['id']}/complete"),
            {"executor_id": "bench", "attempt": j["attempt"], "exit_code": 0},
        )
        for j in claimed
    ]


async def run(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        settings = ServerSettings(data_dir=Path(tmp), **UNTHROTTLED)  # type: ignore[arg-type]
        if args.no_fsync:
            settings.sqlite_synchronous = "OFF"  # measurement only: see the docstring
        app = create_app(settings)
        async with app.router.lifespan_context(app):
            token = (Path(tmp) / "admin-token").read_text().strip()
            await one_round(app, token, 50, args.batched)  # warm-up
            profile = cProfile.Profile() if args.profile else None
            if profile is not None:
                profile.enable()
            rounds = [
                await one_round(app, token, args.per_round, args.batched)
                for _ in range(args.rounds)
            ]
            if profile is not None:
                profile.disable()
                profile.dump_stats(args.profile)
    report = "batched results" if args.batched else "complete"
    for key in rounds[0]:
        values = [r[key] for r in rounds]
        unit = "" if "us" in key else " ms CPU"
        name = {"report": report, "claim": "claim (n=10)"}.get(key, key)
        print(f"{name}: min {min(values):.3f}{unit}, median {statistics.median(values):.3f}{unit}")


def main() -> None:
    logging.getLogger("corral").setLevel(logging.ERROR)  # the bootstrap token's notice
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--per-round", type=int, default=500)
    parser.add_argument("--batched", action="store_true")
    parser.add_argument("--no-fsync", action="store_true")
    parser.add_argument("--profile", metavar="FILE")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
