"""The job detail page and the submit form over real HTTP, signed in like a browser.

Jobs are driven through the native API (a worker token claims them and posts
output), the pages are read as a browser gets them. Every job here carries a
label of its own test, so a claim in one test never takes another test's job.
"""

from __future__ import annotations

import html
import os
import re
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import httpx
import pytest

from corral.api.multipart import MULTIPART_SLACK
from tests.integration.test_cmd_files import stored_files
from tests.integration.test_upload_archives import make_zip
from tests.live import LiveServer, run_server

API = "/api/v1"
ADMIN = ("root@example.com", "admin-password")
PASSWORD = "pw-123456-long"
SECRET = "s3cr3t-value-never-shown"
CAP = 1024
XSS = "<script>alert(1)</script>"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    email, password = ADMIN
    data = tmp_path_factory.mktemp("dashboard-job") / "data"
    with run_server(
        data,
        admin_email=email,
        admin_password=password,
        login_rate_limit="off",
        output_cap=CAP,
    ) as live:
        with live.client() as http:
            for name, role in (("viewer", "viewer"), ("alice", "submitter"), ("bob", "submitter")):
                body = {"email": f"{name}@example.com", "password": PASSWORD, "role": role}
                assert http.post("/api/v1/admin/users", json=body).status_code == 201
        yield live


@pytest.fixture(scope="module")
def browsers(server: LiveServer) -> Iterator[dict[str, httpx.Client]]:
    """One signed-in browser per person, for the whole module: signing in is slow on purpose."""
    people = {
        "admin": ADMIN,
        **{name: (f"{name}@example.com", PASSWORD) for name in ("viewer", "alice", "bob")},
    }
    clients = {name: sign_in(server, *login) for name, login in people.items()}
    yield clients
    for client in clients.values():
        client.close()


@pytest.fixture(scope="module")
def worker(server: LiveServer) -> Iterator[httpx.Client]:
    with server.client(server.token("worker")) as http:
        yield http


def sign_in(live: LiveServer, email: str, password: str) -> httpx.Client:
    client = httpx.Client(base_url=live.url, follow_redirects=False, timeout=10)
    token = csrf_of(client.get("/login").text)
    form = {"email": email, "password": password, "csrf": token, "next": "/"}
    answer = client.post("/login", data=form)
    assert answer.status_code == 303, answer.text
    return client


