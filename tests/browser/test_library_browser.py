"""The library browser in Chromium against a real daemon: two photos dropped into the
inbox show up as thumbnails, can be found by name and by month, opened, downloaded
and exported; no request leaves the host and the console stays clean."""
from __future__ import annotations

import csv
import re

import requests


def _grid_names(page) -> list[str]:
    return page.locator("#lib-grid .lib-name").all_text_contents()


def test_grid_shows_the_thumbnails_of_dropped_photos(two_photos_site, open_page):
    page, seen = open_page(two_photos_site.base_url)
    page.goto("/library")
    assert _grid_names(page) == ["harbour-sunrise.jpg", "mountain-lake.jpg"]
    thumbs = page.locator("#lib-grid img.lib-thumb")
    assert thumbs.count() == 2
    for i in range(2):
        thumbs.nth(i).scroll_into_view_if_needed()
        # naturalWidth > 0 only once the image was fetched and decoded
        page.wait_for_function("img => img.complete && img.naturalWidth > 0",
                               arg=thumbs.nth(i).element_handle())
    assert page.locator("#lib-grid img[loading=lazy]").count() == 2
    seen.assert_clean()


def test_search_by_name_finds_one_photo(two_photos_site, open_page):
    page, seen = open_page(two_photos_site.base_url)
    page.goto("/library")
    page.get_by_label("Name").fill("harbour")
    page.get_by_role("button", name="Search").click()
    page.wait_for_url(re.compile(r"q=harbour"))
    assert _grid_names(page) == ["harbour-sunrise.jpg"]
    seen.assert_clean()


def test_timeline_month_click_filters_the_grid(two_photos_site, open_page):
    page, seen = open_page(two_photos_site.base_url)
    page.goto("/library")
    timeline = page.get_by_role("navigation", name="Timeline")
    assert timeline.get_by_text("August 2022").count() == 1
    if not timeline.get_by_role("link", name="August 2022").is_visible():
        timeline.get_by_text("2022", exact=True).click()  # open the year
    timeline.get_by_role("link", name="August 2022").click()
    page.wait_for_url(re.compile(r"taken_from=2022-08-01&taken_to=2022-08-31"))
    assert _grid_names(page) == ["mountain-lake.jpg"]
    current = timeline.locator("a[aria-current=true]")
    assert current.text_content() == "August 2022"
    seen.assert_clean()


def test_item_page_shows_metadata_and_downloads_the_original(two_photos_site, open_page,
                                                             tmp_path):
    item = two_photos_site.items["mountain-lake.jpg"]
    page, seen = open_page(two_photos_site.base_url)
    page.goto("/library")
    page.get_by_role("link", name=re.compile("mountain-lake.jpg")).click()
    page.wait_for_url(f"**/library/{item['id']}")
    facts = dict(zip(page.locator(".lib-meta dt").all_text_contents(),
                     [t.strip() for t in page.locator(".lib-meta dd").all_text_contents()],
                     strict=True))
    assert facts["Path in the library"] == "image/2022/08/mountain-lake.jpg"
    assert facts["Camera"] == "Canon EOS R6"
    assert facts["Dimensions"] == "600 × 900 px"
    assert facts["SHA-256"] == item["sha256"]
    assert facts["Taken"].startswith("2022-08-21 15:40")
    with page.expect_download() as info:
        page.get_by_role("link", name="Download original").click()
    download = info.value
    assert download.suggested_filename == "mountain-lake.jpg"
    saved = tmp_path / "download.jpg"
    download.save_as(saved)
    stored = two_photos_site.data / "library" / "image" / "2022" / "08" / "mountain-lake.jpg"
    assert saved.read_bytes() == stored.read_bytes()
    seen.assert_clean()


