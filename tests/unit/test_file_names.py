"""Issue 11, item 21: names are stored without control characters; paths that address
files refuse them; the one Content-Disposition builder is safe for any string."""

from __future__ import annotations

import pytest

from corral.api.content_disposition import attachment
from corral.domain.files import clean_filename, relative_path, stored_path, strip_controls
from corral.errors import InvalidInput


def test_item21_stored_names_lose_control_characters() -> None:
    assert strip_controls("a\r\nb\x1b[31m\x7f\x85c\u2028d\u202eexe.txt") == "ab[31mcdexe.txt"
    assert clean_filename("dir/\r\nreport\t.pdf") == "report.pdf"
    assert clean_filename("naïve résumé.txt") == "naïve résumé.txt"  # letters are kept
    with pytest.raises(InvalidInput):
        clean_filename("\r\n")
    assert str(stored_path("out/\nresult.txt")) == "out/result.txt"


def test_item21_paths_that_address_files_refuse_control_characters() -> None:
    for path in ("a\nb", "dir/\x1b.txt", "x\x7f", "tab\there"):
        with pytest.raises(InvalidInput, match="control characters"):
            relative_path(path, "output")
    assert str(relative_path("dir/naïve.txt")) == "dir/naïve.txt"


def test_item21_content_disposition_never_carries_a_line_break() -> None:
    for name in ("a\r\nSet-Cookie: x=1", "\x00\x1b", "ok.txt", "\u202etxt.exe", 'q"\\'):
        header = attachment(name)
        assert header.isascii() and header.isprintable(), header
        assert header.startswith('attachment; filename="')
    assert attachment("ok.txt") == 'attachment; filename="ok.txt"'
