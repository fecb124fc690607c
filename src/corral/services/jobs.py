"""Submitting, reading and cancelling jobs: the use cases every dialect's job routes call."""

from __future__ import annotations

import asyncio
import dataclasses
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from corral.auth.policy import Action, require
from corral.domain.fairness import share_of
from corral.domain.jobs import Attempt, Job, JobDraft, NewJob
from corral.domain.principals import Principal
from corral.domain.projects import ProjectStatus
from corral.domain.states import JobStatus
from corral.errors import (
    AlreadyExists,
    CorralError,
    IdempotencyMismatch,
    InvalidInput,
    NotFound,
)
from corral.services.dependencies import check_parents
from corral.services.events import JOBS, Hub, job_topic
from corral.services.metrics import Metrics
from corral.store.base import (
    IdempotencyRecord,
    Inserted,
    JobFilter,
    JobQuery,
    RenderFn,
    Store,
    WorkflowRecord,
)


@dataclass(frozen=True, slots=True)
class Idempotency:
    """An ``Idempotency-Key`` with a digest of the request body it came with."""

    key: str
    request_hash: str


@dataclass(frozen=True, slots=True)
class Submitted:
    """Fresh jobs, or the stored first response when the request was a replay."""

    jobs: list[Job]
    replay: IdempotencyRecord | None = None


@dataclass(frozen=True, slots=True)
class JobDetails:
    job: Job
    attempts: list[Attempt]
    stdout: bytes
    stderr: bytes


@dataclass(frozen=True, slots=True)
class JobsPage:
    jobs: list[Job]
    counts: dict[JobStatus, int]  # the whole store, every status present


IDEMPOTENCY_BATCH = 500  # records forgotten per write: a short one, even on SQLite


