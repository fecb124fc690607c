"""Password hashing: Argon2id with the library's current parameters.

Passwords have little entropy, so unlike API tokens they need a slow,
memory-hard hash. ``verify`` also checks a dummy hash when the account is
unknown, so a login takes about as long whether or not the email exists.
"""

from __future__ import annotations

from functools import lru_cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

_HASHER = PasswordHasher()  # argon2id, RFC 9106 low-memory profile


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
