"""Issue 14's pure rules: which failures are retried, how retries and endings are said,
and how the CLI reads `--since`."""

from __future__ import annotations

from corral.cli.job_ids import parse_since
from corral.domain.outcomes import describe_outcome
from corral.domain.retry import RetryPolicy, describe_retries, retries_remaining, wants_retry
from corral.domain.states import JobStatus


def test_item4_retry_on_failure_covers_runs_that_failed_not_jobs_that_never_ran() -> None:
    assert wants_retry(asked=False, retry_on_failure=True, exit_code=3)
    assert wants_retry(asked=False, retry_on_failure=True, exit_code=143)  # a timeout
    assert not wants_retry(asked=False, retry_on_failure=True, exit_code=None)
    assert not wants_retry(asked=False, retry_on_failure=False, exit_code=3)
    assert wants_retry(asked=True, retry_on_failure=False, exit_code=None)


def test_item4_retries_are_said_as_they_apply() -> None:
    policy = RetryPolicy()
    assert describe_retries(0, True, 1, policy) == "no retries: the first attempt is final"
    lost_only = describe_retries(3, False, 1, policy)
    assert lost_only.startswith("retried only if its worker is lost (a failure is final)")
    assert "up to 3, 3 left" in lost_only
    on_failure = describe_retries(2, True, 2, policy)
    assert on_failure.startswith("retried if it fails or its worker is lost: up to 2, 1 left")
    assert "backoff 1 s doubling, at most 300 s, ±10%" in on_failure
    assert [retries_remaining(n, 2) for n in (0, 1, 2, 3, 4)] == [2, 2, 1, 0, 0]


def test_item4_an_ending_is_said_in_words() -> None:
    timed_out = describe_outcome(JobStatus.FAILED, 143, "timed out after 2 s")
    assert timed_out == "timed out after 2 s (exit 143)"
    assert describe_outcome(JobStatus.FAILED, 3, "exited with code 3") == "exited with code 3"
    assert describe_outcome(JobStatus.COMPLETED, 0, None) == "exited with code 0"
    assert describe_outcome(JobStatus.RUNNING, None, None) is None


def test_item5_since_takes_durations_and_iso_times() -> None:
    now = 1_700_000_000.0
    assert parse_since("2h", now) == "2023-11-14T20:13:20+00:00"
    assert parse_since("30m", now) == "2023-11-14T21:43:20+00:00"
    assert parse_since("2023-11-14T10:00:00") == "2023-11-14T10:00:00+00:00"
    assert parse_since("2023-11-14T12:00:00+02:00") == "2023-11-14T10:00:00+00:00"
