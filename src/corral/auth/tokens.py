"""Opaque API tokens: 256 random bits shown once, stored only as a SHA-256 digest.

A slow password hash buys nothing for a secret with full entropy, and a fast
digest keeps authentication off the hot path's profile.
"""

from __future__ import annotations

import hashlib
import secrets

PREFIX = "crl_"


def new_token() -> str:
    return PREFIX + secrets.token_urlsafe(32)


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
