"""Which bytes of a download to send: RFC 9110's single byte ranges and ``If-Range``.

A client that lost a download part way asks for the rest (``Range: bytes=N-``)
and names the version it already holds part of (``If-Range: "<sha256>"``); a
file that changed meanwhile is sent whole, so the pieces never mix.

Only what a resuming client needs is honoured: one range, in any of its three
forms (``a-b``, ``a-``, ``-n``). The RFC lets a server ignore any ``Range``
header, and this one ignores those it does not parse, asks for several ranges
(a multipart answer no client here wants) or comes with an ``If-Range`` that is
not this file's strong entity tag: a weak tag never matches, and a date never
does either, since no ``Last-Modified`` is sent. A well-formed range that starts
at or past the end of the file is ``RangeNotSatisfiable`` (416).

Werkzeug's ``parse_range_header`` was the obvious candidate, but it refuses a
suffix longer than the file (the RFC sends the whole file) and its ``If-Range``
parser drops the ``W/`` that makes a tag weak; the grammar is small enough to
hold here exactly.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from corral.errors import RangeNotSatisfiable

# int-range ("a-" or "a-b") or suffix-range ("-n"); ASCII digits only.
_SPEC = re.compile(r"([0-9]*)-([0-9]*)")
_UNIT = "bytes="
_MAX_DIGITS = 30  # past any file; longer numbers are held at this many nines


@dataclass(frozen=True, slots=True)
class Span:
    """Bytes ``start`` up to ``stop`` (exclusive) of a file of ``size`` bytes."""

    start: int
    stop: int
    size: int

    @property
    def content_range(self) -> str:
        return f"bytes {self.start}-{self.stop - 1}/{self.size}"


def entity_tag(sha256: str) -> str:
    """A strong validator: two files with the same tag hold the same bytes."""
    return f'"{sha256}"'


def requested_span(
    range_header: str | None, if_range: str | None, size: int, etag: str
) -> Span | None:
    """The one range to send, or None: send the whole file with 200.

    Raises ``RangeNotSatisfiable`` for a single well-formed range that starts at
    or past ``size`` (or asks for the last zero bytes).
    """
    if range_header is None or (if_range is not None and if_range.strip() != etag):
        return None
    bounds = _single_range(range_header)
    if bounds is None:
        return None
    first, last = bounds
    if first is None:  # the last ``last`` bytes (never None here: "-" does not parse)
        if not last:
            raise RangeNotSatisfiable("the range asks for no bytes", size=size)
        # An empty file has no last bytes to name in a Content-Range: it is sent whole.
        return Span(max(size - last, 0), size, size) if size else None
    if first >= size:
        raise RangeNotSatisfiable(f"the range starts past the file's {size} bytes", size=size)
    stop = size if last is None else min(last + 1, size)
    return Span(first, stop, size)


def _single_range(header: str) -> tuple[int | None, int | None] | None:
    """``(first, last)`` of a header naming exactly one byte range (``first`` None for
    a suffix range, ``last`` None for an open one); None for anything else."""
    text = header.strip()
    if text[: len(_UNIT)].lower() != _UNIT:
        return None
    specs = [spec.strip() for spec in text[len(_UNIT) :].split(",")]
    specs = [spec for spec in specs if spec]  # the list syntax allows empty elements
    if len(specs) != 1:
        return None
    match = _SPEC.fullmatch(specs[0])
    if match is None or not any(match.groups()):
        return None
    first, last = (_number(group) for group in match.groups())
    if first is not None and last is not None and last < first:
        return None
    return first, last


def _number(digits: str) -> int | None:
    if not digits:
        return None
    digits = digits.lstrip("0") or "0"
    return int(digits) if len(digits) <= _MAX_DIGITS else 10**_MAX_DIGITS - 1
