"""The jobs list at ``/`` over real HTTP, signed in as a person with the browser's cookie.

One server is seeded once (module scope) with jobs in every status; tests only read,
except the live-fragment test, which submits into its own label so the others'
figures stay put.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from html.parser import HTMLParser

import httpx
import pytest

from tests.integration.test_dashboard_policy import ADMIN, browser
from tests.live import LiveServer, run_server

XSS = "echo '<script>alert(1)</script>'"
LONG = "echo " + "x" * 400
PAGE = 50


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    email, password = ADMIN
    data = tmp_path_factory.mktemp("dashboard-jobs") / "data"
    with run_server(
        data, admin_email=email, admin_password=password, login_rate_limit="off"
    ) as live:
        with live.client() as http:
            _seed(http)
        yield live


def _seed(http: httpx.Client) -> None:
    """120 plain jobs, then: 3 claimed by w-1 (1 completed, 1 failed, 1 running), one
    cancelled, and a few special commands; everything else stays pending."""
    bulk = [{"command": f"echo job {i}", "labels": ["bulk"]} for i in range(120)]
    assert http.post("/api/v1/jobs/bulk", json=bulk).status_code == 201
    claim = {"executor_id": "w-1", "n": 3, "labels": ["bulk"]}
    claimed = http.post("/api/v1/jobs/claim", json=claim).json()
    reports = [
        {"job_id": claimed[0]["id"], "executor_id": "w-1", "status": "completed", "exit_code": 0},
        {"job_id": claimed[1]["id"], "executor_id": "w-1", "status": "failed", "exit_code": 3},
    ]
    assert http.post("/api/v1/jobs/results", json=reports).status_code == 200
    special = [
        {"command": XSS, "labels": ["xss"]},
        {"command": LONG, "labels": ["long"]},
        {"command": "echo 100% done", "labels": ["pct", "gpu"], "priority": "foreground"},
        {"command": "echo 1000 times", "labels": ["pct"], "priority": "best_effort"},
        {"command": "sleep 1", "labels": ["gone"]},
    ]
    jobs = http.post("/api/v1/jobs/bulk", json=special).json()
    assert http.delete(f"/api/v1/jobs/{jobs[-1]['id']}").status_code == 200


class Rows(HTMLParser):
    """The jobs table's rows (id, status) and every link of the page, in order."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[tuple[str, str]] = []
        self.links: dict[str, str] = {}
        self._text: str | None = None
        self._href = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "tr" and found.get("data-job-id"):
            self.rows.append((found["data-job-id"] or "", found.get("data-status") or ""))
        if tag == "a":
            self._text, self._href = "", found.get("href") or ""

    def handle_data(self, data: str) -> None:
        if self._text is not None:
            self._text += data

    def handle_endtag(self, tag: str) -> None:
        if tag == "a" and self._text is not None:
            self.links.setdefault(" ".join(self._text.split()), self._href)
            self._text = None


def parse(html: str) -> Rows:
    rows = Rows()
    rows.feed(html)
    return rows


@pytest.fixture(scope="module")
def admin(server: LiveServer) -> Iterator[httpx.Client]:
    client = browser(server, "admin")
    yield client
    client.close()


@pytest.fixture(scope="module")
def api_jobs(server: LiveServer) -> list[dict[str, object]]:
    """Every job as the API lists it, newest first: what the page must agree with."""
    with server.client() as http:
        jobs: list[dict[str, object]] = http.get("/api/v1/jobs", params={"limit": 1000}).json()
    return jobs


def page(client: httpx.Client, **params: str) -> Rows:
    answer = client.get("/", params=params)
    assert answer.status_code == 200, answer.text
    return parse(answer.text)


def test_first_page_shows_the_newest_jobs_in_a_live_table(
    admin: httpx.Client, api_jobs: list[dict[str, object]]
) -> None:
    answer = admin.get("/")
    assert answer.status_code == 200
    rows = parse(answer.text).rows
    assert [r[0] for r in rows] == [j["id"] for j in api_jobs[:PAGE]]
    assert [r[1] for r in rows] == [j["status"] for j in api_jobs[:PAGE]]
    assert 'id="jobs"' in answer.text
    assert 'data-live="jobs" data-fragment="/?fragment=rows"' in answer.text
    assert f'href="/jobs/{rows[0][0]}"' in answer.text


def test_counts_per_status_link_to_the_filtered_list(admin: httpx.Client) -> None:
    html = admin.get("/").text
    counts = dict(re.findall(r'class="status (\w+)">\w+</span> <strong>(\d+)</strong>', html))
    assert counts == {
        "pending": "121",
        "running": "1",
        "completed": "1",
        "failed": "1",
        "cancelled": "1",
    }
    assert "All <strong>125</strong>" in html
    link = parse(html).links["failed 1"]
    assert link == "/?status=failed"
    assert [r[1] for r in page(admin, status="failed").rows] == ["failed"]


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"status": "running"}, 1),
        ({"status": "pending"}, PAGE),
        ({"worker": "w-1"}, 3),
        ({"worker": "w-1", "status": "completed"}, 1),
        ({"label": "pct"}, 2),
        ({"label": "gpu"}, 1),
        ({"label": "bul"}, 0),  # whole labels only
        ({"q": "100%"}, 1),  # % is literal
        ({"q": "JOB 11"}, 11),  # case-insensitive: job 11, 110..119
        ({"priority": "high"}, 1),
        ({"priority": "low", "label": "pct"}, 1),
        ({"q": "<script>"}, 1),
        ({"project": "nope"}, 0),
    ],
)
def test_filters(admin: httpx.Client, params: dict[str, str], expected: int) -> None:
    rows = page(admin, **params).rows
    assert len(rows) == expected
    if "status" in params:
        assert {r[1] for r in rows} == {params["status"]}


