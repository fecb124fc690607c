"""The retention rules as pure functions: durations, ages, and what one batch deletes."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from corral.domain.jobs import JobSpec
from corral.domain.retention import (
    DAY,
    Finished,
    RetentionRule,
    Stream,
    describe,
    parse_duration,
    plan,
)
from corral.errors import InvalidInput
from corral.services.metrics import Metrics
from corral.services.retention import MIN_PAUSE, RetentionService
from corral.settings import ServerSettings

NOW = 100 * DAY
RULE = RetentionRule(NOW, 30 * DAY)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30d", 30 * DAY), ("12h", 43200.0), ("45m", 2700.0), ("90s", 90.0), ("0", 0.0)],
)
def test_durations_people_type(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds
    assert parse_duration(f" {text.upper()} ") == seconds


@pytest.mark.parametrize("text", ["30", "", "d", "-1d", "1w", "inf d", "nan", "3 days"])
def test_a_bare_number_or_nonsense_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="such as 30d"):
        parse_duration(text)


def test_described_as_people_say_it() -> None:
    assert [describe(s) for s in (30 * DAY, DAY, 7200.0, 60.0, 2.0, 0.0)] == [
        "30 days",
        "1 day",
        "2 hours",
        "1 minute",
        "2 seconds",
        "for ever",
    ]


def test_the_server_setting_reads_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    assert ServerSettings().retention == 30 * DAY
    monkeypatch.setenv("CORRAL_RETENTION", "12h")
    assert ServerSettings().retention == 43200
    monkeypatch.setenv("CORRAL_RETENTION", "0")
    assert ServerSettings().retention == 0
    monkeypatch.setenv("CORRAL_RETENTION", "30")
    with pytest.raises(ValidationError, match="number and a unit"):
        ServerSettings()


def test_ages_on_the_servers_retention_and_on_a_jobs_own() -> None:
    assert RULE.expired(NOW - 31 * DAY, None)
    assert not RULE.expired(NOW - 29 * DAY, None)
    assert not RULE.expired(None, None)  # never finished
    assert RULE.expired(NOW - 2 * DAY, 1)  # asked for one day
    assert not RULE.expired(NOW - 31 * DAY, 90)  # asked for ninety
    assert not RULE.expired(0.0, 0)  # asked to be kept for ever
    forever = RetentionRule(NOW, 0.0)
    assert not forever.expired(0.0, None)
    assert forever.streams() == [Stream.OWN]
    assert RULE.streams() == [Stream.DEFAULT, Stream.OWN]


def test_retention_days_is_checked_with_the_spec() -> None:
    JobSpec(command="true", retention_days=0).validate()
    with pytest.raises(InvalidInput, match="retention_days"):
        JobSpec(command="true", retention_days=-1).validate()


def _job(job_id: str, workflow: str | None = None, age: float = 40, **kw: object) -> Finished:
    fields: dict[str, object] = {"terminal": True, "retention_days": None, **kw}
    return Finished(job_id, 0, workflow, finished_at=NOW - age * DAY, **fields)  # type: ignore[arg-type]


def test_a_batch_keeps_held_jobs_and_judges_a_workflow_once_and_whole() -> None:
    candidates = [_job("a"), _job("w1", "wf"), _job("b"), _job("w2", "wf"), _job("c")]
    members = [_job("w1", "wf"), _job("w2", "wf"), _job("w3", "wf", age=10)]
    decided: set[str] = set()

    chosen = plan(candidates, members, {"b"}, RULE, decided, limit=10)

    assert chosen.job_ids == ["a", "c"]  # b is held; the workflow has a young job
    assert chosen.workflow_ids == []
    assert decided == {"wf"}
    assert chosen.last == candidates[-1]


def test_a_batch_takes_a_ready_workflow_whole_and_stops_near_its_limit() -> None:
    candidates = [_job("w1", "wf"), _job("a"), _job("b")]
    members = [_job(f"w{n}", "wf") for n in (1, 2, 3)]

    chosen = plan(candidates, members, set(), RULE, set(), limit=2)

    assert chosen.job_ids == ["w1", "w2", "w3"]  # never split, even past the limit
    assert chosen.workflow_ids == ["wf"]
    assert chosen.last == candidates[0]  # the next batch starts at "a"


def test_the_purge_rests_longer_while_the_server_answers_requests() -> None:
    answered = [0]
    purge = RetentionService(None, Metrics(), 30 * DAY, requests=lambda: answered[0])  # type: ignore[arg-type]
    assert purge.rest_after(0.01) == pytest.approx(0.09)  # nothing seen yet: assume busy
    assert purge.rest_after(0.01) == pytest.approx(0.01)  # no request since: idle
    answered[0] += 1
    assert purge.rest_after(0.01) == pytest.approx(0.09)
    assert purge.rest_after(0.0) == MIN_PAUSE
    blind = RetentionService(None, Metrics(), 30 * DAY)  # type: ignore[arg-type]
    assert blind.rest_after(0.01) == pytest.approx(0.09)  # `corral prune`: always gentle
