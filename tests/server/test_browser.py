"""A reviewer in a real browser (Debian's Chromium via Playwright) approves and rejects.

The reviewer logs in, approves one decision, rejects one with a reason, and sees both in the
log view.

Set ``MESAGUARD_SCREENSHOTS=DIR`` to keep PNGs of the queue and decision pages (docs/img/).
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from server_harness import PASSWORD, Server
from test_api import decision_body, submit

pytestmark = [pytest.mark.slow, pytest.mark.browser]

CHROMIUM = Path("/usr/bin/chromium")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.skip(
            f"Debian's chromium is not installed at {CHROMIUM}: `make install` installs it when "
            "run as root (apt-get install -y chromium); `playwright install` is never used"
        )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        # --no-sandbox: CI containers run as root, where Chromium's sandbox cannot start.
        launched = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=["--no-sandbox"]
        )
        try:
            yield launched
        finally:
            launched.close()


def test_a_reviewer_approves_and_rejects_in_the_browser_and_sees_the_log(
    server: Server, browser: Any
) -> None:
    from playwright.sync_api import expect

    shots = os.environ.get("MESAGUARD_SCREENSHOTS")
    # Tenant B (reviewer bob, agent bot-b) holds only this test's decisions.
    keys = {"approve": "BROWSER-1", "reject": "BROWSER-2"}
    for item_key in keys.values():
        body = decision_body(agent="bot-b", tenant="tenant-b", item_key=item_key)
        assert submit(server, body, user="bot-b")["outcome"] == "queued"
    submit(
        server,
        decision_body(
            agent="bot-b", tenant="tenant-b", item_key="BROWSER-3", value="Trivial", confidence=0.6
        ),
        user="bot-b",
    )

    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    try:
        page.goto(server.url + "/queue")
        expect(page).to_have_url(re.compile(r"/login\?next=/queue$"))
        page.get_by_label("User name").fill("bob")
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Log in").click()
        expect(page).to_have_url(re.compile(r"/queue$"))
        queue = page.locator("#queue")
        for item_key in ["BROWSER-1", "BROWSER-2", "BROWSER-3"]:
            expect(queue).to_contain_text(item_key)
        if shots:
            Path(shots).mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(Path(shots) / "queue.png"), full_page=True)

        page.get_by_role("link", name="BROWSER-1").click()
        expect(page.locator("#rules")).to_contain_text("A3.severe-downgrade")
        expect(page.locator("#rationale")).to_contain_text("workaround")
        if shots:
            page.screenshot(path=str(Path(shots) / "decision.png"), full_page=True)
        page.get_by_label("Reason").fill("Workaround confirmed with the reporter")
        page.get_by_role("button", name="Approve").click()
        expect(page.locator("#state")).to_have_text("approved")
        expect(page.get_by_role("status")).to_contain_text("Approved")
        expect(page.locator("#history")).to_contain_text("Workaround confirmed with the reporter")

        page.get_by_role("link", name="Queue").click()
        page.get_by_role("link", name="BROWSER-2").click()
        page.get_by_label("Reason").fill("Data loss on save; keep it a Blocker")
        page.get_by_role("button", name="Reject").click()
        expect(page.locator("#state")).to_have_text("rejected")

        # Decided items leave the pending queue.
        page.get_by_role("link", name="Queue").click()
        expect(page.locator("#queue")).to_contain_text("BROWSER-3")
        expect(page.locator("#queue")).not_to_contain_text("BROWSER-1")
        expect(page.locator("#queue")).not_to_contain_text("BROWSER-2")

        page.get_by_role("link", name="Log").click()
        expect(page.locator("#verification")).to_contain_text("Verified")
        entries = page.locator("#entries tbody tr")
        approve_row = entries.filter(has_text="BROWSER-1").filter(has_text="approve")
        reject_row = entries.filter(has_text="BROWSER-2").filter(has_text="reject")
        expect(approve_row).to_have_count(1)
        expect(reject_row).to_have_count(1)
        expect(reject_row).to_contain_text("Data loss on save; keep it a Blocker")
        expect(approve_row).to_contain_text("bob")
        if shots:
            page.screenshot(path=str(Path(shots) / "log.png"), full_page=True)
    finally:
        context.close()


def test_chromium_is_debians_and_not_a_playwright_download() -> None:
    if not CHROMIUM.exists():
        pytest.skip(f"no chromium at {CHROMIUM}")
    assert shutil.which("chromium") is not None
