"""TaskDriver's sessions: agent login and logout (on CMD Executor's shared paths) and
``/api/auth/session``.

``POST /api/auth/login`` and ``/logout`` are one route each, owned by the CMD
dialect, which hands a body naming ``agentName``/``projectId`` (or a ``tds_``
token) to the functions here; they answer, and fail, in TaskDriver's shape.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic.alias_generators import to_camel

from corral import errors
from corral.api.deps import PrincipalDep, ServicesDep, bearer_token
from corral.api.dialects.taskdriver.errors import TaskDriverRoute, from_domain, from_validation
from corral.api.ratelimit import rate_limits_of
from corral.api.responses import JSON
from corral.api.timefmt import iso
from corral.auth.jwt_tokens import looks_like_jwt
from corral.domain.principals import Principal
from corral.domain.sessions import MAX_SESSION_SECONDS, AgentSession
from corral.services.container import Services
from corral.services.sessions import REFUSED, is_session_token

router = APIRouter(prefix="/api/auth", route_class=TaskDriverRoute, tags=["taskdriver"])

AGENT_LOGIN_KEYS = frozenset({"agentName", "projectId"})


class _Camel(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)


class AgentLogin(_Camel):
    agent_name: str = Field(min_length=1, max_length=100)
    project_id: str = Field(min_length=1, max_length=200)


class SessionUpdate(_Camel):
    extend_by: int = Field(gt=0, le=int(MAX_SESSION_SECONDS))


def is_agent_login(body: dict[str, Any]) -> bool:
    """TaskDriver's login names an agent and a project; CMD Executor's an email."""
    return "email" not in body and bool(AGENT_LOGIN_KEYS & body.keys())


def session_view(session: AgentSession) -> dict[str, Any]:
    return {
        "sessionId": session.id,
        "agentName": session.agent_name,
        "projectId": session.project_id,
        "createdAt": iso(session.created_at),
        "expiresAt": iso(session.expires_at),
        "lastActivity": iso(session.last_activity),
    }


async def login_credential(request: Request, services: Services) -> Principal | None:
    """Who the login's ``Authorization: Bearer`` token speaks for; None without one.

    Only the header counts, never the login cookie: a browser would send that cookie
    along with a login forged by another site. A token that does not authenticate,
    or an agent session's own token, is refused like any other bad login.
    """
    token = bearer_token(request)
    if token is None:
        return None
    try:
        if is_session_token(token):
            raise errors.Unauthenticated("a session token does not open another session")
        if looks_like_jwt(token):
            return await services.accounts.authenticate(token)
        return await services.tokens.authenticate(token)
    except errors.Unauthenticated:
        raise errors.Unauthenticated(REFUSED) from None


async def agent_login(body: dict[str, Any], request: Request, services: Services) -> JSON:
    """Refused logins are counted per client IP, as CMD Executor's are: guessing tokens
    costs the same as guessing passwords, and an address over budget learns nothing."""
    try:
        async with rate_limits_of(request).login_attempt(request, None):
            login = AgentLogin.model_validate(body)
            credential = await login_credential(request, services)
            issued = await services.sessions.login(login.agent_name, login.project_id, credential)
    except ValidationError as exc:
        return from_validation(RequestValidationError(exc.errors()))
    except errors.CorralError as exc:
        return from_domain(exc)
    data = {
        "sessionId": issued.session.id,
        "token": issued.token,
        "expiresAt": iso(issued.session.expires_at),
    }
    return JSON({"success": True, "data": data})


async def agent_logout(token: str, services: Services) -> JSON:
    try:
        session = await services.sessions.logout(token)
    except errors.CorralError as exc:
        return from_domain(exc)
    return JSON({"success": True, "data": {**session_view(session), "loggedOut": True}})


@router.get("/session")
async def get_session(services: ServicesDep, principal: PrincipalDep) -> JSON:
    session = await services.sessions.describe(principal)
    return JSON({"success": True, "data": session_view(session)})


@router.put("/session")
async def update_session(
    body: SessionUpdate, services: ServicesDep, principal: PrincipalDep
) -> JSON:
    session = await services.sessions.extend(principal, body.extend_by)
    return JSON({"success": True, "data": session_view(session)})
