"""FastAPI dependencies shared by every dialect: the services and the calling principal."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from corral.auth.jwt_tokens import looks_like_jwt
from corral.domain.principals import Principal
from corral.services.container import Services


async def get_services(request: Request) -> Services:
    """Async on purpose: FastAPI runs sync dependencies on a thread pool, a costly hop."""
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]


def bearer_token(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()


AUTH_COOKIE = "auth_token"  # CMD Executor's browser sessions carry the JWT here


def presented_token(request: Request) -> str | None:
    """The Bearer header wins; the login cookie is the fallback a browser sends."""
    return bearer_token(request) or request.cookies.get(AUTH_COOKIE) or None


async def get_principal(request: Request, services: ServicesDep) -> Principal:
    """Login JWTs resolve through the accounts, opaque ``crl_`` tokens as before."""
    token = presented_token(request)
    if token is not None and looks_like_jwt(token):
        return await services.accounts.authenticate(token)
    return await services.tokens.authenticate(token)


PrincipalDep = Annotated[Principal, Depends(get_principal)]
