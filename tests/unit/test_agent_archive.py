"""The worker's archive extractor refuses every hostile archive and writes nothing outside."""

from __future__ import annotations

import io
import stat
import zipfile
from pathlib import Path

import pytest

from corral.agent.archive import ArchiveError, extract_zip, output_file


def make_zip(entries: list[tuple[zipfile.ZipInfo | str, bytes]]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for info, data in entries:
            zf.writestr(info, data)
    return buffer.getvalue()


@pytest.fixture
def dirs(tmp_path: Path) -> tuple[Path, Path]:
    """A job dir inside a parent that must stay empty but for it."""
    dest = tmp_path / "job"
    dest.mkdir()
    return tmp_path, dest


def outside(parent: Path, dest: Path) -> list[Path]:
    return [p for p in parent.rglob("*") if p != dest and dest not in p.parents]


def test_a_plain_archive_is_extracted(dirs: tuple[Path, Path]) -> None:
    _, dest = dirs
    data = make_zip([("in.txt", b"hello"), ("sub/dir/x.bin", b"\x00" * 10), ("empty/", b"")])
    assert extract_zip(io.BytesIO(data), dest) == 15
    assert (dest / "in.txt").read_bytes() == b"hello"
    assert (dest / "sub/dir/x.bin").read_bytes() == b"\x00" * 10
    assert (dest / "empty").is_dir()


@pytest.mark.parametrize("name", ["../x", "a/../../x", "/etc/evil", "//x", "a\\..\\..\\x"])
def test_unsafe_entry_names_are_refused(dirs: tuple[Path, Path], name: str) -> None:
    parent, dest = dirs
    data = make_zip([("fine.txt", b"ok"), (name, b"pwned")])
    with pytest.raises(ArchiveError, match="not a safe relative path"):
        extract_zip(io.BytesIO(data), dest)
    assert outside(parent, dest) == []
    assert list(dest.iterdir()) == []  # checked before anything was written


def test_a_symlink_entry_is_refused(dirs: tuple[Path, Path]) -> None:
    parent, dest = dirs
    link = zipfile.ZipInfo("link")
    link.external_attr = (stat.S_IFLNK | 0o777) << 16
    data = make_zip([(link, b"/etc"), ("link/passwd", b"pwned")])
    with pytest.raises(ArchiveError, match="symlink"):
        extract_zip(io.BytesIO(data), dest)
    assert outside(parent, dest) == []
    assert list(dest.iterdir()) == []


def test_a_device_entry_is_refused(dirs: tuple[Path, Path]) -> None:
    _, dest = dirs
    fifo = zipfile.ZipInfo("fifo")
    fifo.external_attr = (stat.S_IFIFO | 0o644) << 16
    with pytest.raises(ArchiveError, match="not a regular file"):
        extract_zip(io.BytesIO(make_zip([(fifo, b"")])), dest)


def test_too_many_entries_are_refused(dirs: tuple[Path, Path]) -> None:
    _, dest = dirs
    data = make_zip([(f"f{i}", b"") for i in range(11)])
    with pytest.raises(ArchiveError, match="more than 10 entries"):
        extract_zip(io.BytesIO(data), dest, max_entries=10)
    assert list(dest.iterdir()) == []


def test_the_default_entry_cap_is_ten_thousand(dirs: tuple[Path, Path]) -> None:
    _, dest = dirs
    data = make_zip([(f"f{i}", b"") for i in range(10_001)])
    with pytest.raises(ArchiveError, match="more than 10000 entries"):
        extract_zip(io.BytesIO(data), dest)


def test_an_honest_archive_over_the_byte_cap_is_refused(dirs: tuple[Path, Path]) -> None:
    parent, dest = dirs
    data = make_zip([("a", b"x" * 600), ("b", b"y" * 600)])
    with pytest.raises(ArchiveError, match="inflates to more than 1000 bytes"):
        extract_zip(io.BytesIO(data), dest, max_total=1000)
    assert outside(parent, dest) == []


def _lie_about_sizes(data: bytes, claimed: int) -> bytes:
    """Rewrite every size field (local headers and central directory) to ``claimed``."""
    out = bytearray(data)
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        for info in zf.infolist():
            local = info.header_offset
            out[local + 22 : local + 26] = claimed.to_bytes(4, "little")
    central = out.find(b"PK\x01\x02")
    while central != -1:
        out[central + 24 : central + 28] = claimed.to_bytes(4, "little")
        central = out.find(b"PK\x01\x02", central + 4)
    return bytes(out)


def test_a_bomb_that_claims_small_sizes_is_refused(dirs: tuple[Path, Path]) -> None:
    parent, dest = dirs
    honest = make_zip([("bomb", b"\x00" * (4 << 20))])  # 4 MiB of zeros, a few KiB packed
    assert len(honest) < 10_000
    bomb = _lie_about_sizes(honest, 10)
    with zipfile.ZipFile(io.BytesIO(bomb)) as zf:
        assert sum(i.file_size for i in zf.infolist()) == 10  # the header claims almost nothing
    with pytest.raises(ArchiveError):
        extract_zip(io.BytesIO(bomb), dest, max_total=1 << 20)
    assert outside(parent, dest) == []
    written = sum(p.stat().st_size for p in dest.rglob("*") if p.is_file())
    assert written <= 1 << 20  # never inflated past the cap


def test_an_honest_bomb_stops_at_the_cap_while_inflating(dirs: tuple[Path, Path]) -> None:
    _, dest = dirs
    bomb = make_zip([("bomb", b"\x00" * (4 << 20))])
    with pytest.raises(ArchiveError, match="inflates"):
        extract_zip(io.BytesIO(bomb), dest, max_total=1 << 20)
    assert (dest / "bomb").stat().st_size <= 1 << 20


def test_garbage_is_refused(dirs: tuple[Path, Path]) -> None:
    with pytest.raises(ArchiveError, match="cannot be read"):
        extract_zip(io.BytesIO(b"not a zip at all"), dirs[1])


def test_outputs_must_be_regular_files_inside(tmp_path: Path) -> None:
    cwd = tmp_path / "cwd"
    (cwd / "sub").mkdir(parents=True)
    (cwd / "sub/out.txt").write_text("ok")
    (tmp_path / "secret").write_text("no")
    (cwd / "link").symlink_to(tmp_path / "secret")
    (cwd / "dirlink").symlink_to(tmp_path)
    assert output_file(cwd, "sub/out.txt") == cwd / "sub/out.txt"
    for bad in ("../secret", "/etc/passwd", "link", "dirlink/secret", "sub"):
        with pytest.raises(ArchiveError):
            output_file(cwd, bad)
    with pytest.raises(FileNotFoundError):
        output_file(cwd, "missing.txt")
