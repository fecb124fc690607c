"""What makes a password acceptable, in the spirit of NIST SP 800-63B section 5.1.1.2.

Length is what protects a password, so the rule is a minimum length (12
characters) rather than composition rules (a digit, a symbol...) that people
satisfy predictably. 800-63B also asks to refuse values known to be commonly
used; we carry a short list of the most common passwords that are long enough
to pass the length rule, plus a check for one character repeated. The list is
short on purpose: it catches the obvious choices without shipping a breach
corpus. ``problem`` is pure and returns the reason a password is refused, so
every face (CLI, API, dashboard) shows the same message.
"""

from __future__ import annotations

MIN_PASSWORD_CHARS = 12
MAX_PASSWORD_CHARS = 1024  # Argon2 pre-hashes any length; this only keeps bodies honest

# Lower-cased; compared after lower-casing the candidate.
COMMON_PASSWORDS = frozenset(
    {
        "000000000000",
        "111111111111",
        "123123123123",
        "123456789012",
        "1234567890123",
        "123456789abc",
        "1q2w3e4r5t6y",
        "1qaz2wsx3edc",
        "abc123abc123",
        "abcdefghijkl",
        "administrator",
        "baseball1234",
        "changeme1234",
        "corralcorral",
        "correcthorsebatterystaple",
        "dragon123456",
        "football1234",
        "iloveyou1234",
        "letmein12345",
        "letmeinletmein",
        "master123456",
        "monkey123456",
        "p@ssw0rd1234",
        "p@ssword1234",
        "passw0rd1234",
        "password1234",
        "password12345",
        "password123456",
        "password!234",
        "passwordpassword",
        "princess1234",
        "qazwsxedcrfv",
        "qwerty123456",
        "qwertyqwerty",
        "qwertyuiop12",
        "qwertyuiop123",
        "qwertyuiopasdf",
        "sunshine1234",
        "superman1234",
        "trustno1trustno1",
        "welcome12345",
        "welcome123456",
        "zaq12wsxcde3",
    }
)


def problem(password: str) -> str | None:
    """Why ``password`` is refused, or None when it is acceptable."""
    if len(password) < MIN_PASSWORD_CHARS:
        return f"password must be at least {MIN_PASSWORD_CHARS} characters"
    if len(password) > MAX_PASSWORD_CHARS:
        return f"password must be at most {MAX_PASSWORD_CHARS} characters"
    if password.lower() in COMMON_PASSWORDS or len(set(password)) == 1:
        return "password is too common: choose a longer or less predictable one"
    return None