class JobService:
    def __init__(self, store: Store, hub: Hub, metrics: Metrics, output_cap: int) -> None:
        self._store = store
        self._hub = hub
        self._metrics = metrics
        self._output_cap = output_cap

    async def submit(
        self,
        principal: Principal,
        drafts: Sequence[JobDraft],
        *,
        idempotency: Idempotency | None = None,
        render: RenderFn | None = None,
        status_code: int = 201,
        workflow: WorkflowRecord | None = None,
    ) -> Submitted:
        """Store every draft or none; with a key, the first response is kept for replays.

        Drafts naming ``depends_on`` may name only jobs the caller may see (or drafts of
        the same request); ``workflow`` is stored with the jobs when they make one up."""
        require(principal, Action.SUBMIT)
        if idempotency is not None:
            replay = await self._replay(principal, idempotency)
            if replay is not None:
                return Submitted([], replay)
        now = time.time()
        new_jobs = [d.to_new_job(d.job_id or str(uuid.uuid4()), principal.id, now) for d in drafts]
        for job in new_jobs:
            job.validate()
        await check_parents(self._store, principal, new_jobs)
        await self._check_input_files(new_jobs)
        new_jobs = await self._check_projects(new_jobs)
        record = self._record(principal, new_jobs, idempotency, render, status_code)
        try:
            jobs, left = await self._insert(new_jobs, record, workflow)
        except AlreadyExists:
            if idempotency is None:  # a duplicate task (dedupe key), not a replay
                raise
            # Another request with the same key won the race: answer as it did.
            replay = await self._replay(principal, idempotency)
            if replay is None:
                raise
            return Submitted([], replay)
        self._metrics.jobs_submitted.inc(len(jobs))
        self._hub.job_changed()
        if left:  # some new job is left for claimers to find (else it went to a waiting claim)
            self._hub.fire(JOBS)
        if self._hub.jobs.waiters or not left:
            # Let a parked long-poll claim the new work (or answer with what this submit
            # handed it) before this answer is even rendered: the job starts sooner, the
            # submitter waits that much longer for its 201, which it was going to do anyway.
            await asyncio.sleep(0)
        return Submitted(jobs)

    async def _insert(
        self,
        new_jobs: list[NewJob],
        record: IdempotencyRecord | None,
        workflow: WorkflowRecord | None,
    ) -> tuple[list[Job], bool]:
        """Store the jobs, handing them to the claims parked here if any (``handoff.py``):
        the jobs as stored, and whether some of them are left for claimers to find."""
        parked = self._hub.parked
        taken = parked.take(len(new_jobs)) if parked and new_jobs else []
        if not taken:
            return await self._store.insert_jobs(new_jobs, record, workflow), True
        requests = [p.request for p in taken]
        storing = asyncio.ensure_future(
            self._store.insert_and_claim(new_jobs, requests, record, workflow)
        )

        def deliver(done: asyncio.Future[Inserted]) -> None:
            ok = not done.cancelled() and done.exception() is None
            parked.deliver(taken, done.result().claimed if ok else None)

        # The taken claims hear what the store did, whatever happens to this request:
        # should it be cancelled, the insert and its leases still complete and reach them.
        storing.add_done_callback(deliver)
        inserted = await asyncio.shield(storing)
        leased = {job.id for jobs in inserted.claimed for job in jobs}
        return inserted.jobs, any(job.id not in leased for job in inserted.jobs)

    async def check_drafts(self, owner_id: str, drafts: Sequence[JobDraft]) -> None:
        """Every check ``submit`` makes before storing, for drafts kept to be submitted
        later (a schedule's job): a bad one is a 400 now, not a failed tick later."""
        new_jobs = [d.to_new_job("draft", owner_id, time.time()) for d in drafts]
        for job in new_jobs:
            job.validate()
        await self._check_input_files(new_jobs)
        await self._check_projects(new_jobs)

    async def _check_input_files(self, new_jobs: Sequence[NewJob]) -> None:
        """An ``input_file_id`` must name a stored, unexpired file: a 400 now, not a
        failed job later."""
        now = time.time()
        for file_id in sorted({j.spec.input_file_id for j in new_jobs if j.spec.input_file_id}):
            stored = await self._store.get_file(file_id)
            if stored is None or stored.expires_at < now:
                raise InvalidInput(
                    f"unknown input_file_id: {file_id}", field="input_file_id", file_id=file_id
                )

    async def forget_idempotency(self, now: float, keep: float) -> int:
        """Forget one batch of the idempotency records older than ``keep`` seconds.

        A key only guards against a client retrying one request, which happens within
        minutes; kept for ever, the records (each with its first response) would grow
        the database by one row per keyed submission without bound.
        """
        return await self._store.delete_idempotency_before(now - keep, IDEMPOTENCY_BATCH)

    async def _check_projects(self, new_jobs: Sequence[NewJob]) -> list[NewJob]:
        """A job joins an existing, open project or none: a ``project_id`` decides which
        agents and project claims see the job, so a typo must not park it unseen.

        The jobs come back with the share they count against for fair share: a
        project's tasks count as the project's creator, whoever submits them."""
        creators: dict[str, str | None] = {}
        for project_id in sorted({j.project_id for j in new_jobs if j.project_id is not None}):
            project = await self._store.get_project(project_id)
            if project is None:
                raise InvalidInput(
                    f"unknown project_id: {project_id}", field="project_id", project_id=project_id
                )
            if project.status is ProjectStatus.CLOSED:
                raise InvalidInput(
                    f"project {project_id} is closed; it takes no new jobs",
                    field="project_id",
                    project_id=project_id,
                )
            creators[project_id] = project.created_by
        return [
            j
            if j.project_id is None
            else dataclasses.replace(
                j, share_id=share_of(j.owner_id, j.project_id, creators[j.project_id])
            )
            for j in new_jobs
        ]

    async def _replay(self, principal: Principal, idem: Idempotency) -> IdempotencyRecord | None:
        found = await self._store.find_idempotency(principal.id, idem.key)
        if found is not None and found.request_hash != idem.request_hash:
            raise IdempotencyMismatch(
                "Idempotency-Key was already used with a different request body", key=idem.key
            )
        return found

    @staticmethod
    def _record(
        principal: Principal,
        new_jobs: list[NewJob],
        idem: Idempotency | None,
        render: RenderFn | None,
        status_code: int,
    ) -> IdempotencyRecord | None:
        if idem is None or render is None:
            return None
        body = render([j.stored(0) for j in new_jobs])
        return IdempotencyRecord(principal.id, idem.key, idem.request_hash, status_code, body)

    async def get(self, principal: Principal, job_id: str) -> Job:
        require(principal, Action.READ)
        job = await self._store.get_job(job_id)
        if job is None:
            raise NotFound("job not found", job_id=job_id)
        return job

    async def details(
        self, principal: Principal, job_id: str, with_output: bool = True
    ) -> JobDetails:
        """The job, its attempts and its stored output; views that only show where a job
        stands pass ``with_output=False`` and skip reading up to the cap per stream."""
        job = await self.get(principal, job_id)
        attempts = await self._store.get_attempts(job_id)
        if not with_output:
            return JobDetails(job, attempts, b"", b"")
        stdout = await self._store.read_output(job_id, "stdout", 0, self._output_cap)
        stderr = await self._store.read_output(job_id, "stderr", 0, self._output_cap)
        return JobDetails(job, attempts, stdout.data, stderr.data)

    async def list_jobs(
        self,
        principal: Principal,
        flt: JobFilter,
        limit: int,
        offset: int,
        newest_first: bool = True,
    ) -> tuple[list[Job], int]:
        require(principal, Action.READ)
        return await self._store.list_jobs(flt, limit, offset, newest_first)

    async def search(self, principal: Principal, query: JobQuery, limit: int) -> list[Job]:
        """The first ``limit`` jobs matching ``query``, with no counts (the CLI's
        filters and id prefixes)."""
        require(principal, Action.READ)
        return await self._store.page_jobs(query, limit)

    async def page(self, principal: Principal, query: JobQuery, limit: int) -> JobsPage:
        """A keyset page for the dashboard's list, with the whole store's counts per
        status. Readers see every job, as in the APIs' listings; no total of the
        filtered rows is counted, since that is the part that grows with the table."""
        require(principal, Action.READ)
        jobs, counts = await asyncio.gather(
            self._store.page_jobs(query, limit), self._store.count_by_status()
        )
        return JobsPage(jobs, {status: counts.get(status, 0) for status in JobStatus})

    async def cancel(self, principal: Principal, job_id: str, *, pending_only: bool = False) -> Job:
        """``pending_only`` is for faces that refuse to stop a started job (Octaskly):
        anything but a pending job is then an ``InvalidTransition`` naming its status,
        decided by the store in the same transaction as the cancel."""
        job = await self.get(principal, job_id)
        require(principal, Action.CANCEL, owner_id=job.owner_id)
        cancelled = await self._store.cancel(job_id, time.time(), pending_only)
        if cancelled.status == JobStatus.CANCELLED:
            self._metrics.jobs_finished.labels(status="cancelled").inc()
            self._hub.events.finished([cancelled], time.time())
            # run_if failure/always dependants may be due now; an admitted job of a
            # concurrency key freed its slot, and the key's next held job was admitted.
            if cancelled.has_dependants or (job.spec.concurrency_key and not job.held):
                self._hub.fire(JOBS)
                await self._store.announce(JOBS)
        self._hub.fire(job_topic(job_id))  # relayed to other replicas by the hub's outbox
        self._hub.job_changed()
        return cancelled

    async def resubmit(self, principal: Principal, job_id: str) -> Job:
        """The same spec as a new job of the caller's, for the job's owner or an admin:
        it carries the owner's secret env, which nobody else may set running again.

        It stays in its project and task type (so that project's agents still see it)
        but joins no batch and skips the type's duplicate check: running it again is
        the point. An input archive that has expired since is left out.
        """
        job = await self.get(principal, job_id)
        require(principal, Action.SUBMIT)
        require(principal, Action.CANCEL, owner_id=job.owner_id)  # acting on another's job
        draft = JobDraft(
            spec=job.spec,
            priority=job.priority,
            max_retries=job.max_retries,
            lease_seconds=job.lease_seconds,
            project_id=job.project_id,
            task_type_id=job.task_type_id,
        )
        try:
            submitted = await self.submit(principal, [draft])
        except InvalidInput as exc:
            if exc.context.get("field") != "input_file_id":
                raise
            without = dataclasses.replace(job.spec, input_file_id=None)
            submitted = await self.submit(principal, [dataclasses.replace(draft, spec=without)])
        return submitted.jobs[0]

    async def cancel_many(
        self, principal: Principal, job_ids: Sequence[str]
    ) -> list[Job | CorralError]:
        """A role that may cancel nothing is refused as a whole; per-job refusals are
        only for jobs that belong to someone else."""
        require(principal, Action.CANCEL)
        results: list[Job | CorralError] = []
        for job_id in job_ids:
            try:
                results.append(await self.cancel(principal, job_id))
            except CorralError as exc:
                results.append(exc)
        return results