def test_export_button_downloads_a_csv_of_the_items(two_photos_site, open_page, tmp_path):
    page, seen = open_page(two_photos_site.base_url)
    page.goto("/library")
    page.get_by_role("button", name="Export CSV").click()
    link = page.locator("#lib-export-download")
    link.wait_for(timeout=60_000)
    assert page.locator("#lib-export-status").text_content().startswith("Export ready (2 items)")
    with page.expect_download() as info:
        link.click()
    saved = tmp_path / "export.csv"
    info.value.save_as(saved)
    with open(saved, newline="", encoding="utf-8") as f:
        rows = {r["source_name"]: r for r in csv.DictReader(f)}
    assert set(rows) == set(two_photos_site.items)
    for name, item in two_photos_site.items.items():
        assert (int(rows[name]["id"]), rows[name]["path"], rows[name]["sha256"],
                rows[name]["taken_at"], rows[name]["camera"]) == (
            item["id"], item["path"], item["sha256"], item["taken_at"], item["camera"])
    posts = [r for r in seen.requests if r.endswith("/api/tasks")]
    assert len(posts) == 1
    seen.assert_clean()


def test_export_post_is_json(two_photos_site, open_page):
    """The export button sends JSON, which is what the API accepts for state changes."""
    page, seen = open_page(two_photos_site.base_url)
    page.goto("/library")
    with page.expect_request(lambda r: r.method == "POST") as info:
        page.get_by_role("button", name="Export CSV").click()
    request = info.value
    assert request.url == two_photos_site.base_url + "/api/tasks"
    assert request.headers["content-type"] == "application/json"
    assert request.post_data_json == {"name": "library.export", "args": {}}
    page.locator("#lib-export-download").wait_for(timeout=60_000)
    seen.assert_clean()


def test_pages_are_served_under_a_strict_csp_with_no_inline_code(two_photos_site):
    """The pages work under ``default-src 'self'`` (the other tests see no violation in
    the console) because nothing is inline: no script blocks, handlers or style attributes."""
    for path in ("/library", f"/library/{two_photos_site.items['harbour-sunrise.jpg']['id']}"):
        response = requests.get(two_photos_site.base_url + path, timeout=10)
        assert "default-src 'self'" in response.headers["Content-Security-Policy"]
        html = response.text
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html), path
        assert not re.search(r"\sstyle=|\son[a-z]+=", html), path


def test_load_more_appends_the_next_page(two_photos_site, open_page):
    page, seen = open_page(two_photos_site.base_url)
    page.goto("/library?limit=1")
    assert _grid_names(page) == ["harbour-sunrise.jpg"]
    page.get_by_role("link", name="Load more").click()
    page.locator("#lib-grid .lib-card").nth(1).wait_for()
    assert _grid_names(page) == ["harbour-sunrise.jpg", "mountain-lake.jpg"]
    assert page.locator("#lib-more").count() == 0  # the last page: nothing more to load
    assert page.url.endswith("/library?limit=1")   # appended in place, no navigation
    seen.assert_clean()


def test_with_a_token_the_logged_in_page_shows_thumbnails_and_exports(token_site, open_page,
                                                                       tmp_path):
    page, seen = open_page(token_site.base_url)
    page.goto("/library")
    page.wait_for_url("**/login?next=/library")
    page.get_by_label("Token").fill(token_site.token)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url("**/library")
    image = page.locator("#lib-grid img.lib-thumb")
    page.wait_for_function("img => img.complete && img.naturalWidth > 0",
                           arg=image.element_handle())
    with page.expect_request(lambda r: r.method == "POST") as info:
        page.get_by_role("button", name="Export CSV").click()
    assert info.value.headers["x-csrf-token"]
    page.locator("#lib-export-download").wait_for(timeout=60_000)
    with page.expect_download() as download:
        page.locator("#lib-export-download").click()
    saved = tmp_path / "export.csv"
    download.value.save_as(saved)
    with open(saved, newline="", encoding="utf-8") as f:
        assert [r["source_name"] for r in csv.DictReader(f)] == ["garden.jpg"]
    seen.assert_clean()
