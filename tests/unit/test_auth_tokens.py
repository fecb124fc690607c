"""Passwords (Argon2id) and login JWTs (HS256, pinned, all claims required)."""

from __future__ import annotations

import base64
import json

import jwt
import pytest

from corral.auth import jwt_tokens, passwords
from corral.auth.jwt_tokens import InvalidToken

SECRET = b"k" * 32
NOW = 1_700_000_000.0


def _b64(data: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def test_password_round_trip_and_mismatch() -> None:
    stored = passwords.hash_password("s3cret")
    assert stored.startswith("$argon2id$")
    assert passwords.verify_password(stored, "s3cret")
    assert not passwords.verify_password(stored, "wrong")
    assert not passwords.verify_password("not-a-hash", "s3cret")


def test_unknown_user_still_fails_after_hashing() -> None:
    assert not passwords.verify_password(None, "corral-dummy-password")


def test_issue_and_decode() -> None:
    token, claims = jwt_tokens.issue(SECRET, "user-1", NOW)
    decoded = jwt_tokens.decode(SECRET, token, NOW + 60)
    assert decoded.sub == "user-1" and decoded.jti == claims.jti
    assert decoded.exp - decoded.iat == jwt_tokens.LIFETIME_SECONDS
    assert jwt.get_unverified_header(token)["alg"] == "HS256"
    assert jwt_tokens.looks_like_jwt(token) and not jwt_tokens.looks_like_jwt("crl_abc")


def test_expired_token_refused_unless_within_leeway() -> None:
    token, _ = jwt_tokens.issue(SECRET, "user-1", NOW)
    later = NOW + jwt_tokens.LIFETIME_SECONDS + 1
    with pytest.raises(InvalidToken, match="expired"):
        jwt_tokens.decode(SECRET, token, later)
    assert jwt_tokens.decode(SECRET, token, later, leeway=3600).sub == "user-1"


def test_alg_none_refused() -> None:
    payload = {"sub": "user-1", "jti": "j", "iat": int(NOW), "exp": int(NOW) + 60}
    unsigned = f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(payload)}."
    with pytest.raises(InvalidToken):
        jwt_tokens.decode(SECRET, unsigned, NOW)


def test_other_algorithm_refused() -> None:
    payload = {"sub": "user-1", "jti": "j", "iat": int(NOW), "exp": int(NOW) + 60}
    token = jwt.encode(payload, SECRET * 2, algorithm="HS512")
    with pytest.raises(InvalidToken):
        jwt_tokens.decode(SECRET * 2, token, NOW)


def test_tampered_signature_and_payload_refused() -> None:
    token, _ = jwt_tokens.issue(SECRET, "user-1", NOW)
    header, body, signature = token.split(".")
    flipped = signature[:-2] + ("AA" if signature[-2:] != "AA" else "BB")
    with pytest.raises(InvalidToken):
        jwt_tokens.decode(SECRET, f"{header}.{body}.{flipped}", NOW)
    forged = _b64({"sub": "admin", "jti": "j", "iat": int(NOW), "exp": int(NOW) + 60})
    with pytest.raises(InvalidToken):
        jwt_tokens.decode(SECRET, f"{header}.{forged}.{signature}", NOW)
    with pytest.raises(InvalidToken):
        jwt_tokens.decode(b"x" * 32, token, NOW)


@pytest.mark.parametrize("missing", ["exp", "iat", "sub", "jti"])
def test_missing_claim_refused(missing: str) -> None:
    payload = {"sub": "user-1", "jti": "j", "iat": int(NOW), "exp": int(NOW) + 60}
    del payload[missing]
    token = jwt.encode(payload, SECRET, algorithm="HS256")
    with pytest.raises(InvalidToken):
        jwt_tokens.decode(SECRET, token, NOW)


def test_mistyped_claims_refused() -> None:
    payload = {"sub": 7, "jti": "j", "iat": int(NOW), "exp": int(NOW) + 60}
    token = jwt.encode(payload, SECRET, algorithm="HS256")
    with pytest.raises(InvalidToken):
        jwt_tokens.decode(SECRET, token, NOW)


def test_new_secret_is_32_random_bytes() -> None:
    first, second = jwt_tokens.new_secret(), jwt_tokens.new_secret()
    assert len(bytes.fromhex(first)) == 32 and first != second
