"""CMD Executor's ``/api/auth``: login, logout and refresh with email/password JWTs.

TaskDriver logs its agents in and out on the same two paths; those requests are
told apart by their body or token and handed to ``taskdriver.routes_session``.

Login answers with the token in the body and also in the ``auth_token`` cookie
(HttpOnly, SameSite=Lax, Secure over HTTPS), which browsers then send back.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError

from corral.api.deps import AUTH_COOKIE, ServicesDep, presented_token
from corral.api.dialects.cmd.errors import CmdRoute
from corral.api.dialects.taskdriver.routes_session import agent_login, agent_logout, is_agent_login
from corral.api.ratelimit import rate_limits_of
from corral.api.responses import JSON
from corral.auth.jwt_tokens import LIFETIME_LABEL, LIFETIME_SECONDS
from corral.errors import Unauthenticated
from corral.services.sessions import is_session_token

router = APIRouter(prefix="/api/auth", route_class=CmdRoute, tags=["cmd-executor"])


class LoginBody(BaseModel):
    email: str
    password: str


def _token(request: Request) -> str:
    token = presented_token(request)
    if token is None:
        raise Unauthenticated("missing bearer token")
    return token


def _with_cookie(body: dict[str, Any], token: str, request: Request) -> JSON:
    response = JSON(body)
    response.set_cookie(
        AUTH_COOKIE,
        token,
        max_age=LIFETIME_SECONDS,
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
    )
    return response


def _credentials(body: dict[str, Any]) -> LoginBody:
    try:
        return LoginBody.model_validate(body)
    except ValidationError as exc:
        raise RequestValidationError(
            [{**e, "loc": ("body", *e["loc"])} for e in exc.errors()]
        ) from None


@router.post("/login")
async def login(
    body: Annotated[dict[str, Any], Body()], request: Request, services: ServicesDep
) -> JSON:
    """Two dialects share this path and the body says which one speaks: CMD Executor's
    ``{"email", "password"}`` or TaskDriver's ``{"agentName", "projectId"}``.

    Failed logins are counted per (email, client IP) and per client IP, and checked
    before any password is (``ratelimit.RateLimits.login_attempt``): an address over
    its budget learns nothing more, and nobody else is refused for its failures.
    """
    if is_agent_login(body):
        return await agent_login(body, request, services)
    email = body.get("email")
    limits = rate_limits_of(request)
    async with limits.login_attempt(request, email if isinstance(email, str) else None):
        credentials = _credentials(body)
        session = await services.accounts.login(credentials.email, credentials.password)
    user = {"id": session.user.id, "email": session.user.email, "role": session.user.role}
    answer = {"success": True, "token": session.token, "user": user, "expiresIn": LIFETIME_LABEL}
    return _with_cookie(answer, session.token, request)


@router.post("/logout")
async def logout(request: Request, services: ServicesDep) -> JSON:
    """Answered in the shape of the dialect that issued the token."""
    token = _token(request)
    if is_session_token(token):
        return await agent_logout(token, services)
    await services.accounts.logout(token)
    response = JSON({"success": True, "message": "Logged out successfully"})
    response.delete_cookie(AUTH_COOKIE, httponly=True, samesite="lax")
    return response


@router.post("/refresh")
async def refresh(request: Request, services: ServicesDep) -> JSON:
    session = await services.accounts.refresh(_token(request))
    return _with_cookie({"success": True, "token": session.token}, session.token, request)
