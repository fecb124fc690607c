"""TaskDriver's agent sessions: a named agent working in one project.

The document's login takes only ``agentName`` and ``projectId``: the project id
is the capability. A session token is therefore scoped to that project's agent
operations (next task, complete, fail, extend a lease, peek) and nothing else,
and an admin can switch agent logins off per project.
"""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_SESSION_SECONDS = 3 * 3600.0
MAX_SESSION_SECONDS = 7 * 86400.0


@dataclass(frozen=True, slots=True)
class AgentSession:
    id: str
    token_hash: str
    agent_name: str
    project_id: str
    created_at: float
    expires_at: float
    last_activity: float
    revoked: bool = False
    # The token or account the login presented (None: an open login). Leases belong to it,
    # so any session earned with the same credential may resume them, and no other.
    credential_id: str | None = None

    def live(self, now: float) -> bool:
        return not self.revoked and now < self.expires_at
