"""The storage port: one async interface, a SQLite and a PostgreSQL adapter.

Operations are at the level of use cases (``claim``, ``finish``,
``append_output``...) rather than rows, because the two engines claim
differently (SQLite serialises writers, PostgreSQL uses ``SKIP LOCKED``).
Every write is compare-and-set: it names the state and attempt it expects, and
a mismatch raises ``StaleAttempt``/``InvalidTransition`` instead of writing.
``tests/contract`` runs one suite against both adapters.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from corral.domain.concurrency import KeyUsage
from corral.domain.files import NewFile, StoredFile
from corral.domain.jobs import Attempt, AttemptRef, ClaimRequest, Job, JobSpec, NewJob, Outcome
from corral.domain.outcomes import Piece
from corral.domain.projects import Project, TaskType
from corral.domain.retry import RetryPolicy
from corral.domain.sessions import AgentSession
from corral.domain.states import JobStatus
from corral.domain.workers import Executor, ExecutorInfo
from corral.errors import CorralError
from corral.store.counts_port import CountStore
from corral.store.retention_port import RetentionStore
from corral.store.schedules_port import ScheduleStore


@dataclass(frozen=True, slots=True)
class IdempotencyRecord:
    """A first response, kept so a retried request with the same key replays it."""

    principal_id: str
    key: str
    request_hash: str
    status_code: int
    body: bytes


@dataclass(frozen=True, slots=True)
class Inserted:
    """What ``insert_and_claim`` did: the jobs as they read back right after insertion
    (pending, whatever a claim then did to them), and what each claim leased."""

    jobs: list[Job]
    claimed: list[list[Job]]  # one list per claim given, in the same order


@dataclass(frozen=True, slots=True)
class JobFilter:
    status: JobStatus | None = None
    type: str | None = None
    priority: int | None = None
    executor_id: str | None = None
    project_id: str | None = None
    batch_id: str | None = None
    owner_id: str | None = None
    task_type_id: str | None = None

    def set_fields(self) -> list[tuple[str, Any]]:
        """(column, value) for each field the filter constrains, for either SQL dialect."""
        values = (
            ("status", self.status.value if self.status else None),
            ("type", self.type),
            ("priority", self.priority),
            ("executor_id", self.executor_id),
            ("project_id", self.project_id),
            ("batch_id", self.batch_id),
            ("owner_id", self.owner_id),
            ("task_type_id", self.task_type_id),
        )
        return [(column, value) for column, value in values if value is not None]


@dataclass(frozen=True, slots=True)
class JobQuery:
    """One page of the jobs list: filters plus a keyset cursor on ``seq``, never an offset.

    ``before_seq`` walks towards older jobs (``seq < before_seq``), ``after_seq`` towards
    newer ones (``seq > after_seq``); the walk starts at the cursor, so a deep page
    costs what the first one does. ``text`` matches anywhere in the command,
    case-insensitively, with ``%`` and ``_`` taken literally; ``label`` is one label
    the job must carry. ``text`` also matches the job's name. ``id_prefix`` keeps jobs
    whose id starts with it (an index range on either store); ``created_after`` jobs
    created at or after that time.
    """

    status: JobStatus | None = None
    executor_id: str | None = None
    label: str | None = None
    project_id: str | None = None
    priority: int | None = None
    text: str | None = None
    id_prefix: str | None = None
    created_after: float | None = None
    before_seq: int | None = None
    after_seq: int | None = None
    newest_first: bool = True

    @property
    def walks_down(self) -> bool:
        """Whether the store reads ``seq`` descending: away from the one cursor given,
        else in display order."""
        if (self.before_seq is None) != (self.after_seq is None):
            return self.before_seq is not None
        return self.newest_first

    @property
    def text_pattern(self) -> str | None:
        """``%text%`` for ``LIKE ... ESCAPE '\\'``: the user's ``%``, ``_`` and ``\\``
        match themselves instead of acting as wildcards."""
        if not self.text:
            return None
        escaped = self.text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        return f"%{escaped}%"

    @property
    def text_verbatim_in_json(self) -> bool:
        """Whether the text reads the same inside the JSON-encoded spec (no quote,
        backslash or control character, which an encoder rewrites), so a test on the
        raw spec text may rule rows out before the spec is parsed."""
        return not any(c in '"\\' or ord(c) < 0x20 for c in self.text or "")

    @property
    def id_range(self) -> tuple[str, str] | None:
        """``id >= low AND id < high`` selects the ids starting with ``id_prefix``,
        under binary (byte-wise) comparison."""
        if not self.id_prefix:
            return None
        prefix = self.id_prefix
        return prefix, prefix[:-1] + chr(ord(prefix[-1]) + 1)

    @property
    def id_pattern(self) -> str | None:
        """``prefix%`` for ``LIKE ... ESCAPE '\\'``, the user's wildcards escaped."""
        if not self.id_prefix:
            return None
        escaped = self.id_prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        return f"{escaped}%"

    def equal_fields(self) -> list[tuple[str, Any]]:
        """(column, value) for the plain equality filters, for either SQL dialect."""
        values = (
            ("status", self.status.value if self.status else None),
            ("executor_id", self.executor_id),
            ("project_id", self.project_id),
            ("priority", self.priority),
        )
        return [(column, value) for column, value in values if value is not None]


