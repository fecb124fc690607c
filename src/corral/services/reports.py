"""Reports from workers that follow a document rather than Corral's own protocol.

CMD Executor's workers name only the job (and their worker id): the lease they
hold is the fence, so a worker whose lease was reaped meanwhile gets a 409 and
writes nothing. Their final result may repeat the whole output they streamed
before, or add to it; either way the job's output ends up said once.
"""

from __future__ import annotations

from corral.domain.jobs import Job, Outcome
from corral.domain.principals import Principal
from corral.services.leasing import LeaseService
from corral.store.base import Store

STREAMS = ("stdout", "stderr")


class ReportService:
    def __init__(self, store: Store, leases: LeaseService, output_cap: int) -> None:
        self._store = store
        self._leases = leases
        self._output_cap = output_cap

    async def stream(
        self, principal: Principal, job_id: str, executor_id: str, stream: str, data: str
    ) -> None:
        """Append output; it also proves the worker alive, so the lease is renewed."""
        ref = self._leases.fence(principal, executor_id, None)
        await self._leases.append_output(job_id, ref, stream, data.encode())
        await self._leases.heartbeat(job_id, ref)

    async def finish(
        self,
        principal: Principal,
        job_id: str,
        executor_id: str,
        outcome: Outcome,
        output: dict[str, str],
    ) -> Job:
        ref = self._leases.fence(principal, executor_id, None)
        for stream in STREAMS:
            text = output.get(stream, "")
            if not text:
                continue
            stored = await self._store.read_output(job_id, stream, 0, self._output_cap)
            missing = _missing_part(stored.data.decode("utf-8", "replace"), text)
            if missing:
                await self._leases.append_output(job_id, ref, stream, missing.encode())
        return await self._leases.finish(job_id, ref, outcome)


def _missing_part(streamed: str, final: str) -> str:
    """What of ``final`` the stored stream lacks: the tail when ``final`` repeats what
    was streamed, all of it when it is new text (after a line break)."""
    if final.startswith(streamed):
        return final[len(streamed) :]
    if streamed.endswith(final):
        return ""
    separator = "" if not streamed or streamed.endswith("\n") else "\n"
    return separator + final
