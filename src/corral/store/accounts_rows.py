"""User and agent session rows <-> domain, shared by both adapters (see ``rows``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from corral.domain.sessions import AgentSession
from corral.store.accounts_port import UserRecord


def user_from_row(row: Mapping[str, Any]) -> UserRecord:
    return UserRecord(
        id=row["id"],
        email=row["email"],
        password_hash=row["password_hash"],
        role=row["role"],
        created_at=row["created_at"],
        disabled=bool(row["disabled"]),
        sessions_after=float(row["sessions_after"]),
        session_epoch=int(row["session_epoch"]),
    )


SESSION_COLUMNS = (
    "id, token_hash, agent_name, project_id, created_at, expires_at, last_activity, revoked, "
    "credential_id"
)


def session_from_row(row: Any) -> AgentSession:
    return AgentSession(
        id=row["id"],
        token_hash=row["token_hash"],
        agent_name=row["agent_name"],
        project_id=row["project_id"],
        created_at=row["created_at"],
        expires_at=row["expires_at"],
        last_activity=row["last_activity"],
        revoked=bool(row["revoked"]),
        credential_id=row["credential_id"],
    )
