"""Issue 14 over real HTTP: the job page says which retries apply and shows names; the
native API's new fields, searches, resubmit and drain refuse bad input with a 4xx."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import closing

import pytest

from tests.integration.test_dashboard_job import page, sign_in
from tests.live import LiveServer, run_server

API = "/api/v1"
ADMIN = ("root@example.com", "admin-password")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    data = tmp_path_factory.mktemp("everyday") / "data"
    with run_server(data, admin_email=ADMIN[0], admin_password=ADMIN[1]) as live:
        yield live


def test_item4_the_job_page_says_which_retries_apply(server: LiveServer) -> None:
    with closing(sign_in(server, *ADMIN)) as browser, server.client() as http:
        body = {"command": "true", "name": "weekly <b>digest</b>", "max_retries": 2}
        flaky = http.post(f"{API}/jobs", json={**body, "retry_on_failure": True}).json()["id"]
        plain = http.post(f"{API}/jobs", json={"command": "true", "max_retries": 0}).json()["id"]
        shown = page(browser, f"/jobs/{flaky}")
        assert "retried if it fails or its worker is lost: up to 2, 2 left" in shown
        assert "weekly &lt;b&gt;digest&lt;/b&gt;" in shown  # escaped, like every field
        assert "of at most" not in shown
        assert "no retries: the first attempt is final" in page(browser, f"/jobs/{plain}")
        assert "weekly &lt;b&gt;digest&lt;/b&gt;" in page(browser, "/")


def test_item5_bad_names_searches_and_drains_are_4xx(server: LiveServer) -> None:
    with server.client() as http:
        too_long = http.post(f"{API}/jobs", json={"command": "true", "name": "x" * 201})
        assert too_long.status_code == 400 and "error" in too_long.json()
        control = http.post(f"{API}/jobs", json={"command": "true", "name": "a\nb"})
        assert control.status_code == 400
        for params in (
            {"id_prefix": "abc%"},
            {"created_after": "yesterday"},
            {"text": "x", "batch_id": "b"},
            {"label": "x", "offset": 20000},
        ):
            refused = http.get(f"{API}/jobs", params=params)
            assert refused.status_code == 400, (params, refused.text)
        assert http.get(f"{API}/jobs", params={"id_prefix": "ffffffff"}).json() == []
        assert http.post(f"{API}/jobs/no-such-job/resubmit").status_code == 404
        assert http.post(f"{API}/executors/no-such-worker/drain").status_code == 404
    with server.client(server.token("viewer")) as viewer:
        assert viewer.post(f"{API}/executors/any/drain").status_code == 403
