"""The executor side of the native API over real HTTP.

Claim (single, ``n``, labels, priority order, long-poll), heartbeat, complete,
fail (and retry), batched results, release and fencing of stale attempts.
Output streaming and executors are in ``test_native_output.py`` and
``test_native_fleet.py``.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.test_native_api import (
    API,
    ISO_Z,
    assert_error,
    claim,
    claim_one,
    details,
    submit,
)
from tests.live import LiveServer, run_server


def stale_first_attempt(http: httpx.Client) -> tuple[str, dict[str, Any]]:
    """A job whose first attempt (by worker-1) was released and re-claimed as attempt 2."""
    job_id = submit(http)["id"]
    first = claim_one(http, "worker-1")
    released = http.post(
        f"{API}/jobs/{job_id}/release", json={"executor_id": "worker-1", "attempt": 1}
    )
    assert released.status_code == 200, released.text
    second = claim_one(http, "worker-1")
    assert (first["attempt"], second["attempt"]) == (1, 2)
    return job_id, second


# --- claim ------------------------------------------------------------------------------


def test_claim_returns_one_job_object_with_its_lease(live_server: LiveServer) -> None:
    with live_server.client() as http:
        job_id = submit(http, type="render", arguments=["-v"])["id"]
        answer = claim(http, "worker-1-abc123", executor_ip="192.168.1.100")
        assert answer.status_code == 200, answer.text
        job = answer.json()
        assert isinstance(job, dict)
        assert job["id"] == job_id
        assert job["status"] == "running"
        assert job["executor_id"] == "worker-1-abc123"
        assert job["type"] == "render"
        assert job["arguments"] == ["-v"]
        assert job["binary_url"] == "https://example.com/binary"
        assert job["attempt"] == 1
        assert job["stdout"] == "" and job["stderr"] == ""
        assert ISO_Z.match(job["started_at"]) and ISO_Z.match(job["lease_expires_at"])
        stored = details(http, job_id)
    assert stored["status"] == "running"
    [attempt] = stored["attempts"]
    assert attempt["executor_id"] == "worker-1-abc123"
    assert attempt["executor_ip"] == "192.168.1.100"
    assert attempt["status"] == "running"
    assert attempt["attempt"] == 1
    assert ISO_Z.match(attempt["started_at"]) and attempt["ended_at"] is None
    assert stored["lease_expires_at"] > stored["started_at"]


def test_claim_without_jobs_is_204_with_no_body(live_server: LiveServer) -> None:
    with live_server.client() as http:
        answer = claim(http)
        assert answer.status_code == 204
        assert answer.content == b""
        with_n = claim(http, n=5)
    assert with_n.status_code == 204
    assert with_n.content == b""


def test_a_job_is_claimed_once(live_server: LiveServer) -> None:
    with live_server.client() as http:
        submit(http)
        assert claim(http, "worker-1").status_code == 200
        assert claim(http, "worker-2").status_code == 204


def test_claim_with_n_returns_an_array(live_server: LiveServer) -> None:
    with live_server.client() as http:
        ids = [submit(http)["id"] for _ in range(3)]
        first = claim(http, n=2)
        assert first.status_code == 200
        batch = first.json()
        assert isinstance(batch, list) and [j["id"] for j in batch] == ids[:2]
        assert all(j["status"] == "running" and j["attempt"] == 1 for j in batch)
        rest = claim(http, n=5)
        assert rest.status_code == 200
        assert [j["id"] for j in rest.json()] == ids[2:]
        one = claim(http, n=1)
    assert one.status_code == 204


def test_claim_n_1_is_still_an_array(live_server: LiveServer) -> None:
    with live_server.client() as http:
        job_id = submit(http)["id"]
        answer = claim(http, n=1)
    assert answer.status_code == 200
    assert [j["id"] for j in answer.json()] == [job_id]


def test_claim_follows_priority_then_age(live_server: LiveServer) -> None:
    with live_server.client() as http:
        be = submit(http, priority="best_effort")["id"]
        bg1 = submit(http, priority="background")["id"]
        fg1 = submit(http, priority="foreground")["id"]
        bg2 = submit(http, priority="normal")["id"]
        fg2 = submit(http, priority="high")["id"]
        be2 = submit(http, priority="low")["id"]
        order = [claim_one(http)["id"] for _ in range(6)]
        assert claim(http).status_code == 204
    assert order == [fg1, fg2, bg1, bg2, be, be2]


def test_claim_n_follows_priority_order(live_server: LiveServer) -> None:
    with live_server.client() as http:
        be = submit(http, priority="best_effort")["id"]
        bg = submit(http, priority="background")["id"]
        fg = submit(http, priority="foreground")["id"]
        answer = claim(http, n=3)
    assert [j["id"] for j in answer.json()] == [fg, bg, be]


def test_labels_offer_a_job_only_to_executors_having_them_all(live_server: LiveServer) -> None:
    with live_server.client() as http:
        gpu = submit(http, labels=["gpu", "linux"], priority="foreground")["id"]
        plain = submit(http)["id"]
        # an executor without the labels skips the labelled job and gets the plain one
        assert claim_one(http, "no-labels")["id"] == plain
        assert claim(http, "cpu", labels=["linux", "cpu"]).status_code == 204
        assert claim(http, "half", labels=["gpu"]).status_code == 204
        job = claim_one(http, "full", labels=["gpu", "linux", "avx2"])
    assert job["id"] == gpu
    assert job["labels"] == ["gpu", "linux"]


def test_labelled_executor_takes_unlabelled_jobs(live_server: LiveServer) -> None:
    with live_server.client() as http:
        job_id = submit(http)["id"]
        assert claim_one(http, "w", labels=["gpu"])["id"] == job_id


def test_long_poll_returns_as_soon_as_a_job_is_submitted(live_server: LiveServer) -> None:
    result: dict[str, Any] = {}

    def claimer() -> None:
        with live_server.client() as http:
            started = time.monotonic()
            answer = claim(http, "poller", wait=30)
            result["elapsed"] = time.monotonic() - started
            result["answer"] = answer

    thread = threading.Thread(target=claimer)
    thread.start()
    with live_server.client() as http:
        # the claim registers its executor before it starts waiting
        deadline = time.monotonic() + 10
        while not any(e["executor_id"] == "poller" for e in http.get(f"{API}/executors").json()):
            assert time.monotonic() < deadline, "claimer never reached the server"
            time.sleep(0.01)
        submitted_at = time.monotonic()
        job_id = submit(http)["id"]
    thread.join(timeout=40)
    assert not thread.is_alive()
    answer = result["answer"]
    assert answer.status_code == 200, answer.text
    assert answer.json()["id"] == job_id
    assert result["elapsed"] < 10, result["elapsed"]  # far below the 30 s wait
    assert time.monotonic() - submitted_at < 10


def test_long_poll_with_n_wakes_up_too(live_server: LiveServer) -> None:
    result: dict[str, httpx.Response] = {}

    def claimer() -> None:
        with live_server.client() as http:
            result["answer"] = claim(http, "poller", wait=30, n=10)

    thread = threading.Thread(target=claimer)
    started = time.monotonic()
    thread.start()
    with live_server.client() as http:
        deadline = time.monotonic() + 10
        while not any(e["executor_id"] == "poller" for e in http.get(f"{API}/executors").json()):
            assert time.monotonic() < deadline
            time.sleep(0.01)
        job_id = submit(http)["id"]
    thread.join(timeout=40)
    assert time.monotonic() - started < 10
    assert [j["id"] for j in result["answer"].json()] == [job_id]


def test_long_poll_times_out_with_204(live_server: LiveServer) -> None:
    with live_server.client() as http:
        started = time.monotonic()
        answer = claim(http, wait=0.5)
    elapsed = time.monotonic() - started
    assert answer.status_code == 204
    assert 0.4 <= elapsed < 5


# --- heartbeat ----------------------------------------------------------------------------


def test_heartbeat_renews_the_lease(live_server: LiveServer) -> None:
    with live_server.client() as http:
        job_id = submit(http)["id"]
        leased = claim_one(http)
        answer = http.put(
            f"{API}/jobs/{job_id}/heartbeat", json={"executor_id": "worker-1", "attempt": 1}
        )
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert {"id", "status", "lease_expires_at", "cancel_requested"} <= set(body)
        assert body["id"] == job_id and body["status"] == "running"
        assert body["cancel_requested"] is False
        assert ISO_Z.match(body["lease_expires_at"])
        assert body["lease_expires_at"] >= leased["lease_expires_at"]
        # the document's clients send no attempt: the executor id is the fence
        bare = http.put(f"{API}/jobs/{job_id}/heartbeat", json={"executor_id": "worker-1"})
    assert bare.status_code == 200, bare.text


def test_heartbeat_for_unknown_job_is_404(live_server: LiveServer) -> None:
    with live_server.client() as http:
        answer = http.put(f"{API}/jobs/nope/heartbeat", json={"executor_id": "worker-1"})
    assert_error(answer, 404)


@pytest.mark.parametrize("outcome", ["complete", "fail"])
def test_heartbeat_for_finished_job_is_404(live_server: LiveServer, outcome: str) -> None:
    with live_server.client() as http:
        job_id = submit(http)["id"]
        claim_one(http)
        done = http.put(f"{API}/jobs/{job_id}/{outcome}", json={"executor_id": "worker-1"})
        assert done.status_code == 200
        answer = http.put(
            f"{API}/jobs/{job_id}/heartbeat", json={"executor_id": "worker-1", "attempt": 1}
        )
    assert_error(answer, 404)


def test_heartbeat_for_never_claimed_job_is_404(live_server: LiveServer) -> None:
    """The document: 404 when the job is not running; no attempt of it ever held a lease."""
    with live_server.client() as http:
        job_id = submit(http)["id"]
        answer = http.put(f"{API}/jobs/{job_id}/heartbeat", json={"executor_id": "worker-1"})
    assert_error(answer, 404)


def test_heartbeat_from_stale_attempt_or_other_executor_is_409(live_server: LiveServer) -> None:
    with live_server.client() as http:
        job_id, current = stale_first_attempt(http)
        stale = http.put(
            f"{API}/jobs/{job_id}/heartbeat", json={"executor_id": "worker-1", "attempt": 1}
        )
        assert_error(stale, 409)
        other = http.put(f"{API}/jobs/{job_id}/heartbeat", json={"executor_id": "worker-2"})
        assert_error(other, 409)
        after = details(http, job_id)
    assert after["lease_expires_at"] == current["lease_expires_at"]  # nothing changed


# --- complete and fail ------------------------------------------------------------------------


def test_complete_records_output_and_exit_code(live_server: LiveServer) -> None:
    with live_server.client() as http:
        job_id = submit(http)["id"]
        claim_one(http, "worker-1", executor_ip="10.0.0.7")
        answer = http.put(
            f"{API}/jobs/{job_id}/complete",
            json={
                "executor_id": "worker-1",
                "attempt": 1,
                "stdout": "Job output...",
                "stderr": "warn",
                "exit_code": 0,
                "result": {"rows": 3},
            },
        )
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["id"] == job_id and body["status"] == "completed"
        assert body["exit_code"] == 0
        job = details(http, job_id)
    assert job["status"] == "completed"
    assert job["stdout"] == "Job output..." and job["stderr"] == "warn"
    assert job["exit_code"] == 0
    assert job["result"] == {"rows": 3}
    assert ISO_Z.match(job["completed_at"]) and job["completed_at"] >= job["started_at"]
    assert job["lease_expires_at"] is None
    [attempt] = job["attempts"]
    assert attempt["status"] == "completed" and attempt["exit_code"] == 0
    assert attempt["executor_id"] == "worker-1" and attempt["executor_ip"] == "10.0.0.7"
    assert ISO_Z.match(attempt["ended_at"])


def test_fail_records_error_and_is_final_by_default(live_server: LiveServer) -> None:
    with live_server.client() as http:
        job_id = submit(http)["id"]
        claim_one(http)
        answer = http.put(
            f"{API}/jobs/{job_id}/fail",
            json={
                "executor_id": "worker-1",
                "stdout": "Partial output...",
                "stderr": "Error messages...",
                "exit_code": 1,
                "error_message": "Binary execution failed",
            },
        )
        assert answer.status_code == 200, answer.text
        assert answer.json()["status"] == "failed"
        job = details(http, job_id)
        assert claim(http).status_code == 204
    assert job["status"] == "failed"
    assert (job["stdout"], job["stderr"]) == ("Partial output...", "Error messages...")
    assert job["exit_code"] == 1
    assert job["error_message"] == "Binary execution failed"
    [attempt] = job["attempts"]
    assert attempt["status"] == "failed"
    assert attempt["error_message"] == "Binary execution failed"


def test_fail_with_retry_requeues_for_another_attempt(live_server: LiveServer) -> None:
    with live_server.client() as http:
        job_id = submit(http, max_retries=1)["id"]
        claim_one(http)
        answer = http.put(
            f"{API}/jobs/{job_id}/fail",
            json={
                "executor_id": "worker-1",
                "attempt": 1,
                "exit_code": 2,
                "retry": True,
                "error_message": "flaky",
            },
        )
        assert answer.status_code == 200, answer.text
        assert answer.json()["status"] == "pending"
        assert details(http, job_id)["status"] == "pending"
        # the retry is due after a short backoff; a long-poll picks it up then
        again = claim(http, "worker-2", wait=15)
        assert again.status_code == 200, again.text
        assert again.json()["id"] == job_id and again.json()["attempt"] == 2
        # the last allowed attempt asks for a retry too, but none remain
        last = http.put(
            f"{API}/jobs/{job_id}/fail",
            json={"executor_id": "worker-2", "attempt": 2, "retry": True},
        )
        assert last.status_code == 200
        assert last.json()["status"] == "failed"
        job = details(http, job_id)
    assert [a["status"] for a in job["attempts"]] == ["failed", "failed"]
    assert [a["executor_id"] for a in job["attempts"]] == ["worker-1", "worker-2"]
    assert job["attempts"][0]["error_message"] == "flaky"


def test_fail_with_retry_and_no_retries_is_final(live_server: LiveServer) -> None:
    with live_server.client() as http:
        job_id = submit(http, max_retries=0)["id"]
        claim_one(http)
        answer = http.put(
            f"{API}/jobs/{job_id}/fail", json={"executor_id": "worker-1", "retry": True}
        )
    assert answer.status_code == 200
    assert answer.json()["status"] == "failed"


@pytest.mark.parametrize("outcome", ["complete", "fail"])
def test_report_on_unknown_job_is_404(live_server: LiveServer, outcome: str) -> None:
    with live_server.client() as http:
        answer = http.put(f"{API}/jobs/missing/{outcome}", json={"executor_id": "worker-1"})
    assert_error(answer, 404)


@pytest.mark.parametrize("first", ["complete", "fail"])
@pytest.mark.parametrize("second", ["complete", "fail"])
def test_reporting_a_finished_job_again_is_400(
    live_server: LiveServer, first: str, second: str
) -> None:
    with live_server.client() as http:
        job_id = submit(http)["id"]
        claim_one(http)
        call = {"executor_id": "worker-1", "attempt": 1, "exit_code": 0, "stdout": "one"}
        assert http.put(f"{API}/jobs/{job_id}/{first}", json=call).status_code == 200
        assert_error(http.put(f"{API}/jobs/{job_id}/{second}", json={**call, "stdout": "two"}), 400)
        job = details(http, job_id)
    assert job["status"] == ("completed" if first == "complete" else "failed")
    assert job["stdout"] == "one"


@pytest.mark.parametrize("outcome", ["complete", "fail"])
def test_report_from_stale_attempt_is_409_and_changes_nothing(
    live_server: LiveServer, outcome: str
) -> None:
    with live_server.client() as http:
        job_id, _ = stale_first_attempt(http)
        answer = http.put(
            f"{API}/jobs/{job_id}/{outcome}",
            json={"executor_id": "worker-1", "attempt": 1, "exit_code": 0, "stdout": "late"},
        )
        assert_error(answer, 409)
        job = details(http, job_id)
    assert job["status"] == "running" and job["attempt"] == 2
    assert job["stdout"] == ""


@pytest.mark.parametrize("outcome", ["complete", "fail"])
def test_report_from_another_executor_is_409(live_server: LiveServer, outcome: str) -> None:
    with live_server.client() as http:
        job_id = submit(http)["id"]
        claim_one(http, "worker-1")
        answer = http.put(
            f"{API}/jobs/{job_id}/{outcome}", json={"executor_id": "worker-2", "exit_code": 0}
        )
        assert_error(answer, 409)
        assert details(http, job_id)["status"] == "running"


@pytest.mark.parametrize("outcome", ["complete", "fail"])
def test_report_on_a_cancelled_job_is_refused(live_server: LiveServer, outcome: str) -> None:
    with live_server.client() as http:
        job_id = submit(http)["id"]
        assert http.delete(f"{API}/jobs/{job_id}").status_code == 200
        answer = http.put(f"{API}/jobs/{job_id}/{outcome}", json={"executor_id": "worker-1"})
        assert answer.status_code in (400, 409), answer.text
        assert_error(answer, answer.status_code)
        assert details(http, job_id)["status"] == "cancelled"


# --- batched results ------------------------------------------------------------------------


def test_results_apply_good_reports_and_refuse_stale_ones(live_server: LiveServer) -> None:
    with live_server.client() as http:
        stale_id, _ = stale_first_attempt(http)
        ok_id = submit(http)["id"]
        failed_id = submit(http)["id"]
        claim_one(http, "worker-3")
        claim_one(http, "worker-3")
        reports = [
            {
                "job_id": ok_id,
                "executor_id": "worker-3",
                "attempt": 1,
                "status": "completed",
                "exit_code": 0,
                "result": [1, 2],
            },
            {
                "job_id": stale_id,
                "executor_id": "worker-1",
                "attempt": 1,
                "status": "completed",
                "exit_code": 0,
            },
            {
                "job_id": failed_id,
                "executor_id": "worker-3",
                "attempt": 1,
                "status": "failed",
                "exit_code": 3,
                "error_message": "boom",
            },
            {"job_id": "missing", "executor_id": "worker-3", "attempt": 1, "status": "completed"},
            {"job_id": ok_id, "executor_id": "worker-3", "attempt": 1, "status": "completed"},
        ]
        answer = http.post(f"{API}/jobs/results", json=reports)
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert [r["job_id"] for r in body] == [r["job_id"] for r in reports]
        assert body[0] == {"job_id": ok_id, "ok": True, "status": "completed"}
        assert body[2] == {"job_id": failed_id, "ok": True, "status": "failed"}
        assert (body[1]["ok"], body[1]["code"]) == (False, 409)
        assert (body[3]["ok"], body[3]["code"]) == (False, 404)
        assert (body[4]["ok"], body[4]["code"]) == (False, 400)
        assert all(isinstance(r["error"], str) and r["error"] for r in (body[1], body[3]))
        ok, failed, stale = (details(http, i) for i in (ok_id, failed_id, stale_id))
    assert (ok["status"], ok["exit_code"], ok["result"]) == ("completed", 0, [1, 2])
    assert (failed["status"], failed["error_message"]) == ("failed", "boom")
    assert (stale["status"], stale["attempt"]) == ("running", 2)


def test_results_with_retry_requeue(live_server: LiveServer) -> None:
    with live_server.client() as http:
        job_id = submit(http)["id"]
        claim_one(http)
        answer = http.post(
            f"{API}/jobs/results",
            json=[
                {
                    "job_id": job_id,
                    "executor_id": "worker-1",
                    "attempt": 1,
                    "status": "failed",
                    "retry": True,
                }
            ],
        )
        assert answer.json() == [{"job_id": job_id, "ok": True, "status": "pending"}]


def test_results_empty_list_is_empty(live_server: LiveServer) -> None:
    with live_server.client() as http:
        answer = http.post(f"{API}/jobs/results", json=[])
    assert answer.status_code == 200
    assert answer.json() == []


def test_results_need_the_execute_role(live_server: LiveServer) -> None:
    with live_server.client() as admin:
        job_id = submit(admin)["id"]
        claim_one(admin)
    report = [{"job_id": job_id, "executor_id": "worker-1", "attempt": 1, "status": "completed"}]
    with live_server.client(live_server.token("submitter")) as http:
        assert_error(http.post(f"{API}/jobs/results", json=report), 403)
    with live_server.client() as admin:
        assert details(admin, job_id)["status"] == "running"


# --- release -------------------------------------------------------------------------------


def test_release_hands_the_job_back_without_spending_a_retry(live_server: LiveServer) -> None:
    with live_server.client() as http:
        job_id = submit(http, max_retries=1)["id"]
        claim_one(http, "draining")
        answer = http.post(
            f"{API}/jobs/{job_id}/release", json={"executor_id": "draining", "attempt": 1}
        )
        assert answer.status_code == 200, answer.text
        assert answer.json()["status"] == "pending"
        assert details(http, job_id)["status"] == "pending"
        again = claim_one(http, "fresh")  # no backoff after a release
        assert (again["id"], again["attempt"]) == (job_id, 2)
        # attempt 2 is the first real run, so with max_retries=1 one retry is still left
        retried = http.put(
            f"{API}/jobs/{job_id}/fail", json={"executor_id": "fresh", "attempt": 2, "retry": True}
        )
        assert retried.status_code == 200
        assert retried.json()["status"] == "pending"
        job = details(http, job_id)
    assert [a["status"] for a in job["attempts"]] == ["released", "failed"]


def test_item9_releasing_a_job_with_a_cancel_requested_cancels_it(
    live_server: LiveServer,
) -> None:
    with live_server.client() as http:
        job_id = submit(http)["id"]
        claim_one(http, "draining")
        assert http.delete(f"{API}/jobs/{job_id}").json()["cancel_requested"] is True
        answer = http.post(
            f"{API}/jobs/{job_id}/release", json={"executor_id": "draining", "attempt": 1}
        )
        assert answer.status_code == 200, answer.text
        assert answer.json()["status"] == "cancelled"
        assert claim(http, "fresh").status_code == 204  # the cancelled job never runs
        job = details(http, job_id)
    assert job["status"] == "cancelled"
    assert [a["status"] for a in job["attempts"]] == ["cancelled"]


def test_release_errors(live_server: LiveServer) -> None:
    with live_server.client() as http:
        assert_error(
            http.post(f"{API}/jobs/nope/release", json={"executor_id": "w", "attempt": 1}), 404
        )
        job_id = submit(http)["id"]
        claim_one(http, "holder")
        other = http.post(
            f"{API}/jobs/{job_id}/release", json={"executor_id": "other", "attempt": 1}
        )
        assert_error(other, 409)
        wrong_attempt = http.post(
            f"{API}/jobs/{job_id}/release", json={"executor_id": "holder", "attempt": 2}
        )
        assert_error(wrong_attempt, 409)
        assert details(http, job_id)["status"] == "running"
        http.put(f"{API}/jobs/{job_id}/complete", json={"executor_id": "holder"})
        finished = http.post(
            f"{API}/jobs/{job_id}/release", json={"executor_id": "holder", "attempt": 1}
        )
        assert_error(finished, 400)
        assert details(http, job_id)["status"] == "completed"


@pytest.mark.parametrize(("outcome", "status"), [("complete", "completed"), ("fail", "failed")])
def test_report_answers_the_new_state(live_server: LiveServer, outcome: str, status: str) -> None:
    """docs/native-api.md: complete and fail answer the job's new state, not its details."""
    with live_server.client() as http:
        job_id = submit(http, type="render")["id"]
        claim_one(http)
        answer = http.put(
            f"{API}/jobs/{job_id}/{outcome}",
            json={
                "executor_id": "worker-1",
                "attempt": 1,
                "stdout": "out",
                "exit_code": 3,
                "error_message": "boom",
            },
        )
        assert answer.status_code == 200, answer.text
        shown = details(http, job_id)
    body = answer.json()
    assert set(body) == {
        "id",
        "status",
        "attempt",
        "lease_expires_at",
        "cancel_requested",
        "exit_code",
        "error_message",
    }
    assert (body["id"], body["status"], body["attempt"], body["exit_code"]) == (
        job_id,
        status,
        1,
        3,
    )
    assert body["lease_expires_at"] is None
    assert (shown["status"], shown["stdout"]) == (status, "out")


