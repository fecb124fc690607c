"""Many hosts, one PostgreSQL, a load balancer, and faults under load.

Eight network namespaces on a private bridge (``tests/netns.py``) stand in for the
machines of a real deployment (``tests/multihost.py``): PostgreSQL, three
``corral server`` replicas, HAProxy with ``deploy/haproxy.cfg``, two hosts with two
``corral worker``s each, and the client. The client submits 2,000 jobs through the
load balancer as a careful client does: each with its own ``Idempotency-Key``, sent
again with the same key after a connection error or a 5xx. Meanwhile one replica is
killed with SIGKILL and started again, and PostgreSQL is restarted.

What must hold: every submission is answered 201 in the end, each key made one job
(a key holds across replicas), and every such job completed exactly once: each run
appends "id attempt" to a ledger on its worker host, so an id found twice ran twice,
an id missing never ran, and a job whose recorded attempt (as PostgreSQL stores it)
is not the one that ran took a result from a stale attempt. A token minted on one
replica works on every other, and live output (server-sent events) and a WebSocket
pass through the balancer. The figures (jobs/s through the balancer, time to recover
from each fault, CPU per job) are printed, "multi-host figures" in pytest's output.
"""

from __future__ import annotations

import asyncio
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from websockets.sync.client import connect

from tests import netns
from tests.multihost import (
    ADMIN_EMAIL,
    ADMIN_PASSWORD,
    API,
    HAPROXY,
    WORKER_HOSTS,
    Fleet,
    lb_states,
    tail,
)
from tests.multihost_load import JOBS, LoadRun, run_load

pytestmark = [pytest.mark.slow]


@pytest.fixture
def fleet(tmp_path: Path) -> Iterator[Fleet]:
    why = netns.unavailable()
    if why:
        pytest.skip(f"the multi-host test makes its hosts with network namespaces: {why}")
    if HAPROXY is None:
        pytest.fail("HAProxy is not installed (apt-get install haproxy; make setup-tests does)")
    fleet = Fleet(tmp_path)
    try:
        # This thread speaks from the client host from here to the end of the test, so
        # no request of the test leaves the private network.
        with fleet.client.inside():
            fleet.start()
            yield fleet
    finally:
        fleet.close()


def _ledger(fleet: Fleet) -> list[tuple[str, int, str]]:
    """Every run the worker hosts recorded: (job id, attempt, host)."""
    runs = []
    for host in WORKER_HOSTS:
        for line in fleet.ledger(host).read_text().splitlines():
            job_id, attempt = line.split()
            runs.append((job_id, int(attempt), host))
    return runs


# Each job as stored, with the attempts recorded completed: one query instead of 2,000
# requests (the API's view is checked too, in pages, by _check_completed_listed).
STORED = """
SELECT j.id, j.status, j.attempt,
       coalesce(array_agg(a.number ORDER BY a.number)
                FILTER (WHERE a.status = 'completed'), '{}') AS completed
FROM jobs j LEFT JOIN attempts a ON a.job_id = j.id
GROUP BY j.seq  -- the primary key: the other columns of j follow from it
"""


def _stored_jobs(fleet: Fleet) -> dict[str, tuple[str, int, list[int]]]:
    """id -> (status, current attempt, attempts recorded completed), from PostgreSQL."""
    assert fleet.pg is not None
    dsn = fleet.pg.dsn("corral")

    async def read() -> list[Any]:
        conn = await asyncpg.connect(dsn)
        try:
            return list(await conn.fetch(STORED))
        finally:
            await conn.close()

    return {r["id"]: (r["status"], r["attempt"], list(r["completed"])) for r in asyncio.run(read())}


def _check_completed_listed(fleet: Fleet, acknowledged: set[str]) -> None:
    """The API lists every acknowledged job as completed."""
    listed: set[str] = set()
    with fleet.http() as http:
        while True:
            params: dict[str, str | int] = {"status": "completed", "limit": 1000}
            params["offset"] = len(listed)
            page = http.get(f"{API}/jobs", params=params).raise_for_status().json()
            listed |= {row["id"] for row in page}
            if len(page) < 1000:
                break
    assert acknowledged <= listed, f"not listed completed: {sorted(acknowledged - listed)[:5]}"


def _check_job(job_id: str, stored: tuple[str, int, list[int]], ran: list[int]) -> str | None:
    """What is wrong with one acknowledged job, given the attempts that really ran."""
    status, last, completed = stored
    if status != "completed":
        return f"{job_id} ended {status}"
    if len(ran) != 1:
        return f"{job_id} ran {len(ran)} times (attempts {ran})"
    if completed != [last] or ran != [last]:
        return f"{job_id}: completed attempts {completed}, last {last}, ran {ran}"
    return None


