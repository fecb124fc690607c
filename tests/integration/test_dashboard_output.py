"""The job page's output, owners and project filter, and the HTML 404, over real HTTP as a
signed-in browser gets them. Output is posted the way a worker does (native API)."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from contextlib import closing
from typing import Any

import httpx
import pytest

from tests.integration.test_dashboard_job import (
    ADMIN,
    PASSWORD,
    claim,
    finish,
    page,
    post_output,
    sign_in,
    submit_api,
)
from tests.live import LiveServer, run_server

API = "/api/v1"
RED, BOLD_GREEN, RESET = "\x1b[31m", "\x1b[1;32m", "\x1b[0m"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    data = tmp_path_factory.mktemp("dashboard-output") / "data"
    email, password = ADMIN
    with run_server(
        data, admin_email=email, admin_password=password, login_rate_limit="off"
    ) as live:
        with live.client() as http:
            body = {"email": "carol@example.com", "password": PASSWORD, "role": "submitter"}
            assert http.post(f"{API}/admin/users", json=body).status_code == 201
        yield live


@pytest.fixture(scope="module")
def carol(server: LiveServer) -> Iterator[httpx.Client]:
    client = sign_in(server, "carol@example.com", PASSWORD)
    yield client
    client.close()


@pytest.fixture(scope="module")
def worker(server: LiveServer) -> Iterator[httpx.Client]:
    with server.client(server.token("worker")) as http:
        yield http


def run_job(carol: httpx.Client, worker: httpx.Client, label: str, *chunks: str) -> str:
    job_id = submit_api(carol, label)
    job = claim(worker, label, f"w-{label}")
    for chunk in chunks:
        post_output(worker, job, chunk, "stdout")
    finish(worker, job, 0)
    return job_id


def pre_html(text: str, name: str) -> str:
    found = re.search(rf'<pre id="{name}"[^>]*>\n(.*?)</pre>', text, re.S)
    assert found is not None, text
    return found[1]


def test_item3_ansi_colours_render_as_classes_without_escapes(
    carol: httpx.Client, worker: httpx.Client
) -> None:
    job_id = run_job(
        carol,
        worker,
        "ansi",
        f"{RED}error{RESET} and {BOLD_GREEN}ok{RESET}\x1b[2K\x1b]0;title\x07!\n",
    )
    shown = pre_html(page(carol, f"/jobs/{job_id}"), "stdout")
    assert "\x1b" not in shown and "[31m" not in shown and "title" not in shown
    assert '<span class="ansi-fg-1">error</span>' in shown
    assert '<span class="ansi-bold ansi-fg-2">ok</span>' in shown
    assert html.unescape(re.sub(r"<[^>]+>", "", shown)) == "error and ok!\n"


def test_item3_long_output_shows_its_tail_and_downloads_whole(
    carol: httpx.Client, worker: httpx.Client
) -> None:
    lines = [f"line {n:06d} " + "x" * 90 + "\n" for n in range(1500)]  # ~150 KB
    job_id = run_job(
        carol, worker, "long", *("".join(lines[i : i + 300]) for i in range(0, 1500, 300))
    )
    text = page(carol, f"/jobs/{job_id}")
    shown = pre_html(text, "stdout")
    assert "line 001499" in shown and "line 000000" not in shown
    assert len(shown) <= 64 * 1024 + 200
    assert re.search(r'<p id="stdout-hidden" class="muted">', text), "the page must say it cut"
    offset = re.search(r'<pre id="stdout"[^>]*data-offset="(\d+)"', text)
    assert offset is not None and int(offset[1]) == len("".join(lines))
    download = carol.get(f"/jobs/{job_id}/output/stdout")
    assert download.status_code == 200
    assert download.headers["content-type"].startswith("text/plain")
    assert download.headers["content-disposition"].startswith("attachment;")
    assert download.text == "".join(lines)


def test_item3_download_keeps_escapes_and_refuses_other_streams(
    carol: httpx.Client, worker: httpx.Client
) -> None:
    job_id = run_job(carol, worker, "raw", f"{RED}red{RESET}\n")
    assert carol.get(f"/jobs/{job_id}/output/stdout").text == f"{RED}red{RESET}\n"
    assert carol.get(f"/jobs/{job_id}/output/stderr").text == ""
    assert carol.get(f"/jobs/{job_id}/output/secrets").status_code == 404
    assert carol.get("/jobs/no-such-job/output/stdout").status_code == 404


def test_item3_owner_shown_by_email_not_id(
    server: LiveServer, carol: httpx.Client, worker: httpx.Client
) -> None:
    job_id = run_job(carol, worker, "owner")
    text = page(carol, f"/jobs/{job_id}")
    owner = re.search(r'<dt>Owner</dt><dd data-owner="([^"]+)">([^<]*)', text)
    assert owner is not None
    assert owner[2].strip() == "carol@example.com"
    with server.client() as http:  # an API token's job: the token's name
        token_job = http.post(f"{API}/jobs", json={"command": "true", "labels": ["tok"]}).json()
    with closing(sign_in(server, *ADMIN)) as admin:
        text = page(admin, f"/jobs/{token_job['id']}")
    owner = re.search(r'<dt>Owner</dt><dd data-owner="[^"]+">([^<]*)', text)
    assert owner is not None and owner[1].strip().startswith("token ")


def test_item3_project_filter_is_a_choice_of_projects(
    server: LiveServer, carol: httpx.Client
) -> None:
    with server.client() as http:
        made: dict[str, Any] = {}
        for name in ("zeta-builds", "alpha-docs"):
            answer = http.post("/api/projects", json={"name": name})
            assert answer.status_code == 201, answer.text
            made[name] = answer.json()["data"]["id"]
    text = page(carol, "/?project=" + made["zeta-builds"])
    select = re.search(r'<select id="f-project" name="project">(.*?)</select>', text, re.S)
    assert select is not None, "the project filter must be a select"
    options = re.findall(r'<option value="([^"]*)"\s*(selected)?>([^<]*)</option>', select[1])
    assert [(v, label) for v, _, label in options] == [
        ("", "Any"),
        (made["alpha-docs"], "alpha-docs"),
        (made["zeta-builds"], "zeta-builds"),
    ]
    assert [v for v, chosen, _ in options if chosen] == [made["zeta-builds"]]


BROWSER_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"


@pytest.mark.parametrize("path", ["/no/such/page", "/api/v1/nowhere", "/static/missing.js"])
def test_item3_unknown_url_in_a_browser_is_an_html_404(server: LiveServer, path: str) -> None:
    answer = httpx.get(server.url + path, headers={"Accept": BROWSER_ACCEPT}, timeout=10)
    assert answer.status_code == 404
    assert answer.headers["content-type"].startswith("text/html")
    assert "unsafe-inline" not in answer.headers["content-security-policy"]
    assert (
        "Page not found" in answer.text
        and '<link rel="stylesheet" href="/static/app.css">' in answer.text
    )


@pytest.mark.parametrize(
    ("path", "key"),
    [("/no/such/page", "context"), ("/api/v1/nowhere", "context"), ("/api/tasks/x/y/z", "success")],
)
def test_item3_api_clients_keep_json_404s(server: LiveServer, path: str, key: str) -> None:
    for accept in ("application/json", "*/*"):
        answer = httpx.get(server.url + path, headers={"Accept": accept}, timeout=10)
        assert answer.status_code == 404
        assert answer.headers["content-type"].startswith("application/json")
        assert key in answer.json()


def test_item3_job_page_names_its_project(server: LiveServer) -> None:
    with server.client() as http:
        project = http.post("/api/projects", json={"name": "named-on-page"}).json()["data"]["id"]
        kind = http.post(
            f"/api/projects/{project}/task-types", json={"name": "t", "template": "do it"}
        ).json()["data"]["id"]
        task = http.post(f"/api/projects/{project}/tasks", json={"typeId": kind, "command": "true"})
        assert task.status_code == 201, task.text
        job_id = task.json()["data"]["id"]
    with closing(sign_in(server, *ADMIN)) as admin:
        text = page(admin, f"/jobs/{job_id}")
    link = re.search(r'<a href="/projects/([^"]+)" data-project="[^"]+">([^<]+)</a>', text)
    assert link is not None and link[1] == project and link[2] == "named-on-page"


def test_item3_html_404_keeps_the_signed_in_navigation(carol: httpx.Client) -> None:
    answer = carol.get("/no/such/page", headers={"Accept": BROWSER_ACCEPT})
    assert answer.status_code == 404 and "Page not found" in answer.text
    assert '<nav aria-label="Main">' in answer.text and "carol@example.com" in answer.text
