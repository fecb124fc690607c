"""The storage port: one async interface, a SQLite and a PostgreSQL adapter.

Operations are at the level of use cases (``claim``, ``finish``,
``append_output``...) rather than rows, because the two engines claim
differently (SQLite serialises writers, PostgreSQL uses ``SKIP LOCKED``).
Every write is compare-and-set: it names the state and attempt it expects, and
a mismatch raises ``StaleAttempt``/``InvalidTransition`` instead of writing.
``tests/contract`` runs one suite against both adapters.

``Store`` is the jobs themselves (insert, read, list) plus the ports each part of the
dispatcher needs, one module each (``leases_port.py``, ``fleet_port.py``,
``accounts_port.py``, ``files_port.py``, ``projects_port.py``, ``schedules_port.py``,
``counts_port.py``, ``retention_port.py``); each adapter implements a port in a module
of the same name (``sqlite/leases.py`` and ``postgres/leases.py``, ...; the accounts
port in ``users.py`` and ``sessions.py``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from corral.domain.concurrency import KeyUsage
from corral.domain.jobs import Attempt, ClaimRequest, Job, NewJob
from corral.domain.states import JobStatus
from corral.store.accounts_port import AccountStore
from corral.store.counts_port import CountStore
from corral.store.files_port import FileStore
from corral.store.fleet_port import FleetStore
from corral.store.leases_port import LeaseStore
from corral.store.projects_port import ProjectStore
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


class Store(
    LeaseStore,
    FleetStore,
    AccountStore,
    FileStore,
    ProjectStore,
    ScheduleStore,
    CountStore,
    RetentionStore,
    Protocol,
):
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
