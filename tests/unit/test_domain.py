"""The pure core: transition table, priorities, retry policy, fencing, verdicts."""

from __future__ import annotations

import dataclasses
import random

import pytest

from corral.domain import priority
from corral.domain.jobs import AttemptRef, Job, JobSpec, NewJob, Outcome
from corral.domain.leases import check_fence, on_lease_lost
from corral.domain.outcomes import finished, fit
from corral.domain.retry import RetryPolicy, retries_left
from corral.domain.states import TRANSITIONS, JobStatus, can_transition, check_transition
from corral.errors import Forbidden, InvalidInput, InvalidTransition, StaleAttempt

NOW = 1_700_000_000.0
POLICY = RetryPolicy(base_seconds=1.0, max_seconds=60.0, jitter=0.0)


def running_job(**changes: object) -> Job:
    job = NewJob("j1", JobSpec(command="true"), priority.NORMAL, "owner", NOW).stored(1)
    running = dataclasses.replace(
        job, status=JobStatus.RUNNING, attempt=1, executor_id="w1", lease_principal_id="p1"
    )
    return dataclasses.replace(running, **changes)  # type: ignore[arg-type]


def test_terminal_states_have_no_way_out() -> None:
    for terminal in (JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED):
        assert not any(src == terminal for src, _ in TRANSITIONS)
    assert can_transition(JobStatus.PENDING, JobStatus.RUNNING)
    assert not can_transition(JobStatus.PENDING, JobStatus.COMPLETED)
    with pytest.raises(InvalidTransition):
        check_transition("j", JobStatus.COMPLETED, JobStatus.RUNNING)


def test_both_priority_vocabularies_share_one_scale() -> None:
    assert priority.parse_priority("foreground") == priority.parse_priority("high")
    assert priority.parse_priority("background") == priority.parse_priority("normal")
    assert priority.parse_priority("best_effort") == priority.parse_priority("low")
    assert priority.HIGH > priority.NORMAL > priority.LOW
    assert priority.queue_class(priority.HIGH) == "foreground"
    assert priority.level(priority.LOW) == "low"
    with pytest.raises(InvalidInput):
        priority.parse_priority("urgent")


def test_backoff_doubles_and_is_capped() -> None:
    assert [POLICY.delay(n) for n in (1, 2, 3, 4)] == [1.0, 2.0, 4.0, 8.0]
    assert POLICY.delay(30) == 60.0
    jittered = RetryPolicy(base_seconds=10, jitter=0.5).delay(1, random.Random(7))
    assert 5.0 <= jittered <= 15.0
    assert retries_left(attempts_made=3, max_retries=3)
    assert not retries_left(attempts_made=4, max_retries=3)


def test_lost_lease_requeues_with_backoff_then_fails() -> None:
    verdict = on_lease_lost(running_job(attempt=1, max_retries=2), NOW, POLICY)
    assert verdict.status == JobStatus.PENDING and verdict.run_after == NOW + 1.0
    verdict = on_lease_lost(running_job(attempt=3, max_retries=2), NOW, POLICY)
    assert verdict.status == JobStatus.FAILED and "no retries left" in (verdict.error_message or "")
    released = running_job(attempt=3, releases=1, max_retries=2)
    assert on_lease_lost(released, NOW, POLICY).status == JobStatus.PENDING
    cancelled = on_lease_lost(running_job(cancel_requested=True), NOW, POLICY)
    assert cancelled.status == JobStatus.CANCELLED


def test_fence_refuses_anyone_but_the_current_holder() -> None:
    job = running_job(attempt=2)
    check_fence(job, AttemptRef("w1", 2, "p1"))
    check_fence(job, AttemptRef("w1"))  # document clients send only their executor id
    with pytest.raises(StaleAttempt):
        check_fence(job, AttemptRef("w1", 1))
    with pytest.raises(StaleAttempt):
        check_fence(job, AttemptRef("w2"))
    with pytest.raises(StaleAttempt):
        check_fence(dataclasses.replace(job, status=JobStatus.PENDING), AttemptRef("w1", 2))
    with pytest.raises(InvalidTransition):
        check_fence(dataclasses.replace(job, status=JobStatus.COMPLETED), AttemptRef("w1", 2))
    with pytest.raises(Forbidden):
        check_fence(job, AttemptRef("w1", 2, "someone-else"))


def test_reported_failure_retries_only_when_asked() -> None:
    job = running_job(max_retries=1)
    failed = finished(job, Outcome(JobStatus.FAILED, exit_code=3), NOW, POLICY)
    assert failed.status == JobStatus.FAILED and failed.exit_code == 3 and failed.finished_at == NOW
    retried = finished(job, Outcome(JobStatus.FAILED, retry=True), NOW, POLICY)
    assert retried.status == JobStatus.PENDING and retried.finished_at is None
    done = finished(job, Outcome(JobStatus.COMPLETED, exit_code=0, result={"k": 1}), NOW, POLICY)
    assert done.status == JobStatus.COMPLETED and done.result == {"k": 1}


def test_output_cap_keeps_the_head_and_flags_the_cut() -> None:
    assert fit(0, b"abc", 10) == (b"abc", False)
    assert fit(8, b"abcd", 10) == (b"ab", True)
    assert fit(10, b"x", 10) == (b"", True)


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        (JobSpec(), "command"),
        (JobSpec(command="  "), "command"),
        (JobSpec(command="x", binary_url="http://h/b"), "command"),
        (JobSpec(binary_url="ftp://h/b", binary_sha256="a" * 64), "binary_url"),
        (JobSpec(binary_url="http://h/b", binary_sha256="zz"), "binary_sha256"),
        (JobSpec(command="x", timeout=0), "timeout"),
        (JobSpec(command="x", timeout=86401), "timeout"),
        (JobSpec(command="x", env={"1BAD": "v"}), "env"),
        (JobSpec(command="x", env={"OK": "a\x00b"}), "env"),
        (JobSpec(command="x", type="has space"), "type"),
        (JobSpec(command="x", labels=("bad label",)), "labels"),
    ],
)
def test_spec_validation_names_the_field(spec: JobSpec, field: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        spec.validate()
    assert caught.value.context["field"] == field
