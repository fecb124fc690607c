"""Admin user management on the native API: list, create and change login users.

Answers render a ``UserView``, which has no password hash to leak. Bodies
refuse unknown fields, so a misspelt ``"disabeld": true`` is a 400 rather
than a silent no-op on an account.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response
from pydantic import ConfigDict, Field, StrictBool

from corral.api.deps import PrincipalDep, ServicesDep
from corral.api.native.errors import NativeRoute
from corral.api.native.schemas import Body
from corral.api.timefmt import iso
from corral.auth.password_policy import MAX_PASSWORD_CHARS
from corral.services.accounts import UserView

router = APIRouter(prefix="/api/v1/admin/users", route_class=NativeRoute, tags=["users"])


class NewUser(Body):
    model_config = ConfigDict(extra="forbid")

    email: str = Field(max_length=320)
    password: str = Field(max_length=MAX_PASSWORD_CHARS)
    role: str


class UserChange(Body):
    model_config = ConfigDict(extra="forbid")

    role: str | None = None
    disabled: StrictBool | None = None
    password: str | None = Field(default=None, max_length=MAX_PASSWORD_CHARS)


def _user(view: UserView) -> dict[str, Any]:
    return {
        "id": view.id,
        "email": view.email,
        "role": view.role,
        "disabled": view.disabled,
        "created_at": iso(view.created_at),
    }


@router.get("")
async def list_users(
    services: ServicesDep, principal: PrincipalDep, response: Response
) -> list[dict[str, Any]]:
    users = await services.accounts.list_users(principal)
    response.headers["X-Total-Count"] = str(len(users))
    return [_user(u) for u in users]


@router.post("", status_code=201)
async def create_user(
    body: NewUser, services: ServicesDep, principal: PrincipalDep
) -> dict[str, Any]:
    view = await services.accounts.create_user(principal, body.email, body.password, body.role)
    return _user(view)


@router.patch("/{user_id}")
async def change_user(
    user_id: str, body: UserChange, services: ServicesDep, principal: PrincipalDep
) -> dict[str, Any]:
    view = await services.accounts.update_user(
        principal, user_id, role=body.role, disabled=body.disabled, password=body.password
    )
    return _user(view)