def csrf_of(page: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', page)
    assert found is not None, page
    return found[1]


def submit_api(client: httpx.Client, label: str, **fields: Any) -> str:
    """A job submitted on the native API with the browser's own session cookie."""
    body = {"command": "echo hi", "labels": [label], **fields}
    answer = client.post(f"{API}/jobs", json=body)
    assert answer.status_code == 201, answer.text
    job_id: str = answer.json()["id"]
    return job_id


def job_of(client: httpx.Client, job_id: str) -> dict[str, Any]:
    answer = client.get(f"{API}/jobs/{job_id}")
    assert answer.status_code == 200, answer.text
    job: dict[str, Any] = answer.json()
    return job


def total_jobs(client: httpx.Client) -> int:
    return int(client.get(f"{API}/jobs", params={"limit": 1}).headers["X-Total-Count"])


def page(client: httpx.Client, path: str, status: int = 200) -> str:
    answer = client.get(path)
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"].startswith("text/html")
    assert "unsafe-inline" not in answer.headers["content-security-policy"]
    return answer.text


def claim(worker: httpx.Client, label: str, executor: str) -> dict[str, Any]:
    body = {"executor_id": executor, "labels": [label]}
    answer = worker.post(f"{API}/jobs/claim", json=body)
    assert answer.status_code == 200, answer.text
    job: dict[str, Any] = answer.json()
    return job


def post_output(worker: httpx.Client, job: dict[str, Any], data: str, stream: str) -> None:
    call = {
        "executor_id": job["executor_id"],
        "attempt": job["attempt"],
        "stream": stream,
        "data": data,
    }
    answer = worker.post(f"{API}/jobs/{job['id']}/output", json=call)
    assert answer.status_code == 200, answer.text


def finish(worker: httpx.Client, job: dict[str, Any], exit_code: int) -> None:
    call = {"executor_id": job["executor_id"], "attempt": job["attempt"], "exit_code": exit_code}
    answer = worker.put(f"{API}/jobs/{job['id']}/complete", json=call)
    assert answer.status_code == 200, answer.text


def pre_text(text: str, name: str) -> str:
    """The text a browser shows in ``pre#name`` (the newline after ``<pre>`` is not content)."""
    found = re.search(rf'<pre id="{name}"[^>]*>\n(.*?)</pre>', text, re.S)
    assert found is not None, text
    return html.unescape(found[1])


def status_of(text: str) -> str:
    found = re.search(r'id="job-status" class="status (\w+)" data-status="(\w+)"', text)
    assert found is not None, text
    assert found[1] == found[2]
    return found[2]


# --- the detail page ----------------------------------------------------------------------


def test_the_page_shows_the_job_and_never_a_secret_value(
    browsers: dict[str, httpx.Client], worker: httpx.Client
) -> None:
    alice = browsers["alice"]
    job_id = submit_api(
        alice,
        "t-facts",
        command="make test",
        env_variables={"GREETING": "hello world"},
        secret_env={"API_KEY": SECRET},
        priority="high",
        timeout=120,
    )
    text = page(alice, f"/jobs/{job_id}")
    assert status_of(text) == "pending"
    assert job_id in text and "make test" in text
    assert "GREETING=hello world" in text
    assert "API_KEY=********" in text
    assert "<dd>high</dd>" in text and "120 s" in text and "t-facts" in text
    assert 'id="cancel-form"' in text and 'id="resubmit-form"' in text
    assert 'data-live="jobs"' in text and f'data-fragment="/jobs/{job_id}?fragment=status"' in text
    assert "data-follow" in text  # a job that has not finished is followed live

    claimed = claim(worker, "t-facts", "exec-facts")
    assert claimed["secret_env"] == {"API_KEY": SECRET}  # the worker, and only it, gets it
    text = page(alice, f"/jobs/{job_id}")
    fragment = page(alice, f"/jobs/{job_id}?fragment=status")
    assert status_of(text) == status_of(fragment) == "running"
    assert "<html" not in fragment and "<h1" not in fragment
    assert "exec-facts" in fragment and "Lease expires" in fragment
    finish(worker, claimed, 3)
    done = page(alice, f"/jobs/{job_id}")
    assert status_of(done) in ("completed", "failed")
    assert re.search(r'data-attempt="1" data-status="\w+"', done)
    assert re.search(r'exit code <span class="mono">3</span>', done)
    assert 'id="cancel-form"' not in done and "data-follow" not in done
    for who in browsers.values():  # every role, page and fragment, at every stage
        for path in (f"/jobs/{job_id}", f"/jobs/{job_id}?fragment=status"):
            assert SECRET not in page(who, path)


def test_command_and_output_are_text_never_markup(
    browsers: dict[str, httpx.Client], worker: httpx.Client
) -> None:
    alice = browsers["alice"]
    job_id = submit_api(alice, "t-xss", command=f"echo '{XSS}'")
    job = claim(worker, "t-xss", "exec-xss")
    post_output(worker, job, XSS + "\n", "stdout")
    post_output(worker, job, "<b>bold</b> & co", "stderr")
    text = page(alice, f"/jobs/{job_id}")
    assert "<script>alert" not in text and "<b>bold" not in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert pre_text(text, "stdout") == XSS + "\n"
    assert pre_text(text, "stderr") == "<b>bold</b> & co"
    assert f'data-offset="{len(XSS) + 1}"' in text  # where the live follow picks up
    finish(worker, job, 0)


def test_capped_output_shows_the_truncation_marker(
    browsers: dict[str, httpx.Client], worker: httpx.Client
) -> None:
    viewer = browsers["viewer"]
    job_id = submit_api(browsers["alice"], "t-cap")
    job = claim(worker, "t-cap", "exec-cap")
    post_output(worker, job, "a" * 1500, "stdout")
    post_output(worker, job, "short", "stderr")
    text = page(viewer, f"/jobs/{job_id}")
    assert pre_text(text, "stdout") == "a" * CAP
    assert re.search(
        r'<p id="stdout-truncated" class="truncated" role="note">\[stdout truncated', text
    )
    assert re.search(r'<p id="stderr-truncated" class="truncated" role="note" hidden>', text)
    assert 'data-stdout-truncated="1" data-stderr-truncated="0"' in text
    finish(worker, job, 0)


def test_output_follow_accepts_the_session_cookie(
    browsers: dict[str, httpx.Client], worker: httpx.Client
) -> None:
    viewer = browsers["viewer"]
    job_id = submit_api(browsers["alice"], "t-follow")
    job = claim(worker, "t-follow", "exec-follow")
    post_output(worker, job, "hi\n", "stdout")
    finish(worker, job, 0)
    with viewer.stream("GET", f"{API}/jobs/{job_id}/output/follow") as answer:
        assert answer.status_code == 200
        body = answer.read().decode()
    assert '"data":"hi\\n"' in body and "event: end" in body


def test_unknown_jobs_and_fragments(browsers: dict[str, httpx.Client]) -> None:
    viewer = browsers["viewer"]
    assert "Not found" in page(viewer, "/jobs/no-such-job", 404)
    job_id = submit_api(browsers["alice"], "t-unknown")
    assert "unknown fragment" in page(viewer, f"/jobs/{job_id}?fragment=nope", 400)


# --- cancel and resubmit --------------------------------------------------------------------


def test_the_owner_cancels_a_pending_job(browsers: dict[str, httpx.Client]) -> None:
    alice = browsers["alice"]
    job_id = submit_api(alice, "t-cancel")
    token = csrf_of(page(alice, f"/jobs/{job_id}"))
    answer = alice.post(f"/jobs/{job_id}/cancel", data={"csrf": token})
    assert answer.status_code == 303
    assert answer.headers["location"] == f"/jobs/{job_id}"
    assert job_of(alice, job_id)["status"] == "cancelled"
    text = page(alice, f"/jobs/{job_id}")
    assert status_of(text) == "cancelled" and 'id="cancel-form"' not in text


def test_a_submitter_cannot_cancel_another_submitters_job(
    browsers: dict[str, httpx.Client],
) -> None:
    alice, bob = browsers["alice"], browsers["bob"]
    job_id = submit_api(alice, "t-other")
    text = page(bob, f"/jobs/{job_id}")
    assert 'id="cancel-form"' not in text and 'id="resubmit-form"' not in text
    before = alice.get("/api/jobs/list").json()["total"]
    for action in ("cancel", "resubmit"):  # resubmitting would run alice's secrets as bob's
        answer = bob.post(f"/jobs/{job_id}/{action}", data={"csrf": csrf_of(text)})
        assert answer.status_code == 403
        assert answer.headers["content-type"].startswith("text/html")
        assert "Not allowed" in answer.text
    assert job_of(alice, job_id)["status"] == "pending"
    assert alice.get("/api/jobs/list").json()["total"] == before


def test_a_viewer_sees_no_controls_and_forged_posts_are_refused(
    browsers: dict[str, httpx.Client],
) -> None:
    viewer, alice = browsers["viewer"], browsers["alice"]
    job_id = submit_api(alice, "t-viewer")
    text = page(viewer, f"/jobs/{job_id}")
    for control in ('id="cancel-form"', 'id="resubmit-form"', 'href="/submit"'):
        assert control not in text
    assert "Not allowed" in page(viewer, "/submit", 403)
    token = csrf_of(text)  # the viewer's own, valid token (from the sign-out form)
    before = total_jobs(alice)
    for path in (f"/jobs/{job_id}/cancel", f"/jobs/{job_id}/resubmit", "/submit"):
        answer = viewer.post(path, data={"csrf": token, "command": "echo forged"})
        assert answer.status_code == 403, (path, answer.text)
    assert job_of(alice, job_id)["status"] == "pending"
    assert total_jobs(alice) == before


def test_posts_without_the_csrf_token_are_refused(browsers: dict[str, httpx.Client]) -> None:
    alice = browsers["alice"]
    job_id = submit_api(alice, "t-csrf")
    before = total_jobs(alice)
    for path in (f"/jobs/{job_id}/cancel", f"/jobs/{job_id}/resubmit", "/submit"):
        assert alice.post(path, data={"command": "echo forged"}).status_code == 403
        forged = alice.post(path, data={"csrf": "0" * 64, "command": "echo forged"})
        assert forged.status_code == 403
    assert job_of(alice, job_id)["status"] == "pending"
    assert total_jobs(alice) == before


def test_resubmit_creates_a_second_job_with_the_same_spec(
    browsers: dict[str, httpx.Client], worker: httpx.Client
) -> None:
    alice, admin = browsers["alice"], browsers["admin"]
    job_id = submit_api(
        alice,
        "t-resubmit",
        command="echo again",
        env_variables={"MODE": "fast"},
        secret_env={"API_KEY": SECRET},
        priority="best_effort",
        timeout=77,
    )
    answer = admin.post(f"/jobs/{job_id}/resubmit", data={"csrf": csrf_of(page(admin, "/"))})
    assert answer.status_code == 303
    new_id = answer.headers["location"].removeprefix("/jobs/")
    assert new_id != job_id
    old, new = job_of(alice, job_id), job_of(alice, new_id)
    same = ("command", "labels", "env_variables", "secret_env", "priority", "timeout")
    assert {k: new[k] for k in same} == {k: old[k] for k in same}
    assert new["status"] == "pending" and new["secret_env"] == {"API_KEY": "********"}
    text = page(admin, answer.headers["location"])
    assert "echo again" in text and "(you)" in text  # the resubmitter owns the new job
    claim(worker, "t-resubmit", "exec-re-1")  # the older job first
    assert claim(worker, "t-resubmit", "exec-re-2")["secret_env"] == {"API_KEY": SECRET}


# --- the submit form --------------------------------------------------------------------------


def submit_form(
    client: httpx.Client, archive: tuple[str, bytes] | None = None, **fields: str
) -> httpx.Response:
    token = csrf_of(page(client, "/submit"))
    data = {
        "csrf": token,
        "command": "sh run.sh",
        "labels": "",
        "timeout": "3600",
        "priority": "normal",
        "env": "",
        "secret_env": "",
        **fields,
    }
    files = {"archive": (archive[0], archive[1], "application/zip")} if archive else None
    if files is None:  # still multipart, as a browser sends it with an empty file input
        files = {"archive": ("", b"", "application/octet-stream")}
    return client.post("/submit", data=data, files=files)


def test_the_submit_form_lands_on_the_new_job(
    server: LiveServer, browsers: dict[str, httpx.Client]
) -> None:
    alice = browsers["alice"]
    form = page(alice, "/submit")
    assert 'id="submit-form"' in form and 'enctype="multipart/form-data"' in form
    for name in ("command", "labels", "timeout", "priority", "env", "secret_env", "archive"):
        assert f'name="{name}"' in form and f'<label for="{name}"' in form
    archive = make_zip([("run.sh", b"echo from-archive\n"), ("data/x.txt", b"x")])
    answer = submit_form(
        alice,
        ("input.zip", archive),
        command="sh run.sh\r\necho done",
        labels="t-form, build ",
        timeout="120",
        priority="low",
        env="A=1\r\nB=two words\r\n\r\n",
        secret_env=f"TOKEN={SECRET}",
    )
    assert answer.status_code == 303, answer.text
    job_id = answer.headers["location"].removeprefix("/jobs/")
    job = job_of(alice, job_id)
    assert job["command"] == "sh run.sh\necho done"
    assert job["labels"] == ["t-form", "build"] and job["timeout"] == 120
    assert job["priority"] == "best_effort"
    assert job["env_variables"] == {"A": "1", "B": "two words"}
    assert job["secret_env"] == {"TOKEN": "********"}
    assert alice.get(f"{API}/files/{job['input_file_id']}").content == archive
    text = page(alice, answer.headers["location"])
    assert status_of(text) == "pending" and "TOKEN=********" in text and SECRET not in text


def test_the_submit_form_works_without_an_archive(browsers: dict[str, httpx.Client]) -> None:
    answer = submit_form(browsers["admin"], command="true", labels="t-plain")
    assert answer.status_code == 303, answer.text
    job = job_of(browsers["admin"], answer.headers["location"].removeprefix("/jobs/"))
    assert job["input_file_id"] is None and job["priority"] == "background"


SLIP = make_zip([("ok.txt", b"ok"), ("../../escaped.txt", b"pwned")])
GOOD = ("in.zip", make_zip([("ok.txt", b"ok")]))

# (what the form changes, an archive, what the re-rendered form says)
REFUSALS: list[tuple[dict[str, str], tuple[str, bytes] | None, str]] = [
    ({"env": "1BAD=x"}, GOOD, "invalid environment variable name"),
    ({"env": "LD_PRELOAD=/tmp/evil.so"}, GOOD, "LD_PRELOAD"),
    ({"env": "no equals sign"}, GOOD, "env line 1: expected NAME=value"),
    ({"secret_env": f"LD_AUDIT={SECRET}"}, GOOD, "LD_AUDIT"),
    ({"command": "   "}, GOOD, "command must not be empty"),
    ({"timeout": "soon"}, GOOD, "timeout must be a whole number"),
    ({"timeout": "0"}, GOOD, "timeout must be between 1 and 86400"),
    ({"priority": "urgent"}, GOOD, "priority must be high, normal or low"),
    ({"labels": "bad label!"}, GOOD, "invalid label"),
    ({}, ("slip.zip", SLIP), "input archive refused"),
    ({}, ("notes.zip", b"just text"), "not a zip file"),
]


@pytest.mark.parametrize(("fields", "archive", "says"), REFUSALS, ids=[r[2] for r in REFUSALS])
def test_a_refused_form_comes_back_with_the_values_and_stores_nothing(
    server: LiveServer,
    browsers: dict[str, httpx.Client],
    fields: dict[str, str],
    archive: tuple[str, bytes] | None,
    says: str,
) -> None:
    alice = browsers["alice"]
    jobs, files = total_jobs(alice), stored_files(server)
    values = {"command": f"echo '{XSS}'", "labels": "t-refused", "env": "KEEP=me"}
    values |= {"secret_env": f"TOKEN={SECRET}"} | fields
    answer = submit_form(alice, archive, **values)
    assert answer.status_code == 400, answer.text
    text = answer.text
    assert 'id="submit-form"' in text and 'role="alert"' in text
    assert says in html.unescape(text), text
    assert SECRET not in text  # not even the person's own secret travels back
    if "command" not in fields:
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text and XSS not in text
    if "env" not in fields:
        assert "KEEP=me</textarea>" in text
    assert (total_jobs(alice), stored_files(server)) == (jobs, files)


def test_an_archive_over_the_upload_limit_is_refused_with_nothing_stored(
    tmp_path: Path,
) -> None:
    email, password = ADMIN
    settings = {"admin_email": email, "admin_password": password, "max_upload_bytes": 4096}
    with run_server(tmp_path / "data", **settings) as live, closing(sign_in(live, *ADMIN)) as admin:
        big = make_zip([("noise.bin", os.urandom(6000))])  # random: deflate cannot shrink it
        answer = submit_form(admin, ("big.zip", big), labels="t-big")
        assert answer.status_code == 413, answer.text
        assert 'id="submit-form"' in answer.text and "exceeds" in answer.text
        huge = make_zip([("noise.bin", os.urandom(MULTIPART_SLACK + 8192))])
        answer = submit_form(admin, ("huge.zip", huge), labels="t-big")
        assert answer.status_code == 413, answer.text
        assert answer.headers["content-type"].startswith("text/html")
        assert (total_jobs(admin), stored_files(live)) == (0, (0, 0))


def test_a_form_with_extra_parts_is_refused_before_anything_is_read(
    browsers: dict[str, httpx.Client],
) -> None:
    alice = browsers["alice"]
    token = csrf_of(page(alice, "/submit"))
    before = total_jobs(alice)
    flood = {"csrf": token, "command": "true", **{f"x{i}": "y" for i in range(30)}}
    answer = alice.post("/submit", data=flood, files={"archive": ("a.zip", b"")})
    assert answer.status_code == 400 and "could not be read" in answer.text
    two = [("archive", ("a.zip", b"PK")), ("archive", ("b.zip", b"PK"))]
    answer = alice.post("/submit", data={"csrf": token, "command": "true"}, files=two)
    assert answer.status_code == 400 and "could not be read" in answer.text
    assert total_jobs(alice) == before
