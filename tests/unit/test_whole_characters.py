"""A follow stream never sends part of a UTF-8 character (``services/output.py``)."""

from __future__ import annotations

import pytest

from corral.services.output import whole_characters

TEXT = "x" + "é" * 3 + "€" + "😀" + "z"


@pytest.mark.parametrize("end", range(len(TEXT.encode()) + 1))
def test_a_cut_text_loses_only_the_character_it_ends_inside(end: int) -> None:
    cut = TEXT.encode()[:end]
    kept = whole_characters(cut)
    assert cut.startswith(kept) and len(cut) - len(kept) <= 3
    assert TEXT.startswith(kept.decode())  # strict: no half character left
    assert len(kept.decode()) == len(cut.decode(errors="ignore"))  # and no whole one lost


@pytest.mark.parametrize("data", [b"\xff", b"\x80\x80\x80\x80", b"ab\x80", b"\xf8"])
def test_bytes_that_are_no_utf8_go_as_they_are(data: bytes) -> None:
    assert whole_characters(data) == data