def test_filters_are_kept_in_the_form_and_the_fragment(admin: httpx.Client) -> None:
    html = admin.get("/", params={"q": "job 1", "label": "bulk", "sort": "oldest"}).text
    assert 'name="q" type="search" maxlength="200" value="job 1"' in html
    assert '<option value="oldest" selected>' in html
    assert 'data-fragment="/?label=bulk&amp;q=job+1&amp;sort=oldest&amp;fragment=rows"' in html


def test_pages_walk_by_cursor_both_ways_and_back_to_the_first(
    admin: httpx.Client, api_jobs: list[dict[str, object]]
) -> None:
    first = page(admin)
    assert "Newer" not in first.links
    seen = [r[0] for r in first.rows]
    current = first
    while "Older" in current.links:
        href = current.links["Older"]
        assert re.fullmatch(r"/\?before=\d+", href)
        current = parse(admin.get(href).text)
        assert "Newest" in current.links
        seen += [r[0] for r in current.rows]
    assert seen == [j["id"] for j in api_jobs]
    assert len(current.rows) == len(api_jobs) - 2 * PAGE

    middle = parse(admin.get(first.links["Older"]).text)
    back = parse(admin.get(middle.links["Newer"]).text)
    assert back.rows == first.rows
    assert "Newer" not in back.links  # the walk back reached the first page: shown as it


def test_oldest_first(admin: httpx.Client, api_jobs: list[dict[str, object]]) -> None:
    first = page(admin, sort="oldest")
    oldest = [j["id"] for j in reversed(api_jobs)]
    assert [r[0] for r in first.rows] == oldest[:PAGE]
    assert re.fullmatch(r"/\?sort=oldest&after=\d+", first.links["Newer"])
    second = parse(admin.get(first.links["Newer"]).text)
    assert [r[0] for r in second.rows] == oldest[PAGE : 2 * PAGE]
    again = parse(admin.get(second.links["Older"]).text)
    assert again.rows == first.rows


def test_filtered_pages_keep_their_filters(admin: httpx.Client) -> None:
    first = page(admin, status="pending", label="bulk")
    older = first.links["Older"]
    assert older.startswith("/?status=pending&label=bulk&before=")
    second = parse(admin.get(older).text)
    assert {r[1] for r in second.rows} == {"pending"}
    assert not {r[0] for r in second.rows} & {r[0] for r in first.rows}


def test_commands_are_escaped_and_long_ones_truncated(admin: httpx.Client) -> None:
    html = admin.get("/", params={"label": "xss"}).text
    body = html.split("<body", 1)[1]
    assert "<script>alert(1)" not in body
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in body
    assert "<script" not in body.replace('<script src="/static/app.js" defer></script>', "")
    long = admin.get("/", params={"label": "long"}).text
    assert "x" * 400 not in long.split("<tbody>", 1)[1].split("title=", 1)[0]
    assert "x" * 100 + "…" in long


def test_fragment_is_the_rows_and_counts_only_and_follows_new_jobs(
    server: LiveServer, admin: httpx.Client
) -> None:
    answer = admin.get("/", params={"label": "fresh", "fragment": "rows"})
    assert answer.status_code == 200
    assert "<html" not in answer.text and 'id="jobs"' in answer.text
    assert "No jobs match these filters." in answer.text
    with server.client() as http:
        job = http.post("/api/v1/jobs", json={"command": "true", "labels": ["fresh"]}).json()
    rows = parse(admin.get("/", params={"label": "fresh", "fragment": "rows"}).text).rows
    assert rows == [(job["id"], "pending")]


@pytest.mark.parametrize(
    "params",
    [
        {"status": "bogus"},
        {"sort": "sideways"},
        {"before": "abc"},
        {"after": "-3"},
        {"before": "99999999999999999999999"},
        {"priority": "urgent"},
        {"fragment": "everything"},
        {"q": "x" * 201},
    ],
)
def test_bad_filter_values_answer_a_400_page(admin: httpx.Client, params: dict[str, str]) -> None:
    answer = admin.get("/", params=params)
    assert answer.status_code == 400
    assert answer.headers["content-type"].startswith("text/html")
    assert "Invalid input" in answer.text


def test_without_a_session_the_filtered_view_is_kept_through_sign_in(
    server: LiveServer,
) -> None:
    anonymous = browser(server, "anonymous")
    try:
        answer = anonymous.get("/", params={"status": "failed"})
        assert answer.status_code == 303
        assert answer.headers["location"] == "/login?next=/%3Fstatus%3Dfailed"
    finally:
        anonymous.close()
