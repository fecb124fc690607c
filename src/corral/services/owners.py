"""Who owns a job, in words a person reads: a user's email, or a token's name.

A job stores its owner as a principal id (a user's, an API token's or an agent
session's), which means nothing to a reader. Pages ask here for the names of the
owners they show; an id that is none of these stays as it is. A user's email and a
token's name never change, so names found are kept (a bounded cache): a job page's
live fragment, fetched again on every job event, does not list the tokens each time.
"""

from __future__ import annotations

from collections.abc import Iterable

from corral.auth.policy import Action, require
from corral.domain.principals import Principal
from corral.store.base import Store

CACHED = 4096


class OwnerService:
    def __init__(self, store: Store) -> None:
        self._store = store
        self._known: dict[str, str] = {}

    async def names(self, principal: Principal, owner_ids: Iterable[str]) -> dict[str, str]:
        """``{owner id: email, or "token NAME"}`` for the ids that name a user or a token."""
        require(principal, Action.READ)
        wanted = set(owner_ids)
        names = {oid: self._known[oid] for oid in wanted if oid in self._known}
        for owner_id in wanted - names.keys():
            user = await self._store.get_user(owner_id)
            if user is not None:
                names[owner_id] = user.email
        if wanted - names.keys():  # jobs submitted with an API token: tokens are few
            for token in await self._store.list_tokens():
                if token.id in wanted and token.id not in names:
                    names[token.id] = f"token {token.name}"
        if len(self._known) + len(names) > CACHED:
            self._known.clear()
        self._known.update(names)
        return names
