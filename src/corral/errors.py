"""The one error tree of Corral.

Services raise these; each API dialect maps them to its own status codes and
error body in a single ``errors.py``. Routes never build HTTP errors by hand.

    CorralError
    ├── NotFound                  the object does not exist (or the caller may not see it)
    ├── InvalidInput              a field is missing, mistyped or out of range
    │   └── TooLarge              an upload exceeds the configured size limit
    ├── Conflict
    │   ├── InvalidTransition     the job's state does not allow the operation
    │   ├── StaleAttempt          the caller's attempt or lease is no longer current (fencing)
    │   ├── AlreadyExists         a unique name or id is taken
    │   └── IdempotencyMismatch   an Idempotency-Key was reused with a different body
    ├── AuthError
    │   ├── Unauthenticated       no credentials, or credentials that are not valid
    │   │   └── InvalidCredentials  a login's email and password do not match an active user
    │   └── Forbidden             valid credentials without the right to act
    ├── MethodNotAllowed          the path exists, but not with this HTTP method
    ├── RangeNotSatisfiable       no byte of the asked range lies in the file; ``size`` of it
    ├── RateLimited               the caller spent its request budget; ``retry_after`` seconds
    └── Unavailable               the storage cannot be reached; ``retry_after`` seconds

The two kinds that say "not now" rather than "no" carry ``retry_after``; every
face sends it as a ``Retry-After`` header (``CorralError.retry_after`` is None
on the others).
"""

from __future__ import annotations

from typing import Any


class CorralError(Exception):
    """Base of every error a Corral service raises on purpose."""

    retry_after: int | None = None  # seconds worth waiting before the same request again

    def __init__(self, message: str, **context: Any) -> None:
        super().__init__(message)
        self.message = message
        self.context: dict[str, Any] = context


class NotFound(CorralError):
    pass


class InvalidInput(CorralError):
    pass


class TooLarge(InvalidInput):
    pass


class Conflict(CorralError):
    pass


class InvalidTransition(Conflict):
    pass


class StaleAttempt(Conflict):
    pass


class AlreadyExists(Conflict):
    pass


class IdempotencyMismatch(Conflict):
    pass


class AuthError(CorralError):
    pass


class Unauthenticated(AuthError):
    pass


class InvalidCredentials(Unauthenticated):
    pass


class Forbidden(AuthError):
    pass


class MethodNotAllowed(CorralError):
    pass


class RangeNotSatisfiable(CorralError):
    """A byte range that starts at or past the end of the file (``size`` bytes): the
    answer says how long the file is, so the client can ask again sensibly."""

    def __init__(self, message: str, *, size: int, **context: Any) -> None:
        super().__init__(message, size=size, **context)
        self.size = size


class RateLimited(CorralError):
    """Raised before the work is done, so a refused request changed nothing.

    ``retry_after`` (whole seconds until the window resets) is also in the
    context, where every dialect's error body finds it.
    """

    def __init__(self, message: str, *, retry_after: int, **context: Any) -> None:
        super().__init__(message, retry_after=retry_after, **context)
        self.retry_after = retry_after


# A PostgreSQL restart takes a few seconds; a client asked to wait this long between
# tries rides it out without hammering a database that is starting up.
UNAVAILABLE_RETRY_AFTER = 2


class Unavailable(CorralError):
    """The database cannot be reached now: nothing was done, or (a commit cut off) the
    outcome is unknown, so only a request safe to repeat should be sent again."""

    def __init__(
        self, message: str, *, retry_after: int = UNAVAILABLE_RETRY_AFTER, **context: Any
    ) -> None:
        super().__init__(message, retry_after=retry_after, **context)
        self.retry_after = retry_after
