"""Who is calling: a principal with one role."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Role(StrEnum):
    ADMIN = "admin"
    SUBMITTER = "submitter"
    VIEWER = "viewer"
    WORKER = "worker"
    AGENT = "agent"  # a TaskDriver session: one named agent in one project


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated caller. ``id`` scopes idempotency keys and owns jobs.

    ``executor_id`` binds a worker token to one executor: it may act only as that
    executor (CMD Executor hands out such tokens when a worker registers).
    ``project_id`` binds an agent session, or an agent token, to one project's tasks.
    ``credential_id`` is, for an agent session, the token or account its login
    presented (None for an open login): the leases it takes belong to that
    credential, so only sessions earned with the same one may resume them.
    """

    id: str
    name: str
    role: Role
    executor_id: str | None = None
    project_id: str | None = None
    credential_id: str | None = None
