"""Corral's Python SDK: typed answers, typed errors, sync and async.

from corral.client import CorralClient

with CorralClient() as corral:  # CORRAL_URL / CORRAL_TOKEN, else the `corral login`
    job = corral.submit(command="echo hello")
    done = corral.wait(job.id, timeout=60)
    print(done.status, done.exit_code, done.stdout)

``AsyncCorralClient`` is the same with ``await``; ``JsonClient`` answers the
server's JSON as dicts (the CLI prints it with ``--json``). docs/sdk.md has more.
"""

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
from corral.client.models import (
    Attempt,
    Cancellation,
    EndEvent,
    Executor,
    Job,
    OutputEvent,
    OutputPage,
    StoredFile,
)
from corral.client.sync import CorralClient

__all__ = [
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
