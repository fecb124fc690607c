"""Files over real HTTP: upload (multipart and raw), streamed download, limits, artifacts."""

from __future__ import annotations

import hashlib
import io
import os
import sqlite3
import zipfile
from collections.abc import Iterator
from pathlib import Path

import httpx

from tests.integration.test_native_api import API, ISO_Z, assert_error, claim_one, submit
from tests.live import LiveServer, run_server


def upload(http: httpx.Client, data: bytes, name: str = "in.zip") -> dict[str, object]:
    answer = http.post(f"{API}/files", files={"file": (name, data, "application/zip")})
    assert answer.status_code == 201, answer.text
    body: dict[str, object] = answer.json()
    return body


def test_multipart_upload_round_trips_with_its_digest(live_server: LiveServer) -> None:
    data = os.urandom(3 * (1 << 20) + 123)  # spans several stored chunks
    with live_server.client() as http:
        created = upload(http, data)
        assert set(created) == {"id", "filename", "size", "sha256", "created_at", "expires_at"}
        assert created["filename"] == "in.zip"
        assert created["size"] == len(data)
        assert created["sha256"] == hashlib.sha256(data).hexdigest()
        assert ISO_Z.match(str(created["created_at"])) and ISO_Z.match(str(created["expires_at"]))

        got = http.get(f"{API}/files/{created['id']}")
        assert got.status_code == 200
        assert got.content == data
        assert got.headers["content-length"] == str(len(data))
        assert 'filename="in.zip"' in got.headers["content-disposition"]
        assert hashlib.sha256(got.content).hexdigest() == created["sha256"]


def test_raw_upload_streams_a_body_of_unknown_length(live_server: LiveServer) -> None:
    def body() -> Iterator[bytes]:
        yield b"hello "
        yield b"world"

    with live_server.client() as http:
        answer = http.post(
            f"{API}/files", params={"filename": "dir/../greeting.txt"}, content=body()
        )
        assert answer.status_code == 201, answer.text
        created = answer.json()
        assert (created["filename"], created["size"]) == ("greeting.txt", 11)
        assert http.get(f"{API}/files/{created['id']}").content == b"hello world"
        # A raw upload must say what the file is called.
        assert_error(http.post(f"{API}/files", content=b"x"), 400)


def test_an_oversize_upload_is_413_while_streaming(tmp_path: Path) -> None:
    with run_server(tmp_path / "data", max_upload_bytes=1000) as server, server.client() as http:
        declared = http.post(f"{API}/files", params={"filename": "a"}, content=b"x" * 1001)
        body = assert_error(declared, 413)
        assert body["context"]["limit"] == 1000

        def stream() -> Iterator[bytes]:  # no Content-Length: refused as the bytes arrive
            for _ in range(8):
                yield b"y" * 200

        assert_error(http.post(f"{API}/files", params={"filename": "b"}, content=stream()), 413)
        assert_error(http.post(f"{API}/files", files={"file": ("c", b"z" * 5000)}), 413)
        ok = http.post(f"{API}/files", params={"filename": "d"}, content=b"x" * 1000)
        assert ok.status_code == 201, ok.text


def test_unknown_file_is_404_and_unknown_input_file_id_is_400(live_server: LiveServer) -> None:
    with live_server.client() as http:
        assert_error(http.get(f"{API}/files/nope"), 404)
        refused = http.post(
            f"{API}/jobs", json={"command": "true", "input_file_id": "no-such-file"}
        )
        body = assert_error(refused, 400)
        assert "input_file_id" in body["error"]
        file_id = upload(http, b"PK")["id"]
        accepted = http.post(f"{API}/jobs", json={"command": "true", "input_file_id": file_id})
        assert accepted.status_code == 201, accepted.text


def test_a_viewer_reads_but_cannot_upload(live_server: LiveServer) -> None:
    with live_server.client() as http:
        file_id = upload(http, b"data")["id"]
    with live_server.client(live_server.token("viewer")) as viewer:
        assert_error(viewer.post(f"{API}/files", params={"filename": "x"}, content=b"x"), 403)
        assert_error(viewer.post(f"{API}/files", files={"file": ("x", b"x")}), 403)
        assert viewer.get(f"{API}/files/{file_id}").content == b"data"


def test_a_worker_downloads_only_the_input_of_the_job_it_holds(live_server: LiveServer) -> None:
    with live_server.client() as http:
        file_id = upload(http, b"archive")["id"]
        other_id = upload(http, b"other")["id"]
        job_id = http.post(
            f"{API}/jobs", json={"command": "true", "input_file_id": file_id}
        ).json()["id"]
    with live_server.client(live_server.token("worker")) as worker:
        claim_one(worker, "w1")
        lease = {"job_id": job_id, "executor_id": "w1", "attempt": 1}
        assert worker.get(f"{API}/files/{file_id}", params=lease).content == b"archive"
        assert_error(worker.get(f"{API}/files/{other_id}", params=lease), 404)
        assert_error(worker.get(f"{API}/files/{file_id}", params={**lease, "attempt": 2}), 409)
        assert_error(worker.get(f"{API}/files/{file_id}"), 400)


