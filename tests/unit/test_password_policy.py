"""Issue 14, item 3: the one password rule, NIST SP 800-63B style (length, not
composition; common values refused)."""

from __future__ import annotations

import pytest

from corral.auth.password_policy import COMMON_PASSWORDS, MIN_PASSWORD_CHARS, problem


@pytest.mark.parametrize(
    ("password", "reason"),
    [
        ("", "at least 12 characters"),
        ("elevenchars", "at least 12 characters"),
        ("Password1234", "too common"),  # the list is compared case-insensitively
        ("zzzzzzzzzzzzzz", "too common"),  # one character repeated
        ("x" * 1025, "at most 1024 characters"),
    ],
)
def test_item3_weak_passwords_are_refused_with_the_reason(password: str, reason: str) -> None:
    found = problem(password)
    assert found is not None and reason in found


@pytest.mark.parametrize(
    "password", ["twelve-chars", "correct horse battery", "ünïcödé-pässwörd", "a" * 11 + "b"]
)
def test_item3_long_uncommon_passwords_pass_without_composition_rules(password: str) -> None:
    assert problem(password) is None


def test_item3_every_listed_password_would_pass_the_length_rule() -> None:
    """The list holds only values the length rule alone would let through."""
    assert min(len(p) for p in COMMON_PASSWORDS) >= MIN_PASSWORD_CHARS
    assert all(p == p.lower() for p in COMMON_PASSWORDS)
