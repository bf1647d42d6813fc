"""Phone media in Chromium against a real daemon: HEIC, video and PDF tiles show their
previews on the grid, the video item plays in the page's player (its currentTime
advances), and the HEIC item shows its large preview."""
from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def media_site(tmp_path_factory):
    from library_media import (
        broken_jpeg_bytes,
        docx_bytes,
        heic_bytes,
        pdf_pages_bytes,
        video_bytes,
    )
    from library_site import start_site, stop_site

    files = {
        "IMG_0101.HEIC": (heic_bytes(1, "2023:06:18 19:02:11", size=(1800, 1200)), None),
        "IMG_0102.MP4": (video_bytes(2, "mp4", "2023-06-18T18:00:00Z", seconds=6.0,
                                     size=(640, 360)), None),
        "minutes.pdf": (pdf_pages_bytes(3, 3, "D:20230601090000Z"), None),
        "scan-damaged.jpg": (broken_jpeg_bytes(4), None),
        "letter.docx": (docx_bytes(5), None),
    }
    site = start_site(tmp_path_factory.mktemp("media"), files)
    yield site
    stop_site(site)


def _loaded(page, locator) -> None:
    locator.scroll_into_view_if_needed()
    page.wait_for_function("img => img.complete && img.naturalWidth > 0",
                           arg=locator.element_handle())


def test_grid_shows_heic_video_and_pdf_tiles_with_previews(media_site, open_page):
    page, seen = open_page(media_site.base_url)
    page.goto("/library")
    for name, badge in (("IMG_0101.HEIC", None), ("IMG_0102.MP4", "▶ MP4 · 0:06"),
                        ("minutes.pdf", "PDF")):
        card = page.locator("#lib-grid .lib-card", has_text=name)
        _loaded(page, card.locator("img.lib-thumb"))
        if badge:
            assert card.locator(".lib-badge").inner_text() == badge
    seen.assert_clean()


def test_tiles_without_a_preview_say_whether_it_could_not_be_decoded(media_site, open_page):
    # The two newest items; the first page is rendered by the server, the next by the script.
    page, seen = open_page(media_site.base_url)
    page.goto("/library?limit=1")
    page.get_by_role("link", name="Load more").click()
    page.locator("#lib-grid .lib-card").nth(1).wait_for()
    states = {page.locator("#lib-grid .lib-card").nth(i).locator(".lib-state").inner_text()
              for i in range(2)}
    assert states == {"no preview: cannot be decoded", "document"}
    seen.assert_clean()


def test_video_item_plays_in_the_page(media_site, open_page):
    page, seen = open_page(media_site.base_url)
    page.goto(f"/library/{media_site.items['IMG_0102.MP4']['id']}")
    video = page.locator("video#lib-video")
    assert video.get_attribute("src").endswith("/file?inline=1")
    page.evaluate("v => { v.muted = true; return v.play(); }", video.element_handle())
    page.wait_for_function("v => v.currentTime > 0.5", arg=video.element_handle())
    # Seeking needs Range answers: jump near the end and play from there.
    page.evaluate("v => { v.currentTime = 4.5; }", video.element_handle())
    page.wait_for_function("v => v.currentTime > 4.6", arg=video.element_handle())
    assert page.locator("#lib-duration").inner_text().startswith("0:06")
    seen.assert_clean()


def test_heic_item_shows_its_large_preview(media_site, open_page):
    page, seen = open_page(media_site.base_url)
    page.goto(f"/library/{media_site.items['IMG_0101.HEIC']['id']}")
    img = page.locator(".lib-preview img")
    _loaded(page, img)
    assert img.get_attribute("src").endswith("/preview")
    assert page.evaluate("i => i.naturalWidth", img.element_handle()) == 1600
    assert page.locator("#lib-preview-state").inner_text() == "ready"
    seen.assert_clean()


def test_pdf_item_shows_its_first_page_and_page_count(media_site, open_page):
    page, seen = open_page(media_site.base_url)
    page.goto(f"/library/{media_site.items['minutes.pdf']['id']}")
    _loaded(page, page.locator(".lib-preview img"))
    assert page.locator("#lib-pages").inner_text() == "3"
    seen.assert_clean()
