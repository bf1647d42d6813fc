"""Watched folders in a real browser: the settings page lists each entry with its
state (watching, polling, error); the overview shows the files each entry saw,
started and ignored in the last hour. Screenshots go to docs/screenshots/."""
from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import pytest
import requests
from helpers import poll_until

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "watch"))
from watch_support import MODULES, entry  # noqa: E402

expect = pytest.importorskip("playwright.sync_api", reason="playwright is not installed").expect

# Into docs/screenshots only when asked (HOPPER_SCREENSHOTS), as the other page tests do.
SHOTS = Path(os.environ.get("HOPPER_SCREENSHOTS") or tempfile.mkdtemp(prefix="hopper-shots-"))


def _entries(base: str) -> list[dict]:
    return requests.get(base + "/api/settings", timeout=5).json()["watch"]


@pytest.fixture
def watched_site(tmp_path, ui_daemon):
    games, shares = tmp_path / "games", tmp_path / "nas-share"
    games.mkdir()
    shares.mkdir()
    daemon = ui_daemon(tasks=MODULES, watch=[
        entry(games, patterns=["*.nsp", "*.xci"], on_moved="watchtest.moved",
              on_deleted="watchtest.deleted"),
        entry(shares, polling=True),
        entry(tmp_path / "not-mounted"),
    ])
    poll_until(lambda: len(_entries(daemon.base_url)) == 3, timeout=60)
    for n in range(3):
        (games / f"game{n}.nsp").write_bytes(b"PFS0" + bytes(100))
    (games / ".DS_Store").write_bytes(b"junk")
    (games / "download.xci.part").write_bytes(b"half")
    poll_until(lambda: any(e["last_hour"]["started"] == 3 and e["last_hour"]["ignored"] >= 2
                           for e in _entries(daemon.base_url)), timeout=60)
    return daemon, games, shares, tmp_path / "not-mounted"


def test_settings_page_lists_each_watched_folder_with_its_state(watched_site, page):
    daemon, games, shares, missing = watched_site
    page.goto(daemon.base_url + "/settings")
    rows = page.locator("#watch-table tr.watch-entry")
    expect(rows).to_have_count(3)
    states = {rows.nth(i).locator("code").inner_text(): rows.nth(i).get_attribute("data-state")
              for i in range(3)}
    assert states == {str(games): "watching", str(shares): "polling", str(missing): "error"}
    assert "not-mounted" in page.locator("#watch-table .watch-error").inner_text()
    page.locator("#watch-table").scroll_into_view_if_needed()
    page.screenshot(path=str(SHOTS / "watch-settings-desktop-light.png"), full_page=True)


def test_overview_shows_files_seen_started_and_ignored_per_entry(watched_site, page):
    daemon, games, _, _ = watched_site
    page.goto(daemon.base_url + "/")
    row = page.locator("#watch-table tr.watch-entry", has=page.locator(f"code:text-is('{games}')"))
    cells = row.locator("td.num")
    expect(cells).to_have_count(3)
    seen, started, ignored = (int(cells.nth(i).inner_text()) for i in range(3))
    assert (seen, started, ignored) == (3, 3, 2)   # .DS_Store and the .part
    page.screenshot(path=str(SHOTS / "watch-overview-desktop-light.png"), full_page=True)
