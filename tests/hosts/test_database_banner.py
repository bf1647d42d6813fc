"""The UI while the database is away: a banner on the overview, gone once it is back.
A real daemon on a simulated host, its own PostgreSQL stopped and started, Chromium."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"


@pytest.fixture
def chromium():
    if not os.path.exists(CHROMIUM):
        if os.environ.get("CI") == "true":
            pytest.fail(f"{CHROMIUM} is required in CI")
        pytest.skip(f"{CHROMIUM} is missing (apt-get install -y chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield browser
        browser.close()


def test_the_overview_shows_a_banner_while_the_database_is_away(lab, start_daemon, chromium,
                                                                tmp_path):
    from helpers import poll_until
    from test_several_hosts import _get

    host = lab.add_host("h1")
    server = start_daemon(host, command="serve")
    base = f"http://{host.address}:8000"
    poll_until(lambda: _get(f"{base}/healthz") == 200, timeout=30)
    page = chromium.new_page(viewport={"width": 1280, "height": 800})
    page.set_default_timeout(30_000)
    page.goto(f"{base}/login")
    page.fill("input[name=token]", "lab-token")
    page.click("button")
    banner = page.locator("#db-banner")
    assert banner.is_hidden()
    lab.stop_postgres()
    banner.wait_for(state="visible")
    assert "The database is unavailable" in banner.inner_text()
    # With HOPPER_SCREENSHOTS=docs/screenshots the picture goes into the docs.
    shots = Path(os.environ.get("HOPPER_SCREENSHOTS") or tmp_path)
    shots.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(shots / "database-unavailable.png"))
    lab.start_postgres_again()
    banner.wait_for(state="hidden")
    page.close()
    assert server.stop() == 0
