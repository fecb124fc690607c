"""Issue 14's everyday CLI, driven as a user would: the real `corral` against a real
server and worker (one of each for the module, plus a labelled worker some tests share).

Ids people can type, shell lines, logs in arrival order, retries and timeouts said
in words, resubmit, filters, names, draining and removing workers, output
directories and globs, and refused inputs.
"""

from __future__ import annotations

import json
import re
import sqlite3
import subprocess
import time
import zipfile
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from tests.acceptance.test_worker_e2e import Cluster, cluster, shared_worker
from tests.processes import CORRAL, HOST_VISIBLE, STARTUP, clean_env, poll

__all__ = ["cluster", "shared_worker"]  # module-scoped fixtures shared with the e2e tests

STAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z ")


@pytest.fixture(scope="module")
def later_worker(cluster: Cluster) -> Iterator[subprocess.Popen[bytes]]:
    """Started by the first test that needs it; takes the jobs labelled ``later``."""
    yield cluster.worker("later", "--labels", "later", "--grace", "1", *HOST_VISIBLE)


def _job_id(submitted: subprocess.CompletedProcess[str]) -> str:
    """``--wait`` prints the id on stderr first."""
    return submitted.stderr.splitlines()[0]


def _clone_job(db: Path, job_id: str, twin: str) -> None:
    """A second row sharing ``job_id``'s first characters, written into the server's own
    database (ids are random UUIDs: no API can make two share a prefix)."""
    with closing(sqlite3.connect(db, timeout=10)) as conn:
        columns = [r[1] for r in conn.execute("PRAGMA table_info(jobs)")]
        kept = ", ".join(c for c in columns if c not in ("seq", "id"))
        conn.execute(
            f"INSERT INTO jobs (id, {kept}) SELECT ?, {kept} FROM jobs WHERE id = ?",
            (twin, job_id),
        )
        conn.commit()


def test_item1_short_ids_fit_80_columns_and_unique_prefixes_resolve(
    cluster: Cluster, shared_worker: Any
) -> None:
    job_id = cluster.submit(command="echo " + "long " * 40, name="a job with a long name " * 4)
    cluster.wait_status(job_id, ("completed",))
    lines = cluster.cli("jobs", "--limit", "30").stdout.splitlines()
    assert lines[0].split()[:2] == ["ID", "STATUS"]
    assert all(len(line) <= 80 for line in lines), lines
    assert any(line.startswith(job_id[:8] + " ") for line in lines)
    status = cluster.cli("status", job_id[:8].upper())
    assert status.returncode == 0 and job_id in status.stdout
    watched = cluster.cli("watch", job_id[:8])
    assert (watched.returncode, watched.stdout) == (0, f"{job_id}\tcompleted\t0\n")
    short = cluster.cli("status", job_id[:5])
    assert short.returncode == 2 and "at least 8 characters" in short.stderr
    unknown = cluster.cli("cancel", "zzzzzzzz")
    assert unknown.returncode == 2 and "no job with id starting 'zzzzzzzz'" in unknown.stderr
    # The twin shares the first 8 characters and differs at the 10th, so 10 are unique
    # (a fixed "-0000" matched one job id in 16, whose second group starts with 0).
    tenth = "f" if job_id[9] != "f" else "e"
    twin = job_id[:8] + f"-{tenth}000-4000-8000-000000000000"
    _clone_job(cluster.data_dir / "corral.sqlite3", job_id, twin)
    ambiguous = cluster.cli("resubmit", job_id[:8])
    assert ambiguous.returncode == 2 and len(ambiguous.stderr.splitlines()) == 1
    assert "ambiguous" in ambiguous.stderr
    assert job_id in ambiguous.stderr and twin in ambiguous.stderr
    assert cluster.cli("status", job_id[:10]).returncode == 0  # more characters: unique


def test_item2_one_argument_is_a_shell_line_several_are_argv(
    cluster: Cluster, shared_worker: Any
) -> None:
    line = cluster.cli("submit", "--wait", 'echo "home=$HOME" | tr a-z A-Z')
    assert line.returncode == 0, line.stderr
    out = cluster.job(_job_id(line))["stdout"]
    assert out.startswith("HOME=") and out == out.upper()
    argv = cluster.cli("submit", "--wait", "--", "echo", "$HOME", "|", "tr")
    assert argv.returncode == 0, argv.stderr
    assert cluster.job(_job_id(argv))["stdout"] == "$HOME | tr\n"
    helped = cluster.cli("submit", "--help")
    assert "shell command line" in " ".join(helped.stdout.split())


