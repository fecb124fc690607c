"""Input archives and artifacts: who may upload, download and list them.

Submitters (and admins) upload input archives; anyone with read rights
downloads any file. A worker has no read rights, so it may download only the
input archive of a job whose lease it holds, and store artifacts only for the
attempt it is running: the same fence as every other executor call, checked
once before the bytes flow and again when the artifact is made visible.

Corral's own workers name the job (and attempt) they want a file for. CMD
Executor's workers fetch the ``fileUrl`` they were handed and name nothing, so
for them the file must be the input of one of the running jobs they hold.

An upload that is a zip is inspected before it is kept (``domain/archives.py``):
its pieces flow to the store as they arrive and are also copied to an anonymous
temporary file; once the last piece is in, but before the store is told the
stream ended, the copy is inspected in a thread. A refusal is raised from
inside the stream, so the store discards what it had written, exactly as for
an oversize upload, and the caller gets a 400 with nothing stored.

Each user may own at most ``quota`` bytes of unexpired files (their uploads and
their jobs' artifacts); an upload may hold at most what is left of it, and one
that crosses it is refused (``TooLarge`` with ``quota`` in its context) the
same way as one past the file limit.
"""

from __future__ import annotations

import asyncio
import logging
import tempfile
import time
import uuid
from collections.abc import AsyncGenerator, AsyncIterable, AsyncIterator, Callable
from contextlib import aclosing
from dataclasses import dataclass
from typing import IO

from corral.auth.policy import Action, require
from corral.domain.archives import (
    DEFAULT_LIMITS,
    ZIP_MAGIC,
    ArchiveLimits,
    ArchiveRefused,
    ArchiveSummary,
    NotAZip,
    inspect_zip,
    looks_like_zip,
)
from corral.domain.files import NewFile, StoredFile, clean_filename, stored_path
from corral.domain.jobs import Job
from corral.domain.leases import check_fence
from corral.domain.principals import Principal, Role
from corral.domain.states import JobStatus
from corral.errors import InvalidInput, NotFound, TooLarge
from corral.services.leasing import LeaseService
from corral.store.base import JobFilter, Store

log = logging.getLogger("corral.services.files")
DEFAULT_CONTENT_TYPE = "application/octet-stream"
HELD_PAGE = 500  # running jobs looked at per query when finding a worker's jobs


@dataclass(frozen=True, slots=True)
class Download:
    """A file's metadata, and its bytes read only once the caller knows which it wants
    (all of them, or a byte range): nothing is read from the store before that."""

    file: StoredFile
    reader: Callable[[str, int, int | None], AsyncIterator[bytes]]

    def read(self, start: int = 0, stop: int | None = None) -> AsyncIterator[bytes]:
        """Bytes ``start`` up to ``stop`` (exclusive; None: the end), chunk by chunk."""
        return self.reader(self.file.id, start, stop)

    @property
    def chunks(self) -> AsyncIterator[bytes]:
        """The whole file."""
        return self.read()


@dataclass(frozen=True, slots=True)
class WorkerCall:
    """An executor naming the attempt it acts for."""

    executor_id: str
    attempt: int | None


class _Spool:
    """A copy of an upload on local disk, only for as long as it takes to inspect it.

    ``TemporaryFile`` has no name (or loses it at once), so the copy vanishes
    with the file object, even if the process dies. It is only opened by the
    first piece that needs it: an upload that is no zip never touches the disk.
    """

    def __init__(self) -> None:
        self._file: IO[bytes] | None = None

    async def write(self, piece: bytes) -> None:
        if self._file is None:
            self._file = await asyncio.to_thread(tempfile.TemporaryFile)
        await asyncio.to_thread(self._file.write, piece)

    def inspect(self, limits: ArchiveLimits) -> ArchiveSummary:
        """Blocking: inflates every entry; run it in a thread."""
        if self._file is None:
            raise NotAZip("the archive cannot be read: it is empty")
        self._file.flush()
        self._file.seek(0)
        return inspect_zip(self._file, max_entries=limits.max_entries, max_total=limits.max_total)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()


