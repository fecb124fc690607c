"""Hostile zips are refused at upload over real HTTP, in each dialect's shape, and nothing is kept.

The server runs in this process (uvicorn in a thread), so the archive budget
is lowered by handing ``FileService`` smaller limits: a bomb of 2 MiB of zeros
then proves the point without inflating a gigabyte.
"""

from __future__ import annotations

import functools
import io
import stat
import tempfile
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import httpx
import pytest

from corral.domain.archives import ArchiveLimits
from corral.services import container
from corral.services.files import FileService
from tests.integration.test_cmd_auth import ADMIN, assert_cmd_error
from tests.integration.test_cmd_files import stored_files
from tests.integration.test_native_api import API, assert_error
from tests.live import LiveServer, run_server

MIB = 1 << 20
LIMITS = ArchiveLimits(max_entries=50, max_total=MIB)


def make_zip(entries: list[tuple[zipfile.ZipInfo | str, bytes]]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for info, data in entries:
            zf.writestr(info, data)
    return buffer.getvalue()


def symlink(name: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name)
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    return info


def claim_size(data: bytes, claimed: int) -> bytes:
    """Make every size field the archive declares say ``claimed``."""
    out = bytearray(data)
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        for info in zf.infolist():
            out[info.header_offset + 22 : info.header_offset + 26] = claimed.to_bytes(4, "little")
    central = out.find(b"PK\x01\x02")
    while central != -1:
        out[central + 24 : central + 28] = claimed.to_bytes(4, "little")
        central = out.find(b"PK\x01\x02", central + 4)
    return bytes(out)


GOOD = make_zip([("project/run.sh", b"echo from-archive\n"), ("project/data/", b"")])
SLIP = make_zip([("ok.txt", b"ok"), ("../../escaped.txt", b"pwned")])
BOMB = make_zip([("bomb", b"\x00" * (2 * MIB))])  # a few KiB on the wire

# (name, bytes, what the refusal says): each is refused whatever it is called.
HOSTILE = [
    ("slip.zip", SLIP, "archive entry '../../escaped.txt' is not a safe relative path"),
    ("abs.zip", make_zip([("/etc/cron.d/x", b"pwned")]), "is not a safe relative path"),
    ("link.zip", make_zip([(symlink("etc"), b"/etc"), ("etc/passwd", b"x")]), "is a symlink"),
    ("bomb.zip", BOMB, f"the archive inflates to more than {MIB} bytes"),
    ("liar.zip", claim_size(BOMB, 10), "the archive"),  # its headers claim 10 bytes
    ("many.zip", make_zip([(f"f{i}", b"") for i in range(51)]), "more than 50 entries"),
    ("data.bin", SLIP, "not a safe relative path"),  # known by its first bytes alone
]


@pytest.fixture
def spools(monkeypatch: pytest.MonkeyPatch) -> list[IO[bytes]]:
    """Every temporary copy the server makes, to check that none outlives its upload."""
    made: list[IO[bytes]] = []
    real = tempfile.TemporaryFile

    def recording(*args: Any, **kwargs: Any) -> IO[bytes]:
        spool: IO[bytes] = real(*args, **kwargs)
        made.append(spool)
        return spool

    monkeypatch.setattr(tempfile, "TemporaryFile", recording)
    return made


@pytest.fixture
def server(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, spools: list[IO[bytes]]
) -> Iterator[LiveServer]:
    monkeypatch.setattr(
        container, "FileService", functools.partial(FileService, archive_limits=LIMITS)
    )
    email, password = ADMIN
    with run_server(tmp_path / "data", admin_email=email, admin_password=password) as live:
        yield live


def still_serving(live: LiveServer, http: httpx.Client) -> None:
    assert http.get(f"{API}/health").status_code == 200
    assert http.get(f"{API}/jobs").status_code == 200


@pytest.mark.parametrize(("name", "data", "reason"), HOSTILE, ids=[h[0] for h in HOSTILE])
def test_native_refuses_a_hostile_zip_with_400_and_keeps_nothing(
    server: LiveServer, spools: list[IO[bytes]], name: str, data: bytes, reason: str
) -> None:
    with server.client() as http:
        multipart = http.post(f"{API}/files", files={"file": (name, data, "application/zip")})
        body = assert_error(multipart, 400)
        assert body["error"].startswith("input archive refused: ")
        assert reason in body["error"]

        def stream() -> Iterator[bytes]:  # raw, chunked, no Content-Length
            for at in range(0, len(data), 1000):
                yield data[at : at + 1000]

        raw = http.post(f"{API}/files", params={"filename": name}, content=stream())
        assert assert_error(raw, 400)["error"] == body["error"]
        assert stored_files(server) == (0, 0)
        still_serving(server, http)
    assert spools and all(spool.closed for spool in spools)


def test_native_refusals_say_which_entry_or_limit(server: LiveServer) -> None:
    with server.client() as http:
        slip = assert_error(http.post(f"{API}/files", files={"file": ("s.zip", SLIP)}), 400)
        assert slip["context"] == {"entry": "../../escaped.txt"}
        bomb = assert_error(http.post(f"{API}/files", files={"file": ("b.zip", BOMB)}), 400)
        assert bomb["context"] == {"limit": MIB}


@pytest.mark.parametrize(("name", "data", "reason"), HOSTILE, ids=[h[0] for h in HOSTILE])
def test_cmd_refuses_a_hostile_zip_as_an_invalid_file(
    server: LiveServer, spools: list[IO[bytes]], name: str, data: bytes, reason: str
) -> None:
    with server.client() as http:
        answer = http.post("/api/files/upload", files={"file": (name, data)})
        body = assert_cmd_error(answer, 400)
        assert (body["error"], body["code"]) == ("Invalid file", "INVALID_FILE")
        assert body["message"].startswith("input archive refused: ")
        assert reason in body["message"]
        assert stored_files(server) == (0, 0)
        still_serving(server, http)
    assert spools and all(spool.closed for spool in spools)


def test_good_zips_and_other_files_still_upload_and_run(
    server: LiveServer, spools: list[IO[bytes]]
) -> None:
    with server.client() as http:
        # Hostile uploads first: the server must carry on as if they never came.
        assert http.post(f"{API}/files", files={"file": ("b.zip", BOMB)}).status_code == 400
        assert http.post("/api/files/upload", files={"file": ("s.zip", SLIP)}).status_code == 400

        native = http.post(f"{API}/files", files={"file": ("in.zip", GOOD, "application/zip")})
        assert native.status_code == 201, native.text
        assert native.json()["size"] == len(GOOD)
        assert http.get(f"{API}/files/{native.json()['id']}").content == GOOD
        cmd = http.post("/api/files/upload", files={"file": ("project.zip", GOOD)})
        assert cmd.status_code == 201, cmd.text
        text = http.post(f"{API}/files", params={"filename": "notes.txt"}, content=b"PK? no")
        assert text.status_code == 201, text.text
        # Bytes with no zip structure at all are kept, even under a zip's name: nothing in
        # them can be extracted, and a worker refuses them as unreadable.
        fake = http.post("/api/files/upload", files={"file": ("fake.zip", b"not a zip")})
        assert fake.status_code == 201, fake.text
        assert stored_files(server)[0] == 4

        job = http.post(
            f"{API}/jobs", json={"command": "true", "input_file_id": native.json()["id"]}
        )
        assert job.status_code == 201, job.text
        url = cmd.json()["url"]
        submitted = http.post("/api/jobs/submit", json={"command": "sh run.sh", "fileUrl": url})
        assert submitted.status_code == 201, submitted.text
    assert all(spool.closed for spool in spools)
    assert len(spools) == 5  # every upload that said or looked zip; never the text file


def test_the_default_budget_applies_to_uploads(live_server: LiveServer) -> None:
    crowded = make_zip([(f"f{i}", b"") for i in range(10_001)])
    with live_server.client() as http:
        answer = http.post(f"{API}/files", files={"file": ("crowded.zip", crowded)})
        body = assert_error(answer, 400)
        assert body["error"] == "input archive refused: the archive has more than 10000 entries"
        assert stored_files(live_server) == (0, 0)
        fits = make_zip([(f"f{i}", b"") for i in range(10_000)])
        assert http.post(f"{API}/files", files={"file": ("ok.zip", fits)}).status_code == 201
