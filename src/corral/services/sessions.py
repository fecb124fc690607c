"""TaskDriver's agent sessions: log in with a name and a project id, carry an opaque token.

A login must be earned: it presents an agent token of that project, or an
admin's credential (``policy.may_open_agent_session``). Only a project an admin
explicitly opened (``open_agent_login``) lets a bare name and project id in,
since every reader can list project ids. Every refusal (unknown or closed
project, agent logins switched off, a missing, wrong or foreign credential) is
the same 401, and a session can do no more than one agent's work in that
project (``Role.AGENT``, bound to its project and its agent name). The session
remembers its credential: the leases it takes belong to that credential.

Tokens are 256 random bits with their own prefix, so authentication knows
which table to look in; only their SHA-256 is stored. A session is read on
every request (a revocation works at once, on every replica), but its
``last_activity`` is written at most once a minute, so a busy agent does not
turn each of its reads into a write.
"""

from __future__ import annotations

import re
import secrets
import time
import uuid
from dataclasses import dataclass
from typing import TypeGuard

from corral.auth import tokens
from corral.auth.policy import lease_holder, may_open_agent_session
from corral.domain.principals import Principal, Role
from corral.domain.projects import ProjectStatus
from corral.domain.sessions import DEFAULT_SESSION_SECONDS, MAX_SESSION_SECONDS, AgentSession
from corral.errors import Forbidden, InvalidInput, Unauthenticated
from corral.store.base import Store

SESSION_PREFIX = "tds_"
ACTIVITY_EVERY = 60.0  # seconds between two writes of a session's last_activity
_AGENT_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,100}$")
REFUSED = "Invalid agent login"


def check_agent_name(name: str, field: str = "agentName") -> str:
    if not _AGENT_NAME.match(name):
        raise InvalidInput(
            "Agent name can only contain letters, numbers, hyphens, underscores and dots "
            "(1-100 characters)",
            field=field,
            value=name,
        )
    return name


def is_session_token(token: str | None) -> TypeGuard[str]:
    return token is not None and token.startswith(SESSION_PREFIX)


@dataclass(frozen=True, slots=True)
class IssuedSession:
    """A fresh login: the plain token is here and nowhere else, ever."""

    session: AgentSession
    token: str


class SessionService:
    def __init__(self, store: Store, lifetime: float = DEFAULT_SESSION_SECONDS) -> None:
        self._store = store
        self._lifetime = lifetime

    async def login(
        self, agent_name: str, project_id: str, credential: Principal | None
    ) -> IssuedSession:
        """``credential``: who the login's Bearer token speaks for (None: no token)."""
        check_agent_name(agent_name)
        project = await self._store.get_project(project_id)
        if project is None or project.status != ProjectStatus.ACTIVE or not project.agent_login:
            raise Unauthenticated(REFUSED)
        if credential is None:
            if not project.open_agent_login:
                raise Unauthenticated(REFUSED)
        elif not may_open_agent_session(credential, project.id):
            raise Unauthenticated(REFUSED)
        now = time.time()
        token = SESSION_PREFIX + secrets.token_urlsafe(32)
        session = AgentSession(
            id=f"session-{uuid.uuid4().hex}",
            token_hash=tokens.digest(token),
            agent_name=agent_name,
            project_id=project.id,
            created_at=now,
            expires_at=now + self._lifetime,
            last_activity=now,
            credential_id=None if credential is None else lease_holder(credential),
        )
        await self._store.create_session(session)
        return IssuedSession(session, token)

    async def authenticate(self, token: str) -> Principal:
        session = await self._live(token)
        now = time.time()
        if now - session.last_activity >= ACTIVITY_EVERY:
            await self._store.touch_session(session.id, now)
        return Principal(
            id=session.id,
            name=session.agent_name,
            role=Role.AGENT,
            executor_id=session.agent_name,
            project_id=session.project_id,
            credential_id=session.credential_id,
        )

    async def describe(self, principal: Principal) -> AgentSession:
        return await self._own(principal)

    async def extend(self, principal: Principal, extend_by: float) -> AgentSession:
        """Move the expiry later by ``extend_by`` seconds, never past ``MAX_SESSION_SECONDS``
        after the login: a stolen token cannot be kept alive for ever."""
        if not 0 < extend_by <= MAX_SESSION_SECONDS:
            raise InvalidInput(
                f"extendBy must be between 1 and {int(MAX_SESSION_SECONDS)} seconds",
                field="extendBy",
                value=extend_by,
            )
        session = await self._own(principal)
        now = time.time()
        expires = min(session.expires_at + extend_by, session.created_at + MAX_SESSION_SECONDS)
        await self._store.touch_session(session.id, now, expires)
        return await self._own(principal)

    async def logout(self, token: str) -> AgentSession:
        session = await self._live(token)
        await self._store.revoke_session(session.id)
        return session

    async def live_count(self) -> int:
        return await self._store.count_live_sessions(time.time())

    async def _live(self, token: str) -> AgentSession:
        session = await self._store.find_session(tokens.digest(token))
        if session is None or not session.live(time.time()):
            raise Unauthenticated("invalid, expired or revoked session token")
        return session

    async def _own(self, principal: Principal) -> AgentSession:
        if principal.role != Role.AGENT:
            raise Forbidden("only an agent session has session details; log in as an agent")
        session = await self._store.get_session(principal.id)
        if session is None:  # an agent token: it has no session to describe
            raise Forbidden("only an agent session has session details; log in as an agent")
        if not session.live(time.time()):
            raise Unauthenticated("invalid, expired or revoked session token")
        return session
