"""The multi-host test's load: a careful client submitting through the load balancer
while faults are injected, and the figures measured along the way.

A careful client sends each job once with an ``Idempotency-Key`` of its own and,
after a connection error, a timeout or a 5xx, sends the very same request again
(same key, same body) after a jittered pause, whichever replica answers it. Any
other answer but 201 is a refusal, which the test reports.

Faults, in order, each once the previous one is over and under load:
the second replica is killed with SIGKILL after ``KILL_AT`` submissions were
answered, then started again; PostgreSQL is restarted after ``PG_AT``. For each,
the time to recover is measured from the moment of the fault.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from tests.multihost import (
    API,
    WORKER_ARGS,
    WORKER_HOSTS,
    Fleet,
    Replica,
    cpu_seconds,
    lb_states,
)

JOBS = 2000
CONCURRENCY = 16  # submissions in flight at once
KILL_AT = 300  # answered submissions before a replica is killed
PG_AT = 1000  # ... before PostgreSQL is restarted
SUBMIT_PATIENCE = 90.0  # seconds one submission may take, retries included
DRAIN_PATIENCE = 120.0  # seconds for the last jobs to complete after the last submission
RECOVERY_PATIENCE = 60.0  # seconds a fault may take to heal before the test says so
# Each run appends "id attempt" to the ledger of the host it ran on ($CORRAL_WORKER_DIR
# is the worker's work dir, a folder of that host's directory).
COMMAND = 'echo "$CORRAL_JOB_ID $CORRAL_ATTEMPT" >> "$CORRAL_WORKER_DIR/../ledger"'
# A short lease, so that a claim whose answer died with its replica (the job is then
# leased to a worker that never heard of it) is handed out again within the test.
BODY = {"command": COMMAND, "lease_seconds": 15, "max_retries": 3}
# Whose CPU time is counted, host by host; "client" is this process (the careful client).
ROLES = {
    "PostgreSQL": ("db",),
    "replicas": ("r1", "r2", "r3"),
    "HAProxy": ("lb",),
    "workers with their jobs": tuple(WORKER_HOSTS),
}


def cpu_by_role(fleet: Fleet) -> dict[str, float]:
    """CPU seconds spent so far by each role."""
    spent = {role: sum(cpu_seconds(fleet.host(h)) for h in hosts) for role, hosts in ROLES.items()}
    own = os.times()
    spent["client"] = own.user + own.system
    return spent


@dataclass
class Fault:
    """One fault: when it struck, what was measured after it, what clients saw."""

    name: str
    at: float = 0.0
    until: float = float("inf")  # the next fault's start
    measures: list[tuple[str, float | None]] = field(default_factory=list)

    def render(self, failures: list[tuple[float, str]]) -> str:
        seen = [(t, what) for t, what in failures if self.at <= t < self.until]
        parts = [f"{label} {_seconds(value)}" for label, value in self.measures]
        if seen:
            kinds = ", ".join(f"{k} x{n}" for k, n in Counter(w for _, w in seen).most_common())
            span = max(t for t, _ in seen) - self.at
            parts.append(f"clients retried {len(seen)} requests ({kinds}) for {span:.1f} s")
        else:
            parts.append("clients saw no error")
        return f"  {self.name}: " + "; ".join(parts)


def _seconds(value: float | None) -> str:
    return "never (timed out)" if value is None else f"after {value:.1f} s"


@dataclass
class Figures:
    submitted_in: float = 0.0
    completed_in: float | None = None
    faults: list[Fault] = field(default_factory=list)
    failures: list[tuple[float, str]] = field(default_factory=list)
    cpu: dict[str, float] = field(default_factory=dict)  # CPU seconds per role over the run
    later_attempts: int | None = None  # jobs that ran as attempt 2 or later (a lost claim)

    def render(self) -> str:
        slots = int(WORKER_ARGS[WORKER_ARGS.index("--concurrency") + 1])
        workers = sum(len(names) for names in WORKER_HOSTS.values())
        lines = [
            f"multi-host figures: 3 replicas behind HAProxy, {workers} workers x {slots} "
            f"slots, {JOBS} jobs, {CONCURRENCY} submissions in flight",
            f"  submitted through the balancer: {JOBS} in {self.submitted_in:.1f} s = "
            f"{JOBS / self.submitted_in:.0f} jobs/s ({len(self.failures)} requests retried)",
        ]
        if self.completed_in is not None:
            lines.append(
                f"  completed end to end: {JOBS} in {self.completed_in:.1f} s = "
                f"{JOBS / self.completed_in:.0f} jobs/s"
            )
        lines += [fault.render(self.failures) for fault in self.faults]
        if self.later_attempts is not None:
            lines.append(f"  jobs that ran as a later attempt (lease lost): {self.later_attempts}")
        if self.cpu:
            total = sum(self.cpu.values())
            shares = ", ".join(f"{role} {1000 * t / JOBS:.1f}" for role, t in self.cpu.items())
            lines.append(
                f"  CPU per job, ms: {shares}; in all {1000 * total / JOBS:.1f} ms, so 2 idle "
                f"cores would cap this fleet near {2 * JOBS / total:.0f} jobs/s"
            )
        return "\n".join(lines)


@dataclass
class LoadRun:
    """What the load saw; the test asserts on it."""

    ids: dict[str, str] = field(default_factory=dict)  # Idempotency-Key -> job id (201s)
    refused: list[str] = field(default_factory=list)
    first_key: str = ""
    same_key_ids: set[str] = field(default_factory=set)
    recovery_problems: list[str] = field(default_factory=list)
    completed: int = 0
    all_completed: bool = False
    stuck_summary: str = ""
    figures: Figures = field(default_factory=Figures)


def run_load(fleet: Fleet) -> LoadRun:
    """Submit, inject the faults, wait for the jobs; the calling thread is on the client."""
    return asyncio.run(_Load(fleet).run())


class _Load:
    def __init__(self, fleet: Fleet) -> None:
        self.fleet = fleet
        self.out = LoadRun()
        self.answered = 0
        self.started = 0.0
        # Set when that many submissions were answered (or when submitting is over).
        self.milestones = {KILL_AT: asyncio.Event(), PG_AT: asyncio.Event()}
        self.all_completed = asyncio.Event()

    def now(self) -> float:
        return time.monotonic() - self.started

    async def run(self) -> LoadRun:
        with self.fleet.http() as admin:
            body = {"role": "submitter", "name": "careful-client"}
            self.token = admin.post(f"{API}/admin/tokens", json=body).json()["token"]
        headers = {"Authorization": f"Bearer {self.token}"}
        limits = httpx.Limits(max_connections=CONCURRENCY + 4)
        async with (
            httpx.AsyncClient(headers=headers, timeout=10, limits=limits) as self.http,
            httpx.AsyncClient(timeout=1) as self.probe,
        ):
            self.started = time.monotonic()
            cpu_before = await asyncio.to_thread(cpu_by_role, self.fleet)
            await self._first_key_on_every_replica()
            counter = asyncio.create_task(self._count_completed())
            faults = asyncio.create_task(self._faults())
            keys = iter([str(uuid.uuid4()) for _ in range(JOBS - 1)])
            await asyncio.gather(*(self._submitter(keys) for _ in range(CONCURRENCY)))
            self.out.figures.submitted_in = self.now()
            for milestone in self.milestones.values():
                milestone.set()  # refusals may have left one unreached
            await faults
            await self._drain()
            counter.cancel()
            cpu_after = await asyncio.to_thread(cpu_by_role, self.fleet)
        self.out.figures.cpu = {role: cpu_after[role] - cpu_before[role] for role in cpu_after}
        return self.out

    async def _first_key_on_every_replica(self) -> None:
        """The first job through the balancer, then its key sent to each replica itself."""
        self.out.first_key = key = str(uuid.uuid4())
        await self._submit(self.fleet.lb_url, key)
        for replica in self.fleet.replicas:
            answer = await self._send(replica.url, key)
            if answer is not None and answer.status_code == 201:
                self.out.same_key_ids.add(answer.json()["id"])
            else:
                self.out.refused.append(f"{replica.name} replaying the first key: {answer}")

    async def _submitter(self, keys: Any) -> None:
        for key in keys:
            await self._submit(self.fleet.lb_url, key)

    async def _send(self, base: str, key: str) -> httpx.Response | None:
        try:
            return await self.http.post(
                base + API + "/jobs", json=BODY, headers={"Idempotency-Key": key}
            )
        except httpx.TransportError as exc:
            self.out.figures.failures.append((self.now(), type(exc).__name__))
            return None

    async def _submit(self, base: str, key: str) -> None:
        """One job, as a careful client submits it: the same request until it is decided."""
        deadline = time.monotonic() + SUBMIT_PATIENCE
        pause = 0.05
        while time.monotonic() < deadline:
            answer = await self._send(base, key)
            if answer is not None and answer.status_code == 201:
                self.out.ids[key] = answer.json()["id"]
                self.answered += 1
                if self.answered in self.milestones:
                    self.milestones[self.answered].set()
                return
            if answer is not None and answer.status_code < 500:
                self.out.refused.append(f"{answer.status_code} {answer.text[:200]}")
                return
            if answer is not None:
                self.out.figures.failures.append((self.now(), str(answer.status_code)))
            await asyncio.sleep(random.uniform(pause / 2, pause))
            pause = min(pause * 2, 1.0)

    async def _count_completed(self) -> None:
        params: dict[str, str | int] = {"status": "completed", "limit": 1}
        admin = {"Authorization": f"Bearer {self.fleet.admin}"}
        while True:
            try:
                answer = await self.http.get(
                    self.fleet.lb_url + API + "/jobs", params=params, headers=admin
                )
                if answer.status_code == 200:
                    self.out.completed = int(answer.headers["X-Total-Count"])
                    if self.out.completed >= JOBS:
                        self.all_completed.set()
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.25)

    async def _until(
        self, check: Callable[[], Awaitable[bool]], since: float, what: str
    ) -> float | None:
        """Seconds from ``since`` until ``check`` holds; None (and a problem) if it never does."""
        while self.now() - since < RECOVERY_PATIENCE:
            if await check():
                return self.now() - since
            await asyncio.sleep(0.05)
        self.out.recovery_problems.append(f"{what}: not within {RECOVERY_PATIENCE:.0f} s")
        return None

    async def _healthy(self, replica: Replica) -> bool:
        try:
            answer = await self.probe.get(replica.url + API + "/health")
        except httpx.TransportError:
            return False
        return answer.status_code == 200

    async def _lb_state(self, replica: Replica) -> str:
        number = self.fleet.replicas.index(replica) + 1
        states = await asyncio.to_thread(lb_states, self.fleet.stats_socket)
        return states.get(f"replica{number}", "absent")

    async def _answered(self, count: int) -> None:
        await self.milestones[count].wait()

    async def _faults(self) -> None:
        victim, faults = self.fleet.replicas[1], self.out.figures.faults
        await self._answered(KILL_AT)
        kill = Fault(f"replica {victim.name} SIGKILLed at {self.answered} answered", self.now())
        faults.append(kill)
        await asyncio.to_thread(victim.kill)
        out = await self._until(
            lambda: self._is(victim, "DOWN"), kill.at, f"HAProxy to take {victim.name} out"
        )
        kill.measures.append(("out of rotation", out))

        restart = Fault(f"replica {victim.name} restarted", self.now())
        kill.until = restart.at
        faults.append(restart)
        await asyncio.to_thread(victim.start)
        serving = await self._until(
            lambda: self._healthy(victim), restart.at, f"{victim.name} to serve after restart"
        )
        back = await self._until(
            lambda: self._is(victim, "UP"), restart.at, f"HAProxy to take {victim.name} back"
        )
        restart.measures += [("serving", serving), ("back in rotation", back)]

        await self._answered(PG_AT)
        await self._restart_postgres(restart)

    async def _restart_postgres(self, previous: Fault) -> None:
        assert self.fleet.pg is not None
        fault = Fault(f"PostgreSQL restarted at {self.answered} answered", self.now())
        previous.until = fault.at
        self.out.figures.faults.append(fault)
        completed_before = self.out.completed
        await asyncio.to_thread(self.fleet.pg.restart)
        fault.measures.append(("back", self.now() - fault.at))

        async def all_healthy() -> bool:
            return all(await asyncio.gather(*map(self._healthy, self.fleet.replicas)))

        async def all_up() -> bool:
            return all([await self._is(r, "UP") for r in self.fleet.replicas])

        async def completing() -> bool:
            return self.out.completed > completed_before

        for label, check, what in (
            ("every replica healthy", all_healthy, "every replica to be healthy after it"),
            ("every replica in rotation", all_up, "HAProxy to take every replica back"),
            ("jobs completing", completing, "jobs to complete again after it"),
        ):
            elapsed = await self._until(check, fault.at, f"PostgreSQL restarted: {what}")
            fault.measures.append((label, elapsed))

    async def _is(self, replica: Replica, state: str) -> bool:
        return (await self._lb_state(replica)).startswith(state)

    async def _drain(self) -> None:
        """Wait for every job to complete, and time it."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.all_completed.wait(), DRAIN_PATIENCE)
        self.out.all_completed = self.all_completed.is_set()
        if self.out.all_completed:
            self.out.figures.completed_in = self.now()
            return
        admin = {"Authorization": f"Bearer {self.fleet.admin}"}
        counts = {}
        for status in ("pending", "running", "failed", "completed"):
            answer = await self.http.get(
                self.fleet.lb_url + API + "/jobs",
                params={"status": status, "limit": 1},
                headers=admin,
            )
            counts[status] = answer.headers.get("X-Total-Count", answer.status_code)
        self.out.stuck_summary = f"jobs by status: {counts}"
