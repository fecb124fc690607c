"""The one ``Content-Disposition`` header every dialect's download sends (RFC 6266).

A stored name is cleaned at upload (``domain/files.py``), but a header is the last
place where a control character would do harm (a CR/LF there ends the header and
the server refuses to send the answer at all), so this builder is safe for any
string it is given, rows stored before the cleaning included:

- ``filename="..."`` keeps printable ASCII; anything else, ``"`` and ``\\``
  become ``_``: every client understands it and nothing can escape the quotes;
- when that fallback changed the name, the exact name follows as RFC 5987's
  ``filename*=UTF-8''...``, percent-encoded by ``urllib.parse.quote`` (which
  leaves only unreserved characters as they are), so clients that read it
  (every current browser, curl ``-J``) save the real name.
"""

from __future__ import annotations

from urllib.parse import quote

_SAFE_ASCII = frozenset(chr(c) for c in range(0x20, 0x7F)) - {'"', "\\"}


def attachment(filename: str) -> str:
    """``attachment; filename="..."`` plus ``filename*`` when the plain form lost anything."""
    fallback = "".join(c if c in _SAFE_ASCII else "_" for c in filename)
    header = f'attachment; filename="{fallback}"'
    if fallback != filename:
        header += f"; filename*=UTF-8''{quote(filename, safe='')}"
    return header
