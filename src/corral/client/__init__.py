"""Corral's Python SDK: typed answers, typed errors, sync and async.

from corral.client import CorralClient

with CorralClient() as corral:  # CORRAL_URL / CORRAL_TOKEN, else the `corral login`
    job = corral.submit(command="echo hello")
    done = corral.wait(job.id, timeout=60)
    print(done.status, done.exit_code, done.stdout)

``AsyncCorralClient`` is the same with ``await``; ``JsonClient`` answers the
server's JSON as dicts (the CLI prints it with ``--json``). docs/sdk.md has more.

The names below are loaded on first use (PEP 562): the `corral` command imports
``corral.client.credentials`` or ``JsonClient`` alone and should not pay for
httpx's async side and the Pydantic models of the typed clients on every start.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from corral.client.aio import AsyncCorralClient
    from corral.client.client import JsonClient
    from corral.client.errors import (
        Conflict,
        CorralAPIError,
        CorralConnectionError,
        Forbidden,
        InvalidRequest,
        NotFound,
        RateLimited,
        ServerError,
        Unauthorized,
        WaitTimeout,
    )
    from corral.client.events import EndEvent, OutputEvent
    from corral.client.models import (
        Attempt,
        Cancellation,
        Executor,
        Job,
        OutputPage,
        StoredFile,
    )
    from corral.client.sync import CorralClient

__all__ = [  # spelled out for type checkers; _HOMES says where each one lives
    "AsyncCorralClient",
    "Attempt",
    "Cancellation",
    "Conflict",
    "CorralAPIError",
    "CorralClient",
    "CorralConnectionError",
    "EndEvent",
    "Executor",
    "Forbidden",
    "InvalidRequest",
    "Job",
    "JsonClient",
    "NotFound",
    "OutputEvent",
    "OutputPage",
    "RateLimited",
    "ServerError",
    "StoredFile",
    "Unauthorized",
    "WaitTimeout",
]
# Each public name and the module that defines it.
_HOMES = {
    "AsyncCorralClient": "aio",
    "Attempt": "models",
    "Cancellation": "models",
    "Conflict": "errors",
    "CorralAPIError": "errors",
    "CorralClient": "sync",
    "CorralConnectionError": "errors",
    "EndEvent": "events",
    "Executor": "models",
    "Forbidden": "errors",
    "InvalidRequest": "errors",
    "Job": "models",
    "JsonClient": "client",
    "NotFound": "errors",
    "OutputEvent": "events",
    "OutputPage": "models",
    "RateLimited": "errors",
    "ServerError": "errors",
    "StoredFile": "models",
    "Unauthorized": "errors",
    "WaitTimeout": "errors",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{home}"), name)
    globals()[name] = value  # the next lookup skips this function
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_HOMES])
