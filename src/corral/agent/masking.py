"""Replace a job's secret values with ``***`` in its output before it leaves the worker.

As GitHub Actions does for its secrets: the worker knows the job's ``secret_env``
values and blanks every verbatim occurrence in stdout and stderr, so they are never
sent, spooled or stored. Output arrives in pipe-sized pieces, so a value can be cut
in two by a read; each stream keeps back the longest end of what it has seen that
could still be the start of a secret (never more than the longest secret less one
byte) and sends it on with the next piece, or at end of stream.

What is caught: the exact bytes of each value (UTF-8), anywhere in a stream, also
split across reads; each line of a multi-line value on its own.

What is not (docs/native-api.md says the same to users): a value shorter than
``MIN_SECRET`` bytes (masking ``1`` or ``ab`` would shred ordinary output); any
transformation of the value (base64, hex, URL or JSON escaping, another encoding,
upper case, reversed, one character per line); a value split between stdout and
stderr; files the job writes (artifacts) and anything it sends elsewhere itself.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

MASK = b"***"
MIN_SECRET = 4  # bytes: shorter values are not masked


def secret_patterns(values: Iterable[str]) -> list[bytes]:
    """The byte strings to blank: each value, and each line of a multi-line value, that
    is at least ``MIN_SECRET`` bytes long, longest first (so a longer secret that
    contains a shorter one is blanked whole)."""
    found: set[bytes] = set()
    for value in values:
        for piece in (value, *value.splitlines()):
            data = piece.encode()
            if len(data) >= MIN_SECRET:
                found.add(data)
    return sorted(found, key=lambda p: (-len(p), p))


class SecretMasker:
    """Masks one stream; ``feed`` returns what may be passed on now, ``flush`` the rest."""

    def __init__(self, patterns: list[bytes]) -> None:
        self._patterns = patterns
        self._regex = re.compile(b"|".join(re.escape(p) for p in patterns)) if patterns else None
        self._held = b""

    @property
    def active(self) -> bool:
        return self._regex is not None

    def feed(self, data: bytes) -> bytes:
        if self._regex is None:
            return data
        text = self._regex.sub(MASK, self._held + data)
        keep = self._partial_tail(text)
        self._held = text[len(text) - keep :] if keep else b""
        return text[: len(text) - keep]

    def flush(self) -> bytes:
        """End of stream: what was held back cannot become a secret any more."""
        held, self._held = self._held, b""
        return held

    def _partial_tail(self, text: bytes) -> int:
        """The length of the longest end of ``text`` that begins some secret (shorter
        than the secret itself, or it would have been masked).

        Candidates are where a secret's first byte occurs within its length of the end,
        earliest (longest) first, so the first one that fits is the answer for that
        secret: a few C-speed ``find`` and compares per read, even for a 32 KiB key."""
        longest = 0
        for pattern in self._patterns:
            stop = len(text) - longest  # a start past here gives nothing longer
            pos = text.find(pattern[:1], max(len(text) - len(pattern) + 1, 0), stop)
            while pos != -1:
                if pattern.startswith(text[pos:]):
                    longest = len(text) - pos
                    break
                pos = text.find(pattern[:1], pos + 1, stop)
        return longest