def test_artifacts_are_fenced_by_attempt_listed_and_downloaded(live_server: LiveServer) -> None:
    with live_server.client() as http:
        job_id = submit(http)["id"]
        claim_one(http, "w1")
        url = f"{API}/jobs/{job_id}/artifacts"
        stored = http.post(
            url, params={"path": "out/result.txt", "executor_id": "w1", "attempt": 1}, content=b"42"
        )
        assert stored.status_code == 201, stored.text
        artifact = stored.json()
        assert (artifact["path"], artifact["attempt"], artifact["size"]) == ("out/result.txt", 1, 2)

        # The attempt is released and claimed again: the first attempt is stale now.
        http.post(f"{API}/jobs/{job_id}/release", json={"executor_id": "w1", "attempt": 1})
        claim_one(http, "w1")
        stale = http.post(url, params={"path": "x", "executor_id": "w1", "attempt": 1}, content=b"")
        assert_error(stale, 409)
        for bad in ("../x", "/etc/passwd", "a/../../b"):
            unsafe = http.post(url, params={"path": bad, "executor_id": "w1"}, content=b"x")
            assert_error(unsafe, 400)
        assert_error(http.post(url, params={"executor_id": "w1"}, content=b"x"), 400)

        listed = http.get(url)
        assert listed.status_code == 200
        assert listed.headers["X-Total-Count"] == "1"
        assert [a["id"] for a in listed.json()] == [artifact["id"]]
        got = http.get(f"{url}/{artifact['id']}")
        assert got.content == b"42"
        assert 'filename="result.txt"' in got.headers["content-disposition"]
        assert_error(http.get(f"{url}/nope"), 404)
        assert_error(http.get(f"{API}/jobs/nope/artifacts"), 404)


def test_another_workers_token_cannot_store_artifacts(live_server: LiveServer) -> None:
    with live_server.client() as http:
        job_id = submit(http)["id"]
    with live_server.client(live_server.token("worker")) as w1:
        claim_one(w1, "w1")
    with live_server.client(live_server.token("worker")) as w2:
        answer = w2.post(
            f"{API}/jobs/{job_id}/artifacts",
            params={"path": "x", "executor_id": "w1", "attempt": 1},
            content=b"x",
        )
        assert_error(answer, 403)


def test_item21_a_crlf_filename_is_stripped_and_its_download_answers(
    live_server: LiveServer,
) -> None:
    """``?filename=a%0d%0a...`` used to be stored as given: the download then put the CR/LF
    into ``Content-Disposition`` and the server sent no answer at all."""
    hostile = "a\r\nX-Injected: 1\r\n\u202etxt.exe"
    with live_server.client() as http:
        answer = http.post(f"{API}/files", params={"filename": hostile}, content=b"payload")
        assert answer.status_code == 201, answer.text
        created = answer.json()
        assert created["filename"] == "aX-Injected: 1txt.exe"
        got = http.get(f"{API}/files/{created['id']}")
        assert got.status_code == 200 and got.content == b"payload"
        assert "x-injected" not in got.headers
        assert got.headers["content-disposition"] == 'attachment; filename="aX-Injected: 1txt.exe"'


def test_item21_an_artifact_path_is_stored_without_control_characters(
    live_server: LiveServer,
) -> None:
    with live_server.client() as http:
        job_id = submit(http)["id"]
        claim_one(http, "w1")
        url = f"{API}/jobs/{job_id}/artifacts"
        lease = {"executor_id": "w1", "attempt": 1}
        stored = http.post(url, params={"path": "out/\r\nre\x1bsult.txt", **lease}, content=b"1")
        assert stored.status_code == 201, stored.text
        artifact = stored.json()
        assert (artifact["path"], artifact["filename"]) == ("out/result.txt", "result.txt")
        only_controls = http.post(url, params={"path": "\r\n", **lease}, content=b"1")
        assert_error(only_controls, 400)
        got = http.get(f"{url}/{artifact['id']}")
        assert got.status_code == 200
        assert got.headers["content-disposition"] == 'attachment; filename="result.txt"'


def test_item21_a_name_stored_before_the_fix_still_downloads(live_server: LiveServer) -> None:
    """Rows written by an older server keep their name: the header builder is safe on its own."""
    with live_server.client() as http:
        file_id = upload(http, b"old", "old.txt")["id"]
        with sqlite3.connect(live_server.settings.sqlite_path) as db:
            db.execute("UPDATE files SET filename = ? WHERE id = ?", ("a\r\nb\u00e9.txt", file_id))
        got = http.get(f"{API}/files/{file_id}")
        assert got.status_code == 200 and got.content == b"old"
        assert got.headers["content-disposition"] == (
            "attachment; filename=\"a__b_.txt\"; filename*=UTF-8''a%0D%0Ab%C3%A9.txt"
        )


def test_item21_paths_with_control_characters_are_refused_at_submit_and_upload(
    live_server: LiveServer,
) -> None:
    """A path names a file to read or write: it is refused (400), never silently changed."""
    with live_server.client() as http:
        cmd = http.post("/api/jobs/submit", json={"command": "true", "workingDirectory": "a\rb"})
        assert cmd.status_code == 400 and cmd.json()["details"]["field"] == "workingDirectory"
        octaskly = http.post(f"{API}/tasks", json={"command": "true", "inputs": ["in\x1b.txt"]})
        assert octaskly.status_code == 400, octaskly.text
        native = http.post(f"{API}/jobs", json={"command": "true", "working_directory": "a\nb"})
        assert_error(native, 400)

        archive = io.BytesIO()
        with zipfile.ZipFile(archive, "w") as zf:
            zf.writestr("run\n.sh", b"echo hi")
        refused = http.post(
            f"{API}/files", params={"filename": "in.zip"}, content=archive.getvalue()
        )
        assert "not a safe relative path" in assert_error(refused, 400)["error"]
