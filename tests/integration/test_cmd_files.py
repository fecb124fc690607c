"""CMD Executor's /api/files and /uploads over real HTTP: streamed uploads, downloads, who may."""

from __future__ import annotations

import asyncio
import os
import socket
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from corral.api.content_disposition import attachment
from corral.api.dialects.cmd.routes_files import size_label
from corral.services.tokens import TokenService
from corral.store.sqlite.store import SqliteStore
from tests.integration.test_cmd_auth import ADMIN, assert_cmd_error, bearer, login
from tests.integration.test_native_api import API, ISO_Z, claim_one
from tests.live import LiveServer, run_server


@pytest.fixture
def server(tmp_path: Path) -> Iterator[LiveServer]:
    email, password = ADMIN
    with run_server(tmp_path / "data", admin_email=email, admin_password=password) as live:
        yield live


def jwt(live: LiveServer) -> str:
    answer = login(live, *ADMIN)
    assert answer.status_code == 200, answer.text
    token: str = answer.json()["token"]
    return token


def upload(http: httpx.Client, data: bytes, name: str = "project.zip", **kw: Any) -> Any:
    answer = http.post("/api/files/upload", files={"file": (name, data, *kw.values())})
    assert answer.status_code == 201, answer.text
    return answer.json()


def worker(live: LiveServer, token: str) -> httpx.Client:
    """A CMD Executor worker presents its token in ``x-worker-token``."""
    return httpx.Client(base_url=live.url, headers={"x-worker-token": token}, timeout=30)


def stored_files(live: LiveServer) -> tuple[int, int]:
    with sqlite3.connect(live.settings.sqlite_path) as db:
        files = db.execute("SELECT count(*) FROM files").fetchone()[0]
        chunks = db.execute("SELECT count(*) FROM file_chunks").fetchone()[0]
    return files, chunks


def test_an_upload_answers_as_documented_and_downloads_byte_for_byte(server: LiveServer) -> None:
    data = os.urandom(2 * (1 << 20) + 77)  # spans several stored chunks
    with bearer(server, jwt(server)) as http:
        # Sent as octet-stream: the download's type then comes from the name.
        created = upload(http, data, content_type="application/octet-stream")
        assert set(created) == {
            "success",
            "fileId",
            "filename",
            "size",
            "uploadedAt",
            "url",
            "expiresAt",
        }
        assert created["success"] is True
        assert (created["filename"], created["size"]) == ("project.zip", len(data))
        assert created["url"] == f"/uploads/{created['fileId']}/project.zip"
        assert ISO_Z.match(created["uploadedAt"]) and ISO_Z.match(created["expiresAt"])

        got = http.get(f"/api/files/download/{created['fileId']}")
        assert got.status_code == 200
        assert got.content == data
        assert got.headers["content-type"] == "application/zip"
        assert got.headers["content-disposition"] == 'attachment; filename="project.zip"'
        assert got.headers["content-length"] == str(len(data))

        by_url = http.get(created["url"])
        assert by_url.status_code == 200 and by_url.content == data


def test_unknown_files_and_wrong_names_are_404_in_the_documented_shape(
    server: LiveServer,
) -> None:
    with bearer(server, jwt(server)) as http:
        created = upload(http, b"PK\x03\x04")
        for path in (
            "/api/files/download/no-such-file",
            "/uploads/no-such-file/project.zip",
            f"/uploads/{created['fileId']}/other.zip",
        ):
            body = assert_cmd_error(http.get(path), 404)
            assert (body["error"], body["message"]) == ("Not found", "File not found")


def test_a_non_ascii_name_is_kept_and_offered_as_rfc6266_filename_star(server: LiveServer) -> None:
    with bearer(server, jwt(server)) as http:
        created = upload(http, b"text", "résumé.txt", content_type="text/plain")
        assert created["filename"] == "résumé.txt"
        assert created["url"] == f"/uploads/{created['fileId']}/{quote('résumé.txt', safe='')}"
        got = http.get(created["url"])
        assert got.status_code == 200 and got.content == b"text"
        assert got.headers["content-type"].startswith("text/plain")
        assert got.headers["content-disposition"] == (
            "attachment; filename=\"r_sum_.txt\"; filename*=UTF-8''r%C3%A9sum%C3%A9.txt"
        )


def test_content_disposition_quotes_safely() -> None:
    assert attachment('a"b\\c;\r\n.zip') == (
        "attachment; filename=\"a_b_c;__.zip\"; filename*=UTF-8''a%22b%5Cc%3B%0D%0A.zip"
    )
    assert (size_label(500 << 20), size_label(1 << 10), size_label(1000)) == (
        "500MB",
        "1KB",
        "1000 bytes",
    )


def _chunked_multipart_head(port: int, token: str, boundary: str) -> bytes:
    return (
        f"POST /api/files/upload HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Authorization: Bearer {token}\r\n"
        f"Content-Type: multipart/form-data; boundary={boundary}\r\n"
        "Transfer-Encoding: chunked\r\n\r\n"
    ).encode()


def read_response(sock: socket.socket) -> str:
    """One HTTP/1.1 response with a Content-Length, however the bytes are split."""
    data = b""
    while b"\r\n\r\n" not in data or len(data.partition(b"\r\n\r\n")[2]) < _length(data):
        piece = sock.recv(65536)
        if not piece:
            break
        data += piece
    return data.decode(errors="replace")


def _length(data: bytes) -> int:
    for line in data.partition(b"\r\n\r\n")[0].split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value)
    return 0


def _chunk(data: bytes) -> bytes:
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"