@dataclass(frozen=True, slots=True)
class ProjectActivity:
    """A project's recent work, for TaskDriver's stats view."""

    active_agents: int  # distinct executors holding a lease on one of its tasks
    completed: int
    failed: int
    average_seconds: float | None  # mean run time of the completed ones; None: none


@dataclass(frozen=True, slots=True)
class TokenRecord:
    id: str
    name: str
    role: str
    token_hash: str
    created_at: float
    revoked: bool = False
    executor_id: str | None = None  # a worker token bound to this one executor
    project_id: str | None = None  # an agent token bound to this one project
    expires_at: float | None = None  # refused from this time on; None: never expires
    last_used_at: float | None = None  # to the minute: see ``touch_token``
    user_id: str | None = None  # a personal token: acts as this user, with their role


@dataclass(frozen=True, slots=True)
class UserRecord:
    """An account that logs in with a password; ``email`` is stored lower-cased."""

    id: str
    email: str
    password_hash: str
    role: str
    created_at: float
    disabled: bool = False
    sessions_after: float = 0.0  # logins issued earlier than this no longer count
    session_epoch: int = 0  # logins carrying an earlier epoch no longer count


@dataclass(frozen=True, slots=True)
class OutputSlice:
    """Bytes of one stream from ``offset``, and where the stream stands now."""

    data: bytes
    offset: int
    size: int
    truncated: bool
    attempt: int


@dataclass(frozen=True, slots=True)
class Report:
    """One executor report in a batch of finishes."""

    job_id: str
    ref: AttemptRef
    outcome: Outcome


@dataclass(frozen=True, slots=True)
class Dependencies:
    """The jobs one job waits for, and the jobs that wait for it."""

    parents: list[str]
    children: list[str]


@dataclass(frozen=True, slots=True)
class WorkflowRecord:
    """A graph of jobs submitted in one request; ``keys`` maps its keys to job ids."""

    id: str
    name: str
    owner_id: str
    created_at: float
    keys: dict[str, str]


RenderFn = Callable[[Sequence[Job]], bytes]
Listener = Callable[[str], None]
# What a listener hears when announcements may have been missed (the PostgreSQL
# LISTEN connection was lost and is back): every waiter should look again. No
# topic a replica announces is ever this.
RESYNC = "*"


