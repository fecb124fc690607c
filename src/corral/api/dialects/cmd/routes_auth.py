"""CMD Executor's ``/api/auth``: login, logout and refresh with email/password JWTs.

Login answers with the token in the body and also in the ``auth_token`` cookie
(HttpOnly, SameSite=Lax, Secure over HTTPS), which browsers then send back.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel

from corral.api.deps import AUTH_COOKIE, ServicesDep, presented_token
from corral.api.dialects.cmd.errors import CmdRoute
from corral.api.ratelimit import rate_limits_of
from corral.api.responses import JSON
from corral.auth.jwt_tokens import LIFETIME_LABEL, LIFETIME_SECONDS
from corral.errors import Unauthenticated

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


async def login_budget(request: Request) -> None:
    """Spend a login attempt per client IP and per email before any password is checked.

    Runs after FastAPI has read the body, so the email comes from its cached JSON;
    a body without one still spends the IP's budget.
    """
    try:
        data = await request.json()
    except ValueError:
        data = None
    email = data.get("email") if isinstance(data, dict) else None
    limits = rate_limits_of(request)
    await limits.login_attempt(request, email if isinstance(email, str) else None)


@router.post("/login", dependencies=[Depends(login_budget)])
async def login(body: LoginBody, request: Request, services: ServicesDep) -> JSON:
    session = await services.accounts.login(body.email, body.password)
    user = {"id": session.user.id, "email": session.user.email, "role": session.user.role}
    answer = {"success": True, "token": session.token, "user": user, "expiresIn": LIFETIME_LABEL}
    return _with_cookie(answer, session.token, request)


@router.post("/logout")
async def logout(request: Request, services: ServicesDep) -> JSON:
    await services.accounts.logout(_token(request))
    response = JSON({"success": True, "message": "Logged out successfully"})
    response.delete_cookie(AUTH_COOKIE, httponly=True, samesite="lax")
    return response


@router.post("/refresh")
async def refresh(request: Request, services: ServicesDep) -> JSON:
    session = await services.accounts.refresh(_token(request))
    return _with_cookie({"success": True, "token": session.token}, session.token, request)
