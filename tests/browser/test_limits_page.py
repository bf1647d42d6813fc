"""The Limits page in a real browser against a real daemon: a busy concurrency key,
a spent rate limit, editing a rate, at desktop and phone widths in both schemes.

With ``HOPPER_SCREENSHOTS`` set to a folder (``docs/screenshots``) the PNGs go there."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
import requests
from daemons import Daemon, write_settings
from helpers import poll_until
from recorder import DESKTOP, PHONE

expect = pytest.importorskip("playwright.sync_api", reason="playwright is not installed").expect

KEY = "export:user-1"
RATE_KEY = "api:quota"


def _healthy(base: str) -> bool:
    try:
        return requests.get(base + "/healthz", timeout=5).status_code == 200
    except requests.RequestException:  # not listening yet, or too busy starting to answer
        return False


def _enqueue(base: str, **body) -> int:
    response = requests.post(base + "/api/tasks", json=body, timeout=10)
    assert response.status_code == 201, response.text
    return response.json()["id"]


@pytest.fixture(scope="module")
def busy_site(tmp_path_factory):
    """A daemon with one key at its limit and one rate limit spent for the minute."""
    folder = tmp_path_factory.mktemp("limits")
    daemon = Daemon(write_settings(folder, workers=2, rate_limits={RATE_KEY: "2/m"}))
    daemon.start()
    try:
        base = daemon.base_url
        poll_until(lambda: _healthy(base), timeout=30, message=daemon.read_log)
        held = _enqueue(base, name="timed", args={"seconds": 120}, concurrency_key=KEY)
        for _ in range(3):
            _enqueue(base, name="timed", args={"seconds": 0}, concurrency_key=KEY)
        for _ in range(5):
            _enqueue(base, name="timed", args={"seconds": 0}, rate_key=RATE_KEY)

        def settled():
            limits = requests.get(base + "/api/limits", timeout=10).json()
            rates = {r["key"]: r for r in limits["rates"]}
            return (requests.get(f"{base}/api/tasks/{held}", timeout=10).json()["status"]
                    == "running" and rates.get(RATE_KEY, {}).get("used") == 2
                    and rates[RATE_KEY]["queued"] == 3)

        poll_until(settled, timeout=30, message=daemon.read_log)
        yield daemon
    finally:
        daemon.stop()
        daemon.kill_everything()


def _out_dir(tmp_path) -> Path:
    folder = os.environ.get("HOPPER_SCREENSHOTS")
    return Path(folder) if folder else tmp_path


@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize("width", ["desktop", "phone"])
def test_limits_page_shows_slots_queued_and_claims_and_fits_the_width(
        busy_site, open_page, tmp_path, width, scheme):
    page, seen = open_page(busy_site.base_url, viewport=DESKTOP if width == "desktop" else PHONE,
                           color_scheme=scheme)
    page.goto("/limits")
    key_row = page.locator(f'tr[data-key="{KEY}"]')
    expect(key_row).to_contain_text("1 / 1")
    expect(key_row.locator("td.num")).to_have_text("3")
    rate_row = page.locator(f'tr[data-rate="{RATE_KEY}"]')
    expect(rate_row).to_contain_text("2/m")
    expect(rate_row).to_contain_text("2 of 2")
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"{overflow}px of sideways scrolling"
    page.screenshot(path=str(_out_dir(tmp_path) / f"limits-{width}-{scheme}.png"),
                    full_page=True)
    seen.assert_clean()


def test_rates_are_added_edited_and_removed_on_the_limits_page(busy_site, open_page):
    page, seen = open_page(busy_site.base_url)
    page.goto("/limits")
    add = page.locator("#add-rate")
    add.locator('input[name="key"]').fill("smtp")
    add.locator('input[name="rate"]').fill("5/s")
    add.get_by_role("button", name="Add").click()
    expect(page.locator(".flash")).to_contain_text("rate limit smtp is now 5/s")
    form = page.locator('tr[data-rate="smtp"] form')
    form.locator('input[name="rate"]').fill("7/h")
    form.get_by_role("button", name="Save").click()
    expect(page.locator(".flash")).to_contain_text("rate limit smtp is now 7/h")
    expect(page.locator('tr[data-rate="smtp"]')).to_contain_text("0 of 7")

    def api_rates():
        return {r["key"]: r["rate"] for r in
                requests.get(busy_site.base_url + "/api/limits", timeout=10).json()["rates"]}

    assert api_rates()["smtp"] == "7/h"
    page.locator('tr[data-rate="smtp"] form').get_by_role("button", name="Remove").click()
    expect(page.locator(".flash")).to_contain_text("rate limit smtp removed")
    expect(page.locator('tr[data-rate="smtp"]')).to_have_count(0)
    assert "smtp" not in api_rates()
    seen.assert_clean()


def test_a_malformed_rate_on_the_limits_page_is_refused_with_the_reason(busy_site, open_page):
    page, seen = open_page(busy_site.base_url)
    page.goto("/limits")
    add = page.locator("#add-rate")
    add.locator('input[name="key"]').fill("bad")
    page.evaluate("document.querySelector('#add-rate input[name=rate]').removeAttribute('pattern')")
    add.locator('input[name="rate"]').fill("5/day")
    add.get_by_role("button", name="Add").click()
    expect(page.locator(".flash")).to_contain_text("not changed: a rate is N/s, N/m or N/h")
    expect(page.locator('tr[data-rate="bad"]')).to_have_count(0)
    seen.assert_clean()


def test_task_page_says_the_task_waits_for_its_key(busy_site, open_page):
    page, seen = open_page(busy_site.base_url)
    tasks = requests.get(busy_site.base_url + "/api/tasks?status=queued", timeout=10).json()
    waiting = next(t for t in tasks["tasks"] if t["concurrency_key"] == KEY)
    page.goto(f"/tasks/{waiting['id']}")
    expect(page.locator("#task-waiting")).to_contain_text(
        f"This task waits for its concurrency key {KEY}: 1 of 1 running")
    seen.assert_clean()