class Store(ScheduleStore, CountStore, RetentionStore, Protocol):
    backend: str

    async def open(self) -> None:
        """Connect and apply pending migrations."""

    async def close(self) -> None: ...

    async def ping(self) -> None:
        """Raise ``Unavailable`` unless the database answers."""

    async def database_size(self) -> int:
        """Bytes the database occupies, for the stats views."""

    def add_listener(self, listener: Listener) -> None:
        """Call ``listener(topic)`` when another process announces a change (PostgreSQL),
        and ``listener(RESYNC)`` when some announcements may have been lost."""

    async def announce(self, topic: str) -> None:
        """Tell other dispatcher processes sharing this database about a change."""

    # --- jobs -------------------------------------------------------------
    async def insert_jobs(
        self,
        jobs: Sequence[NewJob],
        idempotency: IdempotencyRecord | None = None,
        workflow: WorkflowRecord | None = None,
    ) -> list[Job]:
        """Insert all jobs or none; record the idempotency key (and the workflow the
        jobs make up) in the same transaction. Jobs naming ``depends_on`` are linked
        and settled there too: blocked, pending, or cancelled at once, and an unknown
        id is ``InvalidInput``.

        Raises ``AlreadyExists`` when the key was taken meanwhile, so the caller replays.
        """

    async def insert_and_claim(
        self,
        jobs: Sequence[NewJob],
        claims: Sequence[ClaimRequest],
        idempotency: IdempotencyRecord | None = None,
        workflow: WorkflowRecord | None = None,
    ) -> Inserted:
        """``insert_jobs``, then each of ``claims`` in turn as ``claim`` would run it (the
        store's clock), all in one transaction: a submit hands its jobs to workers waiting
        for work with one commit for both. A claim takes what ``claim`` would take at
        that moment, so not necessarily the new jobs, and maybe nothing."""

    async def get_dependencies(self, job_id: str) -> Dependencies: ...

    async def get_workflow(self, workflow_id: str) -> WorkflowRecord | None: ...

    async def list_workflows(self, limit: int, offset: int) -> list[WorkflowRecord]:
        """Newest first."""

    async def workflow_edges(self, workflow_id: str) -> list[tuple[str, str]]:
        """(dependant, dependency) for each edge of the workflow's jobs."""

    async def find_idempotency(self, principal_id: str, key: str) -> IdempotencyRecord | None: ...

    async def delete_idempotency_before(self, cutoff: float, limit: int) -> int:
        """Forget up to ``limit`` idempotency records made before ``cutoff``, oldest
        first; return how many went (fewer than ``limit``: none older is left)."""

    async def get_job(self, job_id: str) -> Job | None: ...

    async def get_jobs(self, job_ids: Sequence[str]) -> list[Job]: ...

    async def get_attempts(self, job_id: str) -> list[Attempt]: ...

    async def list_jobs(
        self, flt: JobFilter, limit: int, offset: int, newest_first: bool = True
    ) -> tuple[list[Job], int]:
        """A page in submission order (newest first by default) and the total matching."""

    async def page_jobs(self, query: JobQuery, limit: int) -> list[Job]:
        """Up to ``limit`` matching jobs next to the query's cursor, in display order
        (newest first unless ``query.newest_first`` is false)."""

    async def count_by_status(self) -> dict[JobStatus, int]: ...

    async def pending_by_priority(self) -> dict[int, int]: ...

    # --- concurrency keys (domain/concurrency.py) ------------------------------
    async def key_usage(self, keys: Sequence[str]) -> dict[str, KeyUsage]:
        """How each key stands now: jobs running, admitted and held (every key given)."""

    async def held_keys(self, limit: int) -> list[KeyUsage]:
        """The keys holding jobs back, most held first, at most ``limit``."""

    # --- the lease lifecycle ---------------------------------------------
    # ``now: float | None``: the time the operation happens at. None reads the store's
    # clock (``clock``), which the dispatcher passes, so that lease times never come
    # from one replica's wall clock; tests pass a time to move the clock by hand.
    async def clock(self) -> float:
        """The store's clock, in epoch seconds, that lease times are measured by: the
        database's ``now()`` on PostgreSQL, shared by every replica; on SQLite, whose
        file one process owns, that process's wall clock."""

    async def claim(self, request: ClaimRequest, now: float | None) -> list[Job]:
        """Lease up to ``request.limit`` runnable jobs: highest priority, then oldest."""

    async def renew_lease(
        self, job_id: str, ref: AttemptRef, now: float | None, duration: float | None = None
    ) -> Job:
        """Push the lease to ``now + duration`` (the job's ``lease_seconds`` when None)."""

    async def renew_executor_leases(
        self,
        executor_id: str,
        held: Sequence[tuple[str, int]],
        now: float | None,
        principal_id: str | None = None,
    ) -> list[Job]:
        """Renew every listed (job, attempt) the executor still holds, and with
        ``principal_id`` only those leased by that principal; return those jobs."""

    async def expire_executor_leases(
        self, executor_id: str, keep_principal_id: str, now: float | None, policy: RetryPolicy
    ) -> list[Job]:
        """End at once, as lost, every lease the executor id holds under another principal
        than ``keep_principal_id``: an earlier registration of the id is gone, so nobody
        will renew or report them. Returns the jobs as left (requeued, failed, cancelled)."""

    async def finish(
        self,
        job_id: str,
        ref: AttemptRef,
        outcome: Outcome,
        now: float | None,
        policy: RetryPolicy,
    ) -> Job: ...

    async def finish_many(
        self, reports: Sequence[Report], now: float | None, policy: RetryPolicy
    ) -> list[Job | CorralError]:
        """Apply a batch of reports in one transaction; each succeeds or fails alone."""

    async def release(self, job_id: str, ref: AttemptRef, now: float | None) -> Job:
        """Hand an unstarted job back to the queue without spending a retry."""

    async def return_unstarted(self, job_id: str, ref: AttemptRef, now: float | None) -> Job:
        """A release that comes after the reaper took the attempt (its worker was cut off):
        requeue the job and return the retry the reap spent, if ``check_late_release``
        allows; otherwise ``StaleAttempt``."""

    async def cancel(self, job_id: str, now: float, pending_only: bool = False) -> Job:
        """Cancel a pending job at once; mark a running one for cancellation, unless
        ``pending_only``, which refuses anything but a pending job (``InvalidTransition``)
        in the same transaction, so a claim cannot slip in between."""

    async def reap_expired(
        self,
        now: float | None,
        policy: RetryPolicy,
        limit: int,
        spare_longer_than: float | None = None,
    ) -> list[Job]:
        """Requeue or fail running jobs whose lease ran out before ``now``, except those
        whose ``lease_seconds`` exceed ``spare_longer_than`` (still in their grace after
        a restart or a clock jump; see ``domain.leases.ClockWatch``)."""

    async def next_run_after(self, now: float) -> float | None:
        """The earliest time a backed-off pending job becomes claimable, if any."""

    # --- output -----------------------------------------------------------
    async def append_output(
        self,
        job_id: str,
        ref: AttemptRef,
        stream: str,
        data: bytes,
        *,
        at: int | None = None,
        truncated: bool = False,
    ) -> OutputSlice:
        """Append to the current attempt's stream, keeping at most the store's cap.

        ``at``: the offset the sender meant ``data`` for; bytes already stored there
        (a resent chunk) are skipped. ``truncated``: the sender lost output, so the
        stream is flagged truncated whatever its size."""

    async def read_output(
        self, job_id: str, stream: str, offset: int, limit: int
    ) -> OutputSlice: ...

    async def read_pieces(self, job_id: str) -> tuple[Job, list[Piece]]:
        """The job and every stored chunk of its current attempt's output, both streams,
        with arrival times (``outcomes.interleave`` orders them). Bounded by the
        output cap of each stream."""
        ...

    # --- executors ----------------------------------------------------------
    async def upsert_executor(self, info: ExecutorInfo, now: float, draining: bool) -> Executor: ...

    async def register_executor(
        self, info: ExecutorInfo, now: float, live_after: float
    ) -> Executor:
        """Insert an executor, or take over one whose last heartbeat is before ``live_after``.

        Raises ``AlreadyExists`` when the id belongs to an executor still alive.
        """

    async def touch_executor(
        self, executor_id: str, now: float, reported_status: str | None = None
    ) -> None:
        """Record a heartbeat, and the status the executor reports when it gives one."""

    async def get_executor(self, executor_id: str) -> Executor | None: ...

    async def list_executors(self) -> list[Executor]: ...

    async def delete_executor(self, executor_id: str) -> None: ...

    # --- tokens -------------------------------------------------------------
    async def create_token(self, token: TokenRecord) -> None: ...

    async def find_token(self, token_hash: str) -> TokenRecord | None: ...

    async def list_tokens(self) -> list[TokenRecord]: ...

    async def revoke_token(self, token_id: str) -> None:
        """Also ends the agent sessions opened with the token (``credential_id``)."""

    async def revoke_executor_tokens(self, executor_id: str) -> int:
        """Revoke every token bound to the executor; return how many were live."""

    async def touch_token(self, token_id: str, now: float) -> None:
        """Record a use of the token; callers write at most once a minute per token."""

    # --- users, revoked JWTs, shared secrets ---------------------------------------
    async def create_user(self, user: UserRecord) -> None:
        """Raises ``AlreadyExists`` when the email (or id) is taken."""

    async def count_users(self) -> int: ...

    async def list_users(self) -> list[UserRecord]:
        """Every user, oldest first."""

    async def find_user_by_email(self, email: str) -> UserRecord | None: ...

    async def get_user(self, user_id: str) -> UserRecord | None: ...

    async def set_user_role(self, user_id: str, role: str) -> None:
        """Raises ``NotFound`` for an unknown user."""

    async def set_user_disabled(self, user_id: str, disabled: bool) -> None:
        """Disabling moves ``session_epoch`` on (enabling does not move it back) and ends
        the agent sessions the user opened.

        Raises ``NotFound`` for an unknown user."""

    async def set_user_password(
        self, user_id: str, password_hash: str, sessions_after: float = 0.0
    ) -> None:
        """Replace the hash and move ``session_epoch`` on (ending every earlier login, and
        the agent sessions the user opened);
        ``sessions_after`` is kept for logins issued before epochs existed.

        Raises ``NotFound`` for an unknown user."""

    async def revoke_jti(self, jti: str, expires_at: float, now: float) -> None:
        """Remember a logged-out token until ``expires_at``; forget ones expired by ``now``."""

    async def is_revoked(self, jti: str) -> bool: ...

    async def get_meta(self, key: str) -> str | None: ...

    async def put_meta_if_absent(self, key: str, value: str) -> str:
        """Store ``value`` unless the key exists; return the stored value either way,
        so replicas racing to set a shared secret all end up with the same one."""

    # --- files (input archives, artifacts) ------------------------------------------
    async def create_file(
        self,
        new: NewFile,
        pieces: AsyncIterable[bytes],
        max_size: int,
        fence: AttemptRef | None = None,
    ) -> StoredFile:
        """Store a stream in 1 MiB chunks, never whole in memory; ``TooLarge`` past
        ``max_size``. With ``fence`` it is an artifact of that attempt, replacing one at
        the same path, and only the attempt holding the lease may store it."""

    async def get_file(self, file_id: str) -> StoredFile | None:
        """A complete file's metadata; uploads still arriving are invisible."""

    def read_file(self, file_id: str) -> AsyncIterator[bytes]:
        """The file's chunks in order."""

    async def list_artifacts(self, job_id: str) -> list[StoredFile]:
        """A job's artifacts, by attempt then path."""

    async def delete_expired_files(self, now: float) -> int:
        """Delete up to a few hundred files (and unfinished uploads) expired before ``now``."""

    async def owned_bytes(self, owner_id: str, now: float) -> int:
        """Bytes of the complete files (uploads and artifacts of their jobs) that
        ``owner_id`` owns and that have not expired at ``now``: what a quota counts."""

    # --- TaskDriver: projects and task types ------------------------------------------
    async def create_project(self, project: Project) -> None:
        """Raises ``AlreadyExists`` when the name is taken."""

    async def get_project(self, project_id: str) -> Project | None: ...

    async def list_projects(
        self, status: str | None, limit: int, offset: int
    ) -> tuple[list[Project], int]:
        """Oldest first, and the total matching ``status`` (None: every status)."""

    async def update_project(self, project: Project) -> None:
        """Replace the mutable fields; ``NotFound`` or ``AlreadyExists`` (name taken)."""

    async def delete_project(self, project_id: str) -> None:
        """Delete the project and its task types; its tasks stay as history."""

    async def project_counts(self, project_ids: Sequence[str]) -> dict[str, dict[JobStatus, int]]:
        """Tasks per status for each project, in one query."""

    async def create_task_type(self, task_type: TaskType) -> None:
        """Raises ``AlreadyExists`` when the project already has a type of that name."""

    async def get_task_type(self, type_id: str) -> TaskType | None: ...

    async def list_task_types(self, project_id: str) -> list[TaskType]: ...

    async def update_task_type(self, task_type: TaskType) -> None: ...

    async def delete_task_type(self, type_id: str) -> None: ...

    async def find_duplicates(self, project_id: str, keys: Sequence[str]) -> dict[str, Job]:
        """The existing task for each dedupe key that has one."""

    async def update_pending_job(
        self, job_id: str, spec: JobSpec, dedupe_key: str | None = None
    ) -> Job:
        """Replace a pending job's spec (and its dedupe key); ``InvalidTransition`` once it
        has left the queue, ``AlreadyExists`` when the new key belongs to another task."""

    async def delete_job(self, job_id: str) -> None:
        """Delete a job that is not running, with all the purge deletes with it (its
        attempts, output, artifacts, idempotency record; ``prune_batch``); a job not
        finished yet is first cancelled, so that its dependants are decided."""

    async def project_activity(self, project_id: str, since: float) -> ProjectActivity:
        """Who runs the project's tasks now, and what finished after ``since``."""

    # --- TaskDriver: agent sessions ---------------------------------------------------------
    async def create_session(self, session: AgentSession) -> None: ...

    async def find_session(self, token_hash: str) -> AgentSession | None: ...

    async def get_session(self, session_id: str) -> AgentSession | None: ...

    async def touch_session(
        self, session_id: str, last_activity: float, expires_at: float | None = None
    ) -> None:
        """Record activity, and move the expiry when given."""

    async def revoke_session(self, session_id: str) -> None: ...

    async def count_live_sessions(self, now: float) -> int: ...