def test_concurrent_claimers_never_share_a_job(live_server: LiveServer) -> None:
    with live_server.client() as http:
        response = http.post(f"{API}/jobs/bulk", json=[{"command": "true"}] * 60)
        ids = {row["id"] for row in response.json()}
    claimed: dict[str, list[str]] = {}

    def claimer(name: str) -> None:
        mine = claimed.setdefault(name, [])
        with live_server.client() as http:
            while True:
                answer = claim(http, name, n=3)
                if answer.status_code == 204:
                    return
                mine.extend(j["id"] for j in answer.json())

    threads = [threading.Thread(target=claimer, args=(f"w{i}",)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    every = [job_id for got in claimed.values() for job_id in got]
    assert len(every) == len(set(every)) == 60
    assert set(every) == ids
    with live_server.client() as http:
        listed = http.get(f"{API}/jobs", params={"limit": 100}).json()
    owners = {j["id"]: j["executor_id"] for j in listed}
    for name, got in claimed.items():
        assert all(owners[job_id] == name for job_id in got)


def test_a_lost_lease_is_retried_and_the_old_attempt_fenced_off(tmp_path: Path) -> None:
    with (
        run_server(tmp_path / "data", lease_grace=0.0, reaper_interval=0.05) as server,
        server.client() as http,
    ):
        job_id = submit(http, lease_seconds=1, max_retries=1)["id"]
        claim_one(http, "silent")
        # the executor goes silent: the reaper requeues the job once its lease runs out
        deadline = time.monotonic() + 15
        while (job := details(http, job_id))["status"] == "running":
            assert time.monotonic() < deadline, job
            time.sleep(0.05)
        assert job["status"] == "pending"
        assert job["attempts"][0]["status"] == "lost"
        again = claim(http, "healthy", wait=15)
        assert again.status_code == 200, again.text
        assert (again.json()["id"], again.json()["attempt"]) == (job_id, 2)
        # the silent executor wakes up: every call of its attempt is refused
        old = {"executor_id": "silent", "attempt": 1, "exit_code": 0}
        assert_error(http.put(f"{API}/jobs/{job_id}/complete", json=old), 409)
        assert_error(http.put(f"{API}/jobs/{job_id}/heartbeat", json=old), 409)
        done = http.put(
            f"{API}/jobs/{job_id}/complete", json={"executor_id": "healthy", "attempt": 2}
        )
        assert done.status_code == 200
        job = details(http, job_id)
    assert job["status"] == "completed"
    assert [a["status"] for a in job["attempts"]] == ["lost", "completed"]


def test_runnable_only_skips_jobs_with_nothing_to_execute(live_server: LiveServer) -> None:
    with live_server.client() as http:
        agent_job = http.post(
            f"{API}/jobs",
            json={"instructions": "summarise the logs", "type": "agent", "priority": "foreground"},
        )
        assert agent_job.status_code == 201, agent_job.text
        shell = submit(http, command="true", binary_url=None, binary_sha256=None)["id"]
        assert claim_one(http, "corral-worker", runnable_only=True)["id"] == shell
        assert claim(http, "corral-worker", runnable_only=True).status_code == 204
        external = claim_one(http, "external-agent")
    assert external["id"] == agent_job.json()["id"]
    assert external["instructions"] == "summarise the logs"


def test_complete_output_is_truncated_to_1_mib_by_default(live_server: LiveServer) -> None:
    mib = 1 << 20
    with live_server.client() as http:
        job_id = submit(http)["id"]
        claim_one(http)
        answer = http.put(
            f"{API}/jobs/{job_id}/complete",
            json={"executor_id": "worker-1", "stdout": "o" * (mib + 10), "stderr": "e" * 10},
        )
        assert answer.status_code == 200, answer.text
        job = details(http, job_id)
    assert len(job["stdout"]) == mib and job["stdout_truncated"] is True
    assert job["stderr"] == "e" * 10 and job["stderr_truncated"] is False


def test_a_long_poll_whose_caller_hung_up_leases_nothing(live_server: LiveServer) -> None:
    """A claimer that gave up must not strand the next job in a lease nobody holds."""
    with live_server.client() as http:
        with pytest.raises(httpx.ReadTimeout):
            http.post(
                f"{API}/jobs/claim", json={"executor_id": "gone", "n": 1, "wait": 30}, timeout=0.3
            )
        job_id = submit(http)["id"]
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:  # the abandoned poll wakes, checks, and gives up
            shown = details(http, job_id)
            assert shown["status"] == "pending", shown
            assert shown["attempts"] == [] or shown["attempts"][-1]["status"] == "released"
            if claim(http, "present").status_code == 200:
                break
        claimed = details(http, job_id)
    assert claimed["executor_id"] == "present"
