"""The archive rules both the dispatcher (at upload) and the worker (at extraction) apply."""

from __future__ import annotations

import io
import stat
import zipfile

import pytest

from corral.domain.archives import (
    MAX_ENTRIES,
    MAX_TOTAL,
    ArchiveRefused,
    NotAZip,
    inspect_zip,
    looks_like_zip,
)
from corral.errors import InvalidInput

MIB = 1 << 20


def make_zip(entries: list[tuple[zipfile.ZipInfo | str, bytes]]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for info, data in entries:
            zf.writestr(info, data)
    return buffer.getvalue()


def with_mode(name: str, kind: int) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name)
    info.external_attr = (kind | 0o777) << 16
    return info


def claim_size(data: bytes, claimed: int) -> bytes:
    """Rewrite every entry's uncompressed size, local header and central directory alike."""
    out = bytearray(data)
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        for info in zf.infolist():
            out[info.header_offset + 22 : info.header_offset + 26] = claimed.to_bytes(4, "little")
    central = out.find(b"PK\x01\x02")
    while central != -1:
        out[central + 24 : central + 28] = claimed.to_bytes(4, "little")
        central = out.find(b"PK\x01\x02", central + 4)
    return bytes(out)


def inspect(data: bytes, **limits: int) -> object:
    return inspect_zip(io.BytesIO(data), **limits)


def test_a_good_archive_passes_with_what_it_really_holds() -> None:
    data = make_zip([("in.txt", b"hello"), ("sub/dir/x.bin", b"\x00" * 10), ("empty/", b"")])
    summary = inspect_zip(io.BytesIO(data))
    assert (summary.entries, summary.total) == (3, 15)


def test_the_defaults_are_the_documented_budget() -> None:
    assert (MAX_ENTRIES, MAX_TOTAL) == (10_000, 1 << 30)


@pytest.mark.parametrize("name", ["../x", "a/../../x", "/etc/x", "//x", "a\\..\\..\\x"])
def test_a_path_leading_outside_is_refused(name: str) -> None:
    data = make_zip([("fine.txt", b"ok"), (name, b"pwned")])
    with pytest.raises(ArchiveRefused, match="not a safe relative path") as caught:
        inspect(data)
    assert caught.value.context == {"entry": name}
    assert caught.value.message.startswith("input archive refused: archive entry")


def test_the_refusal_is_invalid_input_so_every_dialect_answers_400() -> None:
    assert issubclass(ArchiveRefused, InvalidInput)
    refused = ArchiveRefused("why")
    assert (refused.message, refused.reason) == ("input archive refused: why", "why")


def test_a_symlink_entry_is_refused() -> None:
    data = make_zip([(with_mode("link", stat.S_IFLNK), b"/etc"), ("link/passwd", b"pwned")])
    with pytest.raises(ArchiveRefused, match="'link' is a symlink"):
        inspect(data)


@pytest.mark.parametrize("kind", [stat.S_IFIFO, stat.S_IFCHR, stat.S_IFBLK, stat.S_IFSOCK])
def test_other_non_regular_entries_are_refused(kind: int) -> None:
    with pytest.raises(ArchiveRefused, match="not a regular file"):
        inspect(make_zip([(with_mode("dev", kind), b"")]))


def test_regular_files_and_directories_with_unix_modes_pass() -> None:
    data = make_zip([(with_mode("d/", stat.S_IFDIR), b""), (with_mode("d/f", stat.S_IFREG), b"x")])
    assert inspect_zip(io.BytesIO(data)).entries == 2


def test_too_many_entries_are_refused_before_anything_is_inflated() -> None:
    data = make_zip([(f"f{i}", b"") for i in range(6)])
    assert inspect_zip(io.BytesIO(data), max_entries=6).entries == 6
    with pytest.raises(ArchiveRefused, match="more than 5 entries") as caught:
        inspect(data, max_entries=5)
    assert caught.value.context == {"limit": 5}


def test_a_bomb_is_stopped_at_the_budget() -> None:
    bomb = make_zip([("bomb", b"\x00" * (2 * MIB))])  # 2 MiB of zeros, a few KiB packed
    assert len(bomb) < 10_000
    with pytest.raises(ArchiveRefused, match=f"inflates to more than {MIB} bytes") as caught:
        inspect(bomb, max_total=MIB)
    assert caught.value.context == {"limit": MIB}
    assert inspect_zip(io.BytesIO(bomb), max_total=2 * MIB).total == 2 * MIB  # exactly fits


def test_the_budget_is_shared_by_all_entries() -> None:
    data = make_zip([("a", b"x" * 600), ("b", b"y" * 600)])
    with pytest.raises(ArchiveRefused, match="inflates to more than 1000 bytes"):
        inspect(data, max_total=1000)


def test_a_header_claiming_little_does_not_sneak_a_bomb_past() -> None:
    bomb = claim_size(make_zip([("bomb", b"\x00" * (2 * MIB))]), 10)
    with zipfile.ZipFile(io.BytesIO(bomb)) as zf:
        assert zf.infolist()[0].file_size == 10  # the header's word
    with pytest.raises(ArchiveRefused):
        inspect(bomb, max_total=MIB)


def test_a_header_claiming_a_lot_is_judged_on_what_really_comes_out() -> None:
    data = claim_size(make_zip([("small", b"z" * 100)]), 0x7FFF_0000)
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        assert zf.infolist()[0].file_size > MIB  # claims far more than the budget
    assert inspect_zip(io.BytesIO(data), max_total=MIB).total == 100


def test_bytes_with_no_zip_structure_are_not_a_zip() -> None:
    for garbage in (b"", b"PK", b"PK\x03\x04", b"not a zip at all"):
        with pytest.raises(NotAZip, match="cannot be read"):
            inspect(garbage)


def test_a_damaged_zip_is_refused_as_unreadable() -> None:
    data = bytearray(make_zip([("f", b"some text that deflates " * 100)]))
    with zipfile.ZipFile(io.BytesIO(bytes(data))) as zf:
        info = zf.infolist()[0]
        start = info.header_offset + 30 + len(info.filename)  # the deflated stream
    data[start : start + 8] = b"\xff" * 8
    with pytest.raises(ArchiveRefused, match="cannot be read") as caught:
        inspect(bytes(data))
    assert not isinstance(caught.value, NotAZip)


def test_an_encrypted_entry_is_refused_as_unreadable() -> None:
    data = bytearray(make_zip([("secret", b"x")]))
    for marker in (b"PK\x03\x04", b"PK\x01\x02"):  # set the "encrypted" flag bit
        at = data.find(marker)
        flag = 6 if marker == b"PK\x03\x04" else 8
        data[at + flag] |= 1
    with pytest.raises(ArchiveRefused, match="cannot be read"):
        inspect(bytes(data))


@pytest.mark.parametrize(
    ("filename", "content_type", "head", "expected"),
    [
        ("project.ZIP", None, b"", True),
        ("x.bin", "application/zip", b"", True),
        ("x.bin", "Application/X-Zip-Compressed; charset=binary", b"", True),
        ("x.bin", "application/octet-stream", b"PK\x03\x04rest", True),
        ("x.bin", "application/octet-stream", b"PK\x05\x06", False),
        ("notes.txt", "text/plain", b"hello", False),
        ("zip", None, b"", False),
    ],
)
def test_what_counts_as_a_zip(
    filename: str, content_type: str | None, head: bytes, expected: bool
) -> None:
    assert looks_like_zip(filename, content_type, head) is expected
