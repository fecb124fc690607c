"""The fleet half of the storage port (``Store`` extends it): executors and API tokens."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from corral.domain.workers import Executor, ExecutorInfo


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


class FleetStore(Protocol):
    """What the fleet and token services need of a store."""

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
