"""Login sessions as HS256 JWTs (PyJWT), for the dialects whose clients expect a JWT.

The algorithm is pinned on decode, so a token claiming ``alg: none`` or another
algorithm is refused rather than trusted. Every token carries ``exp``, ``iat``,
``sub`` (the user id) and ``jti`` (the handle a logout revokes); a token lacking
any of them is refused. The role is not trusted from the token: the services
read the user's current role on every request. ``sep`` is the user's session
epoch at login: a password reset or disabling the user moves the epoch on, so
every earlier token stops at once, however close in time (``iat`` has whole
seconds only). Tokens from before epochs existed read as epoch 0.
"""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass

import jwt

ALGORITHM = "HS256"
LIFETIME_SECONDS = 24 * 3600
LIFETIME_LABEL = "24h"  # what CMD Executor's login answers as ``expiresIn``
SECRET_BYTES = 32
REQUIRED = ["exp", "iat", "sub", "jti"]


class InvalidToken(Exception):
    """The token is malformed, forged, expired or lacks a required claim."""


@dataclass(frozen=True, slots=True)
class Claims:
    sub: str
    jti: str
    iat: float
    exp: float
    epoch: int = 0


def new_secret() -> str:
    """A fresh signing secret: 32 random bytes, hex-encoded for storage."""
    return secrets.token_hex(SECRET_BYTES)


def issue(secret: bytes, user_id: str, now: float, epoch: int = 0) -> tuple[str, Claims]:
    claims = Claims(
        sub=user_id, jti=uuid.uuid4().hex, iat=now, exp=now + LIFETIME_SECONDS, epoch=epoch
    )
    payload = {
        "sub": claims.sub,
        "jti": claims.jti,
        "iat": int(now),
        "exp": int(claims.exp),
        "sep": epoch,
    }
    return jwt.encode(payload, secret, algorithm=ALGORITHM), claims


def decode(secret: bytes, token: str, now: float, leeway: float = 0.0) -> Claims:
    """Verify signature and claims at time ``now``; ``leeway`` extends the expiry."""
    try:
        payload = jwt.decode(
            token,
            secret,
            algorithms=[ALGORITHM],
            options={"require": REQUIRED, "verify_exp": False, "verify_iat": False},
        )
    except jwt.PyJWTError as exc:
        raise InvalidToken(str(exc)) from None
    sub, jti, iat, exp = (payload[name] for name in ("sub", "jti", "iat", "exp"))
    if not (isinstance(sub, str) and isinstance(jti, str)):
        raise InvalidToken("sub and jti must be strings")
    if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in (iat, exp)):
        raise InvalidToken("iat and exp must be numbers")
    epoch = payload.get("sep", 0)
    if not isinstance(epoch, int) or isinstance(epoch, bool):
        raise InvalidToken("sep must be an integer")
    claims = Claims(sub=sub, jti=jti, iat=float(iat), exp=float(exp), epoch=epoch)
    # Expiry is checked here against the caller's clock, so tests move time instead of sleeping.
    if claims.exp + leeway <= now:
        raise InvalidToken("token expired")
    return claims


def looks_like_jwt(token: str) -> bool:
    """Opaque API tokens start with ``crl_`` and have no dots; JWTs have exactly two."""
    return token.count(".") == 2
