"""``/api/docs`` in Chromium with no network beyond the server: Swagger UI comes from the
package, renders every operation under the dashboard's CSP, and its Authorize button
puts the token on the calls it makes."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import urlsplit

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, ConsoleMessage, Page, Route, expect

from tests.browser.conftest import Dash, Shots


@pytest.fixture
def offline(browser: Browser, dash: Dash) -> Iterator[tuple[Page, list[str]]]:
    """A page whose every request to another host is refused (and remembered), and whose
    console errors (a CSP refusal is one) are collected."""
    context: BrowserContext = browser.new_context(base_url=dash.url)
    context.set_default_timeout(15_000)
    elsewhere: list[str] = []

    def gate(route: Route) -> None:
        if urlsplit(route.request.url).hostname == "127.0.0.1":
            route.continue_()
        else:
            elsewhere.append(route.request.url)
            route.abort("internetdisconnected")

    context.route("**/*", gate)
    page = context.new_page()
    problems: list[str] = []

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":
            problems.append(message.text)

    page.on("console", on_console)
    yield page, problems
    assert elsewhere == [], f"/api/docs reached outside the server: {elsewhere}"
    context.close()


def test_item2_api_docs_render_offline_under_the_dashboard_csp(
    dash: Dash, offline: tuple[Page, list[str]], shots: Shots
) -> None:
    page, problems = offline
    answer = httpx.get(dash.url + "/api/docs", timeout=10)
    assert answer.status_code == 200
    csp = answer.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    page.goto("/api/docs")
    operations = page.locator(".opblock")
    expect(operations.first).to_be_visible()
    assert operations.count() > 50  # every dialect's operations, not an empty page
    expect(page.locator('.opblock[id*="api_v1_jobs_post"]').first).to_be_visible()
    expect(page.get_by_text("/api/v1/tasks", exact=True).first).to_be_visible()
    shots(page, "api-docs")
    assert problems == [], f"console errors (CSP refusals?) on /api/docs: {problems}"


def test_item2_authorize_button_sends_the_bearer_token(
    dash: Dash, offline: tuple[Page, list[str]]
) -> None:
    page, _ = offline
    page.goto("/api/docs#/default/list_executors_api_v1_executors_get")
    op = page.locator('[id$="list_executors_api_v1_executors_get"]').first
    expect(op).to_be_visible()
    assert execute(page, op) == "401"  # no token yet: refused
    page.locator("button.authorize").first.click()
    page.locator(".modal-ux input").first.fill(dash.admin_token)
    page.locator(".modal-ux button.authorize").first.click()
    page.locator(".modal-ux button.btn-done").first.click()
    assert execute(page, op) == "200"


def execute(page: Page, op: object) -> str:
    """Press the operation's Try it out / Execute and read the status it got."""
    block = page.locator('[id$="list_executors_api_v1_executors_get"]').first
    if block.locator(".opblock-body").count() == 0:
        block.locator(".opblock-summary").click()
    try_out = block.locator("button.try-out__btn")
    if try_out.count() and try_out.inner_text().strip() == "Try it out":
        try_out.click()
    clear = block.locator("button.btn-clear")
    if clear.count():
        clear.click()
    block.locator("button.execute").click()
    status = block.locator(".live-responses-table .response .response-col_status").first
    expect(status).to_be_visible()
    return status.inner_text().strip().split()[0]
