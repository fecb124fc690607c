"""What an ended attempt reports, batching of reports, backoff, and the SDK's SSE parser."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from corral.agent.backoff import Backoff
from corral.agent.dispatcher import DispatcherError, Unreachable, parse_job
from corral.agent.executor import JobRun, RunResult, StopReason
from corral.agent.reports import ResultReporter, report_for
from corral.client.client import EndEvent, OutputEvent
from corral.client.sse import SseParser
from corral.domain.jobs import JobSpec

RUN = JobRun("j", 2, JobSpec(command="x", timeout=5))


@pytest.mark.parametrize(
    ("result", "expected"),
    [
        (RunResult(True, 0), {"status": "completed", "exit_code": 0}),
        (
            RunResult(True, 3),
            {"status": "failed", "exit_code": 3, "error_message": "exited with code 3"},
        ),
        (
            RunResult(True, -9),
            {"status": "failed", "exit_code": 137, "error_message": "killed by SIGKILL"},
        ),
        (
            RunResult(True, -15, StopReason.TIMEOUT),
            {"status": "failed", "exit_code": 143, "error_message": "timed out after 5 s"},
        ),
        (RunResult(True, -15, StopReason.CANCEL), {"status": "cancelled", "exit_code": 143}),
        (RunResult(False, stop_reason=StopReason.CANCEL), {"status": "cancelled"}),
        (
            RunResult(True, -15, StopReason.SHUTDOWN),
            {
                "status": "failed",
                "exit_code": 143,
                "retry": True,
                "error_message": "the worker shut down before the job finished",
            },
        ),
        (
            RunResult(False, error="bad", retryable=True),
            {"status": "failed", "error_message": "bad", "retry": True},
        ),
    ],
)
def test_report_for(result: RunResult, expected: dict[str, Any]) -> None:
    assert report_for(RUN, result) == {"job_id": "j", "attempt": 2, **expected}


@pytest.mark.parametrize(
    "result",
    [
        RunResult(True, -9, StopReason.LOST),
        RunResult(True, -9, StopReason.LEASE_EXPIRED),
        RunResult(False, stop_reason=StopReason.SHUTDOWN),  # released instead
    ],
)
def test_not_reported(result: RunResult) -> None:
    assert report_for(RUN, result) is None


class FakeDispatcher:
    def __init__(self, failures: int = 0) -> None:
        self.batches: list[list[dict[str, Any]]] = []
        self.failures = failures

    async def results(self, reports: list[dict[str, Any]]) -> list[dict[str, Any]]:
        if self.failures:
            self.failures -= 1
            raise Unreachable("down")
        self.batches.append(list(reports))
        return [{"job_id": r["job_id"], "ok": r["job_id"] != "stale", "code": 409} for r in reports]


async def test_reports_are_batched_and_retried(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Backoff, "next", lambda self: 0.01)
    dispatcher = FakeDispatcher(failures=2)
    reporter = ResultReporter(dispatcher)  # type: ignore[arg-type]
    task = asyncio.create_task(reporter.run())
    futures = [reporter.submit({"job_id": f"j{i}", "status": "completed"}) for i in range(100)]
    futures.append(reporter.submit({"job_id": "stale", "status": "completed"}))
    answers = await asyncio.wait_for(asyncio.gather(*futures), 5)
    await asyncio.wait_for(reporter.drained(), 5)
    task.cancel()
    assert len(dispatcher.batches) == 1  # 101 reports, one request once it came back
    assert [a["ok"] for a in answers] == [True] * 100 + [False]


class ErrorsFirst:
    """Answers each request with the next status of ``statuses`` (200: per-report answers).

    Per report: "stale" is refused (409); "busy" is not decided the first time (503)."""

    def __init__(self, *statuses: int) -> None:
        self.statuses = list(statuses)
        self.batches: list[list[str]] = []
        self.busy_seen = False

    async def results(self, reports: list[dict[str, Any]]) -> list[dict[str, Any]]:
        self.batches.append([r["job_id"] for r in reports])
        status = self.statuses.pop(0) if self.statuses else 200
        if status != 200:
            raise DispatcherError(status, "no")
        return [self.answer(r["job_id"]) for r in reports]

    def answer(self, job_id: str) -> dict[str, Any]:
        if job_id == "stale":
            return {"job_id": job_id, "ok": False, "code": 409}
        if job_id == "busy" and not self.busy_seen:
            self.busy_seen = True
            return {"job_id": job_id, "ok": False, "code": 503}
        return {"job_id": job_id, "ok": True}


async def _deliver(dispatcher: Any, ids: list[str]) -> list[dict[str, Any]]:
    reporter = ResultReporter(dispatcher)
    task = asyncio.create_task(reporter.run())
    futures = [reporter.submit({"job_id": i, "status": "completed"}) for i in ids]
    answers = await asyncio.wait_for(asyncio.gather(*futures), 10)
    task.cancel()
    return list(answers)


async def test_item2_outcomes_kept_through_5xx_and_429(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Backoff, "next", lambda self: 0.01)
    dispatcher = ErrorsFirst(502, 503, 429, 504)
    answers = await _deliver(dispatcher, ["a", "busy", "stale"])
    assert [a["ok"] for a in answers] == [True, True, False]  # only the 409 is dropped
    assert dispatcher.batches[:5] == [["a", "busy", "stale"]] * 5
    assert dispatcher.batches[5:] == [["busy"]]


async def test_item2_a_malformed_batch_is_split(monkeypatch: pytest.MonkeyPatch) -> None:
    """A whole batch refused as bad input is retried in halves until the bad report is alone."""

    class Picky(ErrorsFirst):
        async def results(self, reports: list[dict[str, Any]]) -> list[dict[str, Any]]:
            self.batches.append([r["job_id"] for r in reports])
            if any(r["job_id"] == "bad" for r in reports):
                raise DispatcherError(422, "bad report")
            return [self.answer(r["job_id"]) for r in reports]

    monkeypatch.setattr(Backoff, "next", lambda self: 0.01)
    answers = await _deliver(Picky(), ["a", "b", "bad", "c"])
    assert [(a["ok"], a.get("code")) for a in answers] == [
        (True, None),
        (True, None),
        (False, 422),
        (True, None),
    ]


def test_backoff_grows_with_jitter_and_caps() -> None:
    backoff = Backoff(base=1, cap=8)
    delays = [backoff.next() for _ in range(6)]
    assert 0.5 <= delays[0] <= 1
    assert 4 <= delays[-1] <= 8
    backoff.reset()
    assert backoff.next() <= 1


def test_parse_job_reads_wire_fields() -> None:
    wire = {
        "id": "x",
        "attempt": 3,
        "command": "echo",
        "arguments": ["a"],
        "env_variables": {"K": "V"},
        "timeout": 9,
        "working_directory": "w",
    }
    run = parse_job(wire)
    assert (run.job_id, run.attempt) == ("x", 3)
    assert run.spec.arguments == ("a",)
    assert run.spec.env == {"K": "V"}
    assert (run.spec.timeout, run.spec.working_directory) == (9, "w")


def test_sse_parser() -> None:
    lines = [
        ": keepalive",
        "",
        "event: output",
        'data: {"stream": "stdout", "offset": 0, "data": "hi\\n"}',
        "",
        "event: end",
        'data: {"status": "completed", "exit_code": 0}',
        "",
        "event: output",
        'data: {"stream": "stdout", "offset": 3, "data": "never"}',
        "",
    ]
    parser = SseParser()
    events = [event for line in lines if (event := parser.feed(line)) is not None]
    assert events == [
        OutputEvent("stdout", 0, "hi\n"),
        EndEvent("completed", 0, None),
        OutputEvent("stdout", 3, "never"),
    ]


async def test_item2_retry_after_is_honoured(monkeypatch: pytest.MonkeyPatch) -> None:
    """A 429 or 503 that says how long to wait is not retried sooner."""

    class AskToWait(ErrorsFirst):
        async def results(self, reports: list[dict[str, Any]]) -> list[dict[str, Any]]:
            self.batches.append([r["job_id"] for r in reports])
            if len(self.batches) == 1:
                raise DispatcherError(429, "slow down", retry_after=0.3)
            return [self.answer(r["job_id"]) for r in reports]

    monkeypatch.setattr(Backoff, "next", lambda self: 0.01)
    loop = asyncio.get_running_loop()
    begun = loop.time()
    answers = await _deliver(AskToWait(), ["a"])
    assert answers[0]["ok"]
    assert loop.time() - begun >= 0.3


async def test_item2_one_report_that_fails_every_request_holds_up_no_other(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A report that makes the dispatcher answer 500 to any request holding it (a bug
    on one row) is retried on its own; every other outcome is delivered meanwhile."""

    class Poisoned(ErrorsFirst):
        async def results(self, reports: list[dict[str, Any]]) -> list[dict[str, Any]]:
            self.batches.append([r["job_id"] for r in reports])
            if any(r["job_id"] == "poison" for r in reports):
                raise DispatcherError(500, "internal error")
            return [self.answer(r["job_id"]) for r in reports]

    monkeypatch.setattr(Backoff, "next", lambda self: 0.001)
    reporter = ResultReporter(Poisoned())  # type: ignore[arg-type]
    task = asyncio.create_task(reporter.run())
    poison = reporter.submit({"job_id": "poison", "status": "completed"})
    good = [reporter.submit({"job_id": f"j{i}", "status": "completed"}) for i in range(300)]
    answers = await asyncio.wait_for(asyncio.gather(*good), 10)
    assert all(a["ok"] for a in answers)
    assert not poison.done()  # still kept: a 500 decides nothing
    task.cancel()
