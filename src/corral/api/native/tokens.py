"""API tokens over HTTP: admins mint, list and revoke any token; a signed-in user mints,
lists and revokes personal tokens for themselves; ``/me`` says who a credential is.

Answers render a ``TokenView``: the secret appears once, in the answer that mints
it, and the hash never. A user asking to revoke another user's token is told it
does not exist, so ids of other people's tokens cannot be probed.
"""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, Request, Response

from corral.api.deps import PrincipalDep, ServicesDep, presented_token
from corral.api.native.errors import NativeRoute
from corral.api.native.schemas import NewPersonalToken, NewToken
from corral.api.timefmt import iso
from corral.auth.jwt_tokens import looks_like_jwt
from corral.services.tokens import TokenView
from corral.store.fleet_port import TokenRecord

router = APIRouter(prefix="/api/v1", route_class=NativeRoute, tags=["tokens"])


def _token(view: TokenView) -> dict[str, Any]:
    return {
        "id": view.id,
        "name": view.name,
        "role": view.role,
        "state": view.state(time.time()),
        "created_at": iso(view.created_at),
        "expires_at": iso(view.expires_at),
        "last_used_at": iso(view.last_used_at),
        "user_id": view.user_id,
        "project_id": view.project_id,
        "executor_id": view.executor_id,
    }


def _minted(record: TokenRecord, secret: str) -> dict[str, Any]:
    return _token(TokenView.of(record)) | {"token": secret}


def _listed(views: list[TokenView], response: Response) -> list[dict[str, Any]]:
    response.headers["X-Total-Count"] = str(len(views))
    return [_token(v) for v in views]


@router.post("/admin/tokens", status_code=201)
async def create_token(
    body: NewToken, services: ServicesDep, principal: PrincipalDep
) -> dict[str, Any]:
    """Mint an API token (admins only); the secret is in this answer and nowhere else."""
    record, secret = await services.tokens.create(
        principal, body.role, body.name, body.project_id, body.expires_in
    )
    return _minted(record, secret)


@router.get("/admin/tokens")
async def list_tokens(
    services: ServicesDep, principal: PrincipalDep, response: Response
) -> list[dict[str, Any]]:
    return _listed(await services.tokens.list_all(principal), response)


@router.delete("/admin/tokens/{token_id}", status_code=204)
async def revoke_token(token_id: str, services: ServicesDep, principal: PrincipalDep) -> Response:
    await services.tokens.revoke(principal, token_id)
    return Response(status_code=204)


@router.get("/me")
async def whoami(
    request: Request, services: ServicesDep, principal: PrincipalDep
) -> dict[str, Any]:
    """Who this credential speaks for, and (for an API token) which token it is."""
    answer: dict[str, Any] = {
        "id": principal.id,
        "name": principal.name,
        "role": principal.role.value,
        "credential": "login",
        "token": None,
    }
    secret = presented_token(request)
    if secret is not None and not looks_like_jwt(secret):
        view = await services.tokens.find(secret)
        answer["credential"] = "token"
        answer["token"] = _token(view) if view is not None else None
    return answer


@router.get("/me/tokens")
async def list_my_tokens(
    services: ServicesDep, principal: PrincipalDep, response: Response
) -> list[dict[str, Any]]:
    return _listed(await services.tokens.list_personal(principal), response)


@router.post("/me/tokens", status_code=201)
async def create_my_token(
    body: NewPersonalToken, services: ServicesDep, principal: PrincipalDep
) -> dict[str, Any]:
    """Mint a personal token for the signed-in user; the secret is shown only here."""
    record, secret = await services.tokens.create_personal(principal, body.name, body.expires_in)
    return _minted(record, secret)


@router.delete("/me/tokens/{token_id}", status_code=204)
async def revoke_my_token(
    token_id: str, services: ServicesDep, principal: PrincipalDep
) -> Response:
    await services.tokens.revoke_personal(principal, token_id)
    return Response(status_code=204)