def _check_every_job(fleet: Fleet, run: LoadRun) -> None:
    acknowledged = set(run.ids.values())
    runs = _ledger(fleet)
    counts = Counter(job_id for job_id, _, _ in runs)
    twice = sorted(i for i, n in counts.items() if n > 1)
    assert not twice, f"{len(twice)} jobs ran more than once, e.g. {twice[:5]}"
    missing = sorted(acknowledged - set(counts))
    assert not missing, f"{len(missing)} acknowledged jobs never ran, e.g. {missing[:5]}"
    unknown = sorted(set(counts) - acknowledged)
    assert not unknown, f"jobs ran that no submission was answered with: {unknown[:5]}"
    attempts: dict[str, list[int]] = {}
    for job_id, attempt, _ in runs:
        attempts.setdefault(job_id, []).append(attempt)
    stored = _stored_jobs(fleet)
    assert set(stored) == acknowledged, (
        f"stored jobs differ from those acknowledged: {sorted(set(stored) ^ acknowledged)[:5]}"
    )
    run.figures.later_attempts = sum(1 for _, last, _ in stored.values() if last > 1)
    problems = [p for i in sorted(acknowledged) if (p := _check_job(i, stored[i], attempts[i]))]
    assert not problems, f"{len(problems)} of {len(stored)} jobs wrong, e.g. {problems[:5]}"
    _check_completed_listed(fleet, acknowledged)


def _check_tokens_cross_replicas(fleet: Fleet) -> None:
    """A token minted on one replica works on every other, and so does a login."""
    for minter in fleet.replicas:
        with fleet.http(minter.url) as http:
            body = {"role": "viewer", "name": f"minted-on-{minter.name}"}
            token = http.post(f"{API}/admin/tokens", json=body).raise_for_status().json()
        for other in fleet.replicas:
            with fleet.http(other.url, token["token"]) as http:
                answer = http.get(f"{API}/jobs", params={"limit": 1})
            assert answer.status_code == 200, (minter.name, other.name, answer.text)
    first = fleet.replicas[0]
    login = {"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}
    jwt = httpx.post(first.url + "/api/auth/login", json=login, timeout=30).json()["token"]
    for other in fleet.replicas[1:]:
        with fleet.http(other.url, jwt) as http:
            assert http.get(f"{API}/jobs", params={"limit": 1}).status_code == 200, other.name


def _check_streams_through_the_balancer(fleet: Fleet) -> None:
    """Live output (server-sent events) and a WebSocket both pass HAProxy."""
    ws_url = fleet.lb_url.replace("http://", "ws://") + f"/api/jobs/stream?token={fleet.admin}"
    with connect(ws_url, open_timeout=10) as socket:  # upgraded through HAProxy
        assert socket.ping().wait(10), "no pong through HAProxy"
    with fleet.http() as http:
        body = {"command": "echo through-the-balancer; sleep 0.5"}
        job_id = http.post(f"{API}/jobs", json=body).raise_for_status().json()["id"]
        lines = []
        with http.stream("GET", f"{API}/jobs/{job_id}/output/follow") as stream:
            for line in stream.iter_lines():
                lines.append(line)
                if line == "event: end":
                    break
    assert any("through-the-balancer" in line for line in lines), lines
    assert "event: end" in lines, lines


def test_jobs_through_a_balancer_complete_once_while_a_replica_and_postgres_restart(
    fleet: Fleet, capsys: pytest.CaptureFixture[str]
) -> None:
    run = run_load(fleet)
    try:
        assert not run.refused, f"submissions refused for good: {run.refused[:5]}"
        assert len(run.ids) == JOBS, f"{JOBS - len(run.ids)} submissions never answered 201"
        assert len(set(run.ids.values())) == JOBS, "two keys were answered with one job"
        assert run.same_key_ids == {run.ids[run.first_key]}, (
            f"one key gave different jobs on different replicas: {run.same_key_ids}"
        )
        assert not run.recovery_problems, "; ".join(run.recovery_problems)
        assert run.all_completed, (
            f"only {run.completed} of {JOBS} jobs completed in time; {run.stuck_summary}"
        )
        _check_every_job(fleet, run)
        _check_tokens_cross_replicas(fleet)
        assert set(lb_states(fleet.stats_socket).values()) == {"UP"}
        _check_streams_through_the_balancer(fleet)
        for name, proc in fleet.workers.items():
            assert proc.poll() is None, f"worker {name} died: {tail(fleet.worker_log(name))}"
    finally:
        with capsys.disabled():  # the figures, in `make test`'s output too
            sys.stdout.write("\n" + run.figures.render() + "\n")