class FileService:
    def __init__(
        self,
        store: Store,
        leases: LeaseService,
        max_upload: int,
        ttl: float,
        archive_limits: ArchiveLimits = DEFAULT_LIMITS,
        quota: int | None = None,
    ) -> None:
        self._store = store
        self._leases = leases
        self.max_upload = max_upload
        self._ttl = ttl
        self.archive_limits = archive_limits
        self.quota = quota  # bytes of unexpired files one owner may hold; None: no quota

    def _new(self, principal: Principal, filename: str, content_type: str | None) -> NewFile:
        now = time.time()
        return NewFile(
            id=str(uuid.uuid4()),
            owner_id=principal.id,
            filename=clean_filename(filename),
            content_type=content_type or DEFAULT_CONTENT_TYPE,
            created_at=now,
            expires_at=now + self._ttl,
        )

    @staticmethod
    def check_upload(principal: Principal) -> None:
        """Asked before the body is read, so a refused upload costs no parsing."""
        require(principal, Action.SUBMIT)

    async def upload(
        self,
        principal: Principal,
        filename: str,
        content_type: str | None,
        pieces: AsyncIterable[bytes],
    ) -> StoredFile:
        """A zip is refused (``ArchiveRefused``, 400) if a worker would refuse it."""
        require(principal, Action.SUBMIT)
        new = self._new(principal, filename, content_type)
        room, used = await self._room(principal)
        spool = _Spool()
        try:
            claimed = looks_like_zip(new.filename, content_type)
            async with aclosing(self._inspected(new, claimed, pieces, spool)) as checked:
                return await self._store.create_file(new, checked, room)
        except TooLarge:
            if room < self.max_upload:  # what stopped it was the quota, not the file limit
                raise self._over_quota(used) from None
            raise
        finally:
            spool.close()  # not in a thread: this must happen even when cancelled

    async def _room(self, principal: Principal) -> tuple[int, int]:
        """The most this upload may hold (the file limit, or what is left of the
        owner's quota if less) and the bytes the owner holds already.

        Checked when the upload starts: uploads running side by side each see the
        same room, so together they may pass the quota by what they carry.
        """
        if self.quota is None:
            return self.max_upload, 0
        used = await self._store.owned_bytes(principal.id, time.time())
        if used >= self.quota:
            raise self._over_quota(used)
        return min(self.max_upload, self.quota - used), used

    def _over_quota(self, used: int) -> TooLarge:
        return TooLarge(
            f"upload quota exceeded: {used} of {self.quota} bytes are in use until files expire",
            quota=self.quota,
            used=used,
        )

    async def _inspected(
        self, new: NewFile, claimed: bool, pieces: AsyncIterable[bytes], spool: _Spool
    ) -> AsyncGenerator[bytes, None]:
        """The pieces, unchanged; a zip's are copied aside and judged after the last one.

        An upload not claimed as a zip by its name or type is one if it starts
        like one, so its first bytes decide before anything is copied.
        """
        is_zip: bool | None = True if claimed else None
        head = b""
        async for piece in pieces:
            if is_zip is None:
                head += piece[: len(ZIP_MAGIC) - len(head)]
                if len(head) == len(ZIP_MAGIC):
                    is_zip = looks_like_zip("", None, head)
            if is_zip is not False:
                await spool.write(piece)
            yield piece
        if not is_zip:
            return
        try:
            summary = await asyncio.to_thread(spool.inspect, self.archive_limits)
        except NotAZip:
            return  # nothing a reader could extract; a worker refuses it as unreadable
        except ArchiveRefused as exc:
            log.warning(
                "upload refused: %s",
                exc.reason,
                extra={"action": "upload_refused", "file_id": new.id, "owner_id": new.owner_id},
            )
            raise
        log.debug(
            "upload inspected",
            extra={
                "action": "upload_inspected",
                "entries": summary.entries,
                "bytes": summary.total,
            },
        )

    async def download(
        self,
        principal: Principal,
        file_id: str,
        job_id: str | None = None,
        worker: WorkerCall | None = None,
    ) -> Download:
        """Readers get any file; a worker names the job (and attempt) it needs it for."""
        if principal.role == Role.WORKER or worker is not None:
            await self._check_worker_input(principal, file_id, job_id, worker)
        else:
            require(principal, Action.READ)
        return await self._open(file_id)

    async def fetch(self, principal: Principal, file_id: str) -> Download:
        """A file named only by its URL, as CMD Executor's workers fetch a job's ``fileUrl``.

        Readers get any file; a worker gets only the input archive of a running
        job its executor holds (for an unbound worker token: that its claims leased).
        """
        if principal.role == Role.WORKER:
            await self._check_held_input(principal, file_id)
        else:
            require(principal, Action.READ)
        return await self._open(file_id)

    async def _check_worker_input(
        self, principal: Principal, file_id: str, job_id: str | None, worker: WorkerCall | None
    ) -> None:
        if job_id is None or worker is None:
            raise InvalidInput(
                "a worker downloads a file as the input of a job it holds: "
                "give job_id, executor_id and attempt",
                field="job_id",
            )
        ref = self._leases.fence(principal, worker.executor_id, worker.attempt)
        job = await self._job(job_id)
        check_fence(job, ref)
        if job.spec.input_file_id != file_id:
            raise NotFound("file not found", file_id=file_id)

    async def _check_held_input(self, principal: Principal, file_id: str) -> None:
        """404 rather than 403: a worker learns nothing of files that are not its own."""
        if principal.executor_id is not None:
            flt = JobFilter(status=JobStatus.RUNNING, executor_id=principal.executor_id)
        else:  # an unbound worker token: the jobs its own claims leased
            flt = JobFilter(status=JobStatus.RUNNING)
        offset = 0
        while True:
            jobs, total = await self._store.list_jobs(flt, HELD_PAGE, offset)
            if any(self._holds_input(principal, job, file_id) for job in jobs):
                return
            offset += len(jobs)
            if not jobs or offset >= total:
                raise NotFound("file not found", file_id=file_id)

    @staticmethod
    def _holds_input(principal: Principal, job: Job, file_id: str) -> bool:
        if job.status is not JobStatus.RUNNING or job.spec.input_file_id != file_id:
            return False
        if principal.executor_id is not None:
            return job.executor_id == principal.executor_id
        return job.lease_principal_id == principal.id

    async def _open(self, file_id: str) -> Download:
        stored = await self._store.get_file(file_id)
        if stored is None or stored.expires_at < time.time():
            raise NotFound("file not found", file_id=file_id)
        return Download(stored, self._store.read_file)

    async def _job(self, job_id: str) -> Job:
        job = await self._store.get_job(job_id)
        if job is None:
            raise NotFound("job not found", job_id=job_id)
        return job

    async def upload_artifact(
        self,
        principal: Principal,
        job_id: str,
        path: str,
        worker: WorkerCall,
        pieces: AsyncIterable[bytes],
    ) -> StoredFile:
        """Only the attempt holding the job's lease stores artifacts (409 otherwise)."""
        ref = self._leases.fence(principal, worker.executor_id, worker.attempt)
        rel = stored_path(path)
        job = await self._job(job_id)
        check_fence(job, ref)
        now = time.time()
        new = NewFile(
            id=str(uuid.uuid4()),
            owner_id=job.owner_id,
            filename=rel.name,
            content_type=DEFAULT_CONTENT_TYPE,
            created_at=now,
            expires_at=now + self._ttl,
            job_id=job_id,
            attempt=job.attempt,
            path=str(rel),
        )
        return await self._store.create_file(new, pieces, self.max_upload, fence=ref)

    async def artifacts(self, principal: Principal, job_id: str) -> list[StoredFile]:
        require(principal, Action.READ)
        await self._job(job_id)
        return await self._store.list_artifacts(job_id)

    async def download_artifact(
        self, principal: Principal, job_id: str, artifact_id: str
    ) -> Download:
        require(principal, Action.READ)
        download = await self._open(artifact_id)
        if download.file.job_id != job_id:
            raise NotFound("artifact not found", job_id=job_id, artifact_id=artifact_id)
        return download