def test_an_oversize_upload_is_refused_while_it_streams_and_nothing_is_kept(
    tmp_path: Path,
) -> None:
    email, password = ADMIN
    with run_server(
        tmp_path / "data", admin_email=email, admin_password=password, max_upload_bytes=1000
    ) as live:
        token = jwt(live)
        port = int(live.url.rsplit(":", 1)[1])
        boundary = "corral-test-boundary"
        part = (
            f"--{boundary}\r\nContent-Disposition: form-data; name=file; filename=big.zip\r\n"
            "Content-Type: application/zip\r\n\r\n"
        ).encode()
        # No length is declared and the body is never finished: the answer can only
        # come from the limit tripping on the bytes that did arrive.
        with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
            sock.sendall(_chunked_multipart_head(port, token, boundary) + _chunk(part))
            for _ in range(12):
                sock.sendall(_chunk(b"z" * 100))
            answer = read_response(sock)
        head, _, body = answer.partition("\r\n\r\n")
        assert head.startswith("HTTP/1.1 400"), answer
        assert '"error":"Invalid file"' in body
        assert '"message":"File size exceeds 1000 bytes limit"' in body

        with bearer(live, token) as http:
            declared = http.post("/api/files/upload", files={"file": ("c.zip", b"z" * 5000)})
            body_json = assert_cmd_error(declared, 400)
            assert body_json["error"] == "Invalid file"
            assert body_json["message"] == "File size exceeds 1000 bytes limit"
            assert stored_files(live) == (0, 0)
            fits = http.post("/api/files/upload", files={"file": ("d.zip", b"x" * 1000)})
            assert fits.status_code == 201, fits.text


def test_a_body_without_a_usable_file_is_an_invalid_file(server: LiveServer) -> None:
    with bearer(server, jwt(server)) as http:
        refused = [
            http.post("/api/files/upload", files={"other": ("a.zip", b"x")}),
            http.post("/api/files/upload", data={"file": "not a file part"}),  # urlencoded
            http.post("/api/files/upload", data={"file": "text"}, files={"x": ("a", b"x")}),
            http.post("/api/files/upload", files={"file": ("", b"x")}),
            http.post("/api/files/upload", json={"file": "x"}),
            http.post("/api/files/upload", content=b"x", headers={"content-type": "text/plain"}),
        ]
        for answer in refused:
            body = assert_cmd_error(answer, 400)
            assert (body["error"], body["code"]) == ("Invalid file", "INVALID_FILE")
    assert stored_files(server) == (0, 0)


def test_no_credentials_is_401_and_a_viewer_downloads_but_cannot_upload(
    server: LiveServer,
) -> None:
    with bearer(server, jwt(server)) as http:
        file_id = upload(http, b"data")["fileId"]
    with httpx.Client(base_url=server.url, timeout=30) as anonymous:
        assert_cmd_error(anonymous.post("/api/files/upload", files={"file": ("a", b"x")}), 401)
        assert_cmd_error(anonymous.get(f"/api/files/download/{file_id}"), 401)
        assert_cmd_error(anonymous.get(f"/uploads/{file_id}/project.zip"), 401)
    with bearer(server, server.token("viewer")) as viewer:
        assert_cmd_error(viewer.post("/api/files/upload", files={"file": ("a", b"x")}), 403)
        assert viewer.get(f"/api/files/download/{file_id}").content == b"data"


def submit_with_input(http: httpx.Client, file_id: str) -> str:
    answer = http.post(f"{API}/jobs", json={"command": "true", "input_file_id": file_id})
    assert answer.status_code == 201, answer.text
    job_id: str = answer.json()["id"]
    return job_id


def test_a_worker_gets_only_the_input_of_a_running_job_it_holds(server: LiveServer) -> None:
    with server.client() as admin:
        file_id = upload(admin, b"archive")["fileId"]
        other_id = upload(admin, b"other")["fileId"]
        job_id = submit_with_input(admin, file_id)
    holder, stranger = server.token("worker"), server.token("worker")
    with server.client(holder) as native:
        claim_one(native, "w1")
    with worker(server, holder) as w, worker(server, stranger) as s:
        assert w.get(f"/api/files/download/{file_id}").content == b"archive"
        assert w.get(f"/uploads/{file_id}/project.zip").content == b"archive"
        assert_cmd_error(w.get(f"/api/files/download/{other_id}"), 404)
        assert_cmd_error(s.get(f"/api/files/download/{file_id}"), 404)
    with server.client(holder) as native:
        done = native.put(
            f"{API}/jobs/{job_id}/complete", json={"executor_id": "w1", "exit_code": 0}
        )
        assert done.status_code == 200, done.text
    with worker(server, holder) as w:  # the job is over: the file is no longer its business
        assert_cmd_error(w.get(f"/api/files/download/{file_id}"), 404)


def mint_bound_token(live: LiveServer, executor_id: str) -> str:
    """A worker token bound to one executor, as CMD Executor's registration hands out."""

    async def run() -> str:
        store = SqliteStore(live.settings.sqlite_path)
        await store.open()
        try:
            _, secret = await TokenService(store).mint("worker", executor_id, executor_id)
            return secret
        finally:
            await store.close()

    return asyncio.run(run())


def test_a_bound_worker_token_sees_the_inputs_of_its_executors_jobs(server: LiveServer) -> None:
    with server.client() as admin:
        file_id = upload(admin, b"archive")["fileId"]
        submit_with_input(admin, file_id)
    mine, theirs = mint_bound_token(server, "box-1"), mint_bound_token(server, "box-2")
    with server.client(mine) as native:
        claim_one(native, "box-1")
    with worker(server, mine) as w, worker(server, theirs) as t:
        assert w.get(f"/api/files/download/{file_id}").content == b"archive"
        assert_cmd_error(t.get(f"/api/files/download/{file_id}"), 404)