def test_item3_logs_interleave_streams_with_tail_timestamps_and_stream(
    cluster: Cluster, shared_worker: Any
) -> None:
    script = "echo out1; sleep 0.4; echo err1 >&2; sleep 0.4; echo out2"
    job_id = _job_id(cluster.cli("submit", "--wait", script))
    assert cluster.cli("logs", job_id).stdout == "out1\nerr1\nout2\n"
    assert cluster.cli("logs", job_id, "--stream", "stderr").stdout == "err1\n"
    assert cluster.cli("logs", job_id, "--tail", "2").stdout == "err1\nout2\n"
    stamped = cluster.cli("logs", job_id, "--timestamps").stdout.splitlines()
    assert [STAMP.sub("", line) for line in stamped] == ["out1", "err1", "out2"]
    assert all(STAMP.match(line) for line in stamped)
    bad = cluster.cli("logs", job_id, "--stream", "both")
    assert bad.returncode == 2 and bad.stderr.startswith("error: ")


def test_item3_logs_follow_waits_for_a_job_that_has_not_started(
    cluster: Cluster, tmp_path: Path
) -> None:
    """Followed from before it starts, through a retry: each attempt's output once."""
    mark = tmp_path / "ran-once"
    flaky = f"if [ -e {mark} ]; then echo second; else echo first; touch {mark}; exit 4; fi"
    # No worker takes the label "waiting" until the follower is attached: the job waits.
    job_id = cluster.submit(command=flaky, labels=["waiting"], max_retries=1, retry_on_failure=True)
    env = clean_env(CORRAL_URL=cluster.url, CORRAL_TOKEN=cluster.admin)
    follower = subprocess.Popen(
        [*CORRAL, "logs", "--follow", job_id[:8]],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        time.sleep(1.0)
        assert follower.poll() is None and cluster.job(job_id)["status"] == "pending"
        waiting = cluster.worker("waiting", "--labels", "waiting", *HOST_VISIBLE)
        out, err = follower.communicate(timeout=60)
        waiting.terminate()  # it would take other tests' jobs too
        waiting.wait(30)
    finally:
        follower.kill()
    assert (follower.returncode, out) == (0, "first\nsecond\n"), err
    assert "a new attempt starts" in err


def test_item4_retries_rerun_a_failing_job_and_status_says_which_apply(
    cluster: Cluster, shared_worker: Any, tmp_path: Path
) -> None:
    mark = tmp_path / "ran-once"
    flaky = f"if [ -e {mark} ]; then echo second; else touch {mark}; exit 3; fi"
    done = cluster.cli("submit", "--wait", "--retries", "2", flaky)
    assert done.returncode == 0, done.stderr
    job = cluster.job(_job_id(done))
    assert (job["status"], job["attempt"], job["retry_on_failure"]) == ("completed", 2, True)
    assert [a["exit_code"] for a in job["attempts"]] == [3, 0]
    status = cluster.cli("status", job["id"]).stdout
    assert "retried if it fails or its worker is lost: up to 2, 1 left" in status
    plain = cluster.job(cluster.submit(command="exit 5"))["retries"]
    assert plain.startswith("retried only if its worker is lost (a failure is final)")
    none = cluster.job(cluster.submit(command="true", max_retries=0))["retries"]
    assert none == "no retries: the first attempt is final"
    with cluster.http() as http:
        body = {"command": f"rm {mark}; exit 7", "max_retries": 1, "retry_on_failure": True}
        api_id = http.post("/jobs", json=body).raise_for_status().json()["id"]
    ran = cluster.wait_status(api_id, ("failed",), 20)
    assert [a["exit_code"] for a in ran["attempts"]] == [7, 7]  # rerun once, with backoff


def test_item4_a_timeout_is_said_as_such(cluster: Cluster, shared_worker: Any) -> None:
    done = cluster.cli("submit", "--wait", "--timeout", "1", "sleep 30")
    assert done.returncode != 0
    assert "timed out after 1 s" in done.stderr
    lines = cluster.cli("status", _job_id(done)).stdout.splitlines()
    outcome = next(line for line in lines if line.startswith("outcome"))
    assert "timed out after 1 s" in outcome


def test_item5_resubmit_names_and_list_filters(cluster: Cluster, shared_worker: Any) -> None:
    job_id = _job_id(cluster.cli("submit", "--wait", "--name", "nightly report", "true"))
    again = cluster.cli("resubmit", job_id[:8])
    assert again.returncode == 0, again.stderr
    fresh = again.stdout.strip()
    assert fresh != job_id and cluster.job(fresh)["name"] == "nightly report"
    cluster.wait_status(fresh, ("completed",))
    parked = cluster.submit(command="true", labels=["nobody-has-it"])  # stays pending

    def ids(*args: str) -> set[str]:
        return {row["id"] for row in json.loads(cluster.cli("jobs", "--json", *args).stdout)}

    worker = cluster.job(job_id)["executor_id"]
    assert job_id in ids("--text", "NIGHTLY", "--worker", worker, "--since", "10m")
    assert ids("--text", "NIGHTLY") == {job_id, fresh}
    assert ids("--label", "nobody-has-it") == {parked}
    assert not ids("--since", "2999-01-01T00:00:00")
    listed = cluster.cli("jobs", "--text", "nightly").stdout.splitlines()
    assert len(listed) == 3 and all("nightly report" in line for line in listed[1:])
    with cluster.http() as http:
        http.delete(f"/jobs/{parked}").raise_for_status()


@pytest.mark.slow  # two workers start and one drains a running job: about 10 s
def test_item5_workers_drain_then_remove(cluster: Cluster, later_worker: Any) -> None:
    job_id = cluster.submit(command="sleep 2; echo finished", labels=["later"])
    cluster.wait_status(job_id, ("running",), 60)  # the worker starts with this test
    drained = cluster.cli("workers", "drain", "later")
    assert drained.returncode == 0, drained.stderr
    # Its running job ends normally, then the worker deregisters and exits on its own.
    later_worker.wait(30)
    assert later_worker.returncode == 0
    assert cluster.job(job_id)["stdout"] == "finished\n"
    assert "later" not in _worker_names(cluster)

    dead = cluster.worker("dead")
    poll(lambda: "dead" in _worker_names(cluster), STARTUP, "the worker to register")
    dead.kill()  # a machine gone for good: nobody deregisters it
    dead.wait(10)
    removed = cluster.cli("workers", "remove", "dead")
    assert removed.returncode == 0, removed.stderr
    assert "dead" not in _worker_names(cluster)
    gone = cluster.cli("workers", "remove", "dead")
    assert gone.returncode == 2 and "not found" in gone.stderr.lower()


@pytest.mark.slow  # a worker starts, is removed, and registers again: about 5 s
def test_a_running_worker_removed_by_an_admin_registers_again_whole(cluster: Cluster) -> None:
    """Its long-poll claim recreates a bare record at once (claims may come from executors
    that never registered); the heartbeat then tells it to register, so it comes back
    with its hostname, isolation and capacity instead of staying an empty record."""
    worker = cluster.worker("phoenix")
    try:
        poll(lambda: "phoenix" in _worker_names(cluster), STARTUP, "the worker to register")
        removed = cluster.cli("workers", "remove", "phoenix")
        assert removed.returncode == 0, removed.stderr

        def whole() -> dict[str, Any] | None:
            rows = json.loads(cluster.cli("workers", "--json").stdout)
            row = next((w for w in rows if w["executor_id"] == "phoenix"), None)
            return row if row and row.get("hostname") and row.get("isolation") else None

        back = poll(whole, 20, "the removed worker to register again")
        assert back["capacity"]["cpus"] > 0, back
    finally:
        worker.terminate()
        worker.wait(30)


def _worker_names(cluster: Cluster) -> set[str]:
    return {w["executor_id"] for w in json.loads(cluster.cli("workers", "--json").stdout)}


def test_item6_outputs_take_directories_and_globs_and_say_what_was_missed(
    cluster: Cluster, shared_worker: Any, tmp_path: Path
) -> None:
    script = "mkdir -p out/sub logs && echo a > out/a.txt && echo b > out/sub/b.txt && "
    script += "echo one > logs/1.log && echo two > logs/2.log && echo x > logs/skip.txt"
    args = ["-o", "out", "-o", "logs/*.log", "-o", "missing.txt", "-o", "nothing/*.csv"]
    done = cluster.cli("submit", "--wait", *args, script)
    assert done.returncode == 0, done.stderr
    job_id = _job_id(done)
    listed = cluster.cli("artifacts", job_id[:8])
    assert "not collected: missing output: missing.txt" in listed.stderr
    assert "not collected: missing output: nothing/*.csv" in listed.stderr
    saved = cluster.cli("artifacts", job_id, "--download", str(tmp_path))
    assert saved.returncode == 0, saved.stderr
    with zipfile.ZipFile(tmp_path / "out.zip") as zf:
        assert sorted(zf.namelist()) == ["out/a.txt", "out/sub/b.txt"]
    with zipfile.ZipFile(tmp_path / "logs" / "*.log.zip") as zf:
        assert sorted(zf.namelist()) == ["logs/1.log", "logs/2.log"]
        assert zf.read("logs/2.log") == b"two\n"
    status = cluster.cli("status", job_id).stdout
    assert "not collected  missing output: missing.txt" in status


def test_item6_a_non_zip_input_is_refused_before_uploading(tmp_path: Path) -> None:
    text = tmp_path / "data.zip"
    text.write_text("not a zip at all")
    # No server at this address: the refusal comes before anything is sent.
    env = clean_env(CORRAL_URL="http://127.0.0.1:9", CORRAL_TOKEN="crl_unused")
    refused = subprocess.run(
        [*CORRAL, "submit", "--input", str(text), "true"],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert refused.returncode == 2 and "not a zip archive" in refused.stderr
