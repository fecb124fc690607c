"""FastAPI dependencies shared by every dialect: the services and the calling principal."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

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


async def get_principal(request: Request, services: ServicesDep) -> Principal:
    return await services.tokens.authenticate(bearer_token(request))


PrincipalDep = Annotated[Principal, Depends(get_principal)]
