"""Password hashing: Argon2id with the library's current parameters, on a bounded pool.

Passwords have little entropy, so unlike API tokens they need a slow,
memory-hard hash. ``verify`` also checks a dummy hash when the account is
unknown, so a login takes about as long whether or not the email exists.

Each hash holds 64 MiB and a core for tens of milliseconds. Run on the event
loop's default executor, a burst of logins would take every one of its threads
(starving other ``to_thread`` work) and hold 64 MiB per thread at once. So the
hashing runs only through ``offload``, on its own pool of about one thread per
CPU: more threads would not finish sooner, only hold more memory. Logins past
that wait their turn in the pool's queue, which costs a few bytes each.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache, partial
from typing import ParamSpec, TypeVar

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

_HASHER = PasswordHasher()  # argon2id, RFC 9106 low-memory profile
# The memory ceiling is MAX_CONCURRENT_HASHES x 64 MiB, whatever the core count.
MAX_CONCURRENT_HASHES = 8

P = ParamSpec("P")
T = TypeVar("T")


def _pool_size() -> int:
    """The CPUs this process may run on (a container's cpuset, not the host's count)."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cpus = os.cpu_count() or 1
    return max(1, min(cpus, MAX_CONCURRENT_HASHES))


# One pool per process, shared by every AccountService and event loop in it: the
# CPUs and the memory it protects are per process. Threads start on first use.
POOL_SIZE = _pool_size()
_POOL = ThreadPoolExecutor(max_workers=POOL_SIZE, thread_name_prefix="corral-argon2")


async def offload(func: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """Run ``hash_password`` or ``verify_password`` on the bounded pool; callers queue."""
    return await asyncio.get_running_loop().run_in_executor(_POOL, partial(func, *args, **kwargs))


def hash_password(password: str) -> str:
    return _HASHER.hash(password)


@lru_cache(maxsize=1)
def _dummy_hash() -> str:
    return _HASHER.hash("corral-dummy-password")


def verify_password(stored_hash: str | None, password: str) -> bool:
    """True only when ``stored_hash`` exists and matches; ``None`` burns equal time."""
    try:
        return _HASHER.verify(stored_hash or _dummy_hash(), password) and stored_hash is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False
