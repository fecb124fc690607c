"""A job's output in Chromium: ANSI colours arriving live become coloured spans, the block
follows the end while the job runs, the whole stream downloads, and an unknown URL is
the dashboard's HTML 404."""

from __future__ import annotations

from pathlib import Path

from playwright.sync_api import Page, expect

from tests.browser.conftest import SUBMITTER, Dash, Shots, SignIn

# Colour escapes and enough lines to overflow the block, written over about two seconds
# once the page is open (the test creates the gate file), so they arrive live.
NOISY = (
    "while [ ! -e {gate} ]; do sleep 0.1; done; "
    "printf '\\033[31mred alert\\033[0m plain\\n'; "
    "i=0; while [ $i -lt 300 ]; do echo line $i; i=$((i+1)); "
    "[ $((i % 50)) -eq 0 ] && sleep 0.3; done; "
    "head -c 200000 /dev/zero | tr '\\0' x | fold -w 99; echo; "  # past what the page keeps
    "printf '\\033[1;32mall done\\033[0m\\n'"
)


def pinned(page: Page, selector: str) -> bool:
    """Scrolled to the end: what a reader following the output sees."""
    return bool(
        page.eval_on_selector(
            selector,
            "el => el.scrollHeight > el.clientHeight && "
            "el.scrollTop + el.clientHeight >= el.scrollHeight - 4",
        )
    )


def test_item3_live_output_is_coloured_and_follows_the_end(
    dash: Dash, shared_worker: str, sign_in: SignIn, shots: Shots, tmp_path: Path
) -> None:
    gate = tmp_path / "gate"
    page = sign_in(SUBMITTER)
    job_id = dash.submit(NOISY.format(gate=gate), as_user=SUBMITTER[0])
    dash.wait_status(job_id, "running")
    page.goto(f"/jobs/{job_id}")
    expect(page.locator("section[data-job-output]")).to_have_attribute("data-followed", "on")
    stdout = page.locator("pre#stdout")
    assert stdout.inner_text().strip() == ""  # all that follows is rendered by app.js
    gate.touch()
    red = stdout.locator("span.ansi-fg-1")
    expect(red).to_have_text("red alert", timeout=10_000)
    expect(stdout).to_contain_text("line 120", timeout=10_000)
    assert pinned(page, "pre#stdout"), "the output block does not follow the end"
    expect(stdout.locator("span.ansi-bold.ansi-fg-2")).to_have_text("all done", timeout=15_000)
    assert pinned(page, "pre#stdout")
    shown = stdout.inner_text()
    assert "\x1b" not in shown and "[31m" not in shown
    # 200 KB arrived live: the oldest lines left the page, which says so.
    assert "red alert" not in shown and len(shown) <= 2 * 64 * 1024
    expect(page.locator("#stdout-hidden")).to_be_visible()
    expect(page.locator("#job-status")).to_have_attribute("data-status", "completed")
    shots(page, "job-output-ansi")

    with page.expect_download() as download:
        page.locator("#stdout-download").click()
    saved = download.value.path().read_bytes()
    assert saved.startswith(b"\x1b[31mred alert\x1b[0m plain\n")
    assert saved.endswith(b"x\n\x1b[1;32mall done\x1b[0m\n") and b"line 299\n" in saved
    assert saved.count(b"x") >= 200_000


def test_item3_unknown_url_is_the_dashboards_404_page(
    dash: Dash, sign_in: SignIn, shots: Shots
) -> None:
    page = sign_in(SUBMITTER)
    answer = page.goto("/jobz/typo")
    assert answer is not None and answer.status == 404
    expect(page.get_by_role("heading", name="Page not found")).to_be_visible()
    expect(page.get_by_role("link", name="Back to the jobs")).to_be_visible()
    nav = page.get_by_role("navigation", name="Main")  # signed in: the way back is there
    expect(nav.get_by_role("link", name="Workers")).to_be_visible()
    shots(page, "not-found")
