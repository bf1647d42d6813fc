"""The library pages at desktop (1280 px) and phone (390 px) width, light and dark.

Each page must fit the width (no sideways scrolling) and load cleanly. With
``HOPPER_SCREENSHOTS`` set to a folder (``docs/screenshots/make_screenshots.py``
does that) the screenshots are written there for the README.
"""
from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import pytest
from recorder import DESKTOP, PHONE

VIEWPORTS = {"desktop": DESKTOP, "phone": PHONE}
PREFIX = {"library": "library", "item": "library-item", "video": "library-video"}


@pytest.fixture(scope="module")
def demo_site(tmp_path_factory):
    """A library with photos over several months, an iPhone HEIC and video, a PDF, a
    transparent PNG, a Word file, a duplicate and a broken image."""
    from library_media import (
        alpha_png_bytes,
        broken_jpeg_bytes,
        docx_bytes,
        pdf_pages_bytes,
        scene_bytes,
        scene_heic_bytes,
        video_bytes,
    )
    from library_site import start_site, stop_site

    cameras = [("FUJIFILM", "X-T30"), ("Canon", "Canon EOS R6"), ("Apple", "iPhone 13")]
    shots = [("2023:06:18 19:02:11", "sunset-pier"), ("2023:06:03 08:15:40", "morning-hike"),
             ("2023:04:22 13:30:05", "spring-fields"), ("2023:04:09 06:12:00", "harbour-sunrise"),
             ("2023:01:01 00:05:00", "new-year-sky"), ("2022:12:24 17:45:00", "winter-evening"),
             ("2022:08:21 15:40:10", "mountain-lake"), ("2022:08:20 11:10:00", "ridge-walk"),
             ("2022:08:19 09:00:00", "valley-camp"), ("2021:05:30 18:20:00", "garden-dusk")]
    files = {}
    for n, (when, name) in enumerate(shots):
        make, model = cameras[n % len(cameras)]
        files[f"{name}.jpg"] = (scene_bytes(n, original=when, make=make, model=model), None)
    files["copy of sunset-pier.jpg"] = files["sunset-pier.jpg"]
    files["tax-return-2022.pdf"] = (pdf_pages_bytes(1, 3, "D:20230402100000Z"), None)
    files["IMG_4102.HEIC"] = (scene_heic_bytes(7, "2023:06:11 07:45:00"), None)
    files["IMG_4103.MOV"] = (video_bytes(3, "mov", "2023-06-11T07:50:00Z", seconds=4.0,
                                         size=(640, 360), location="+46.5584+008.5611/"), None)
    files["logo.png"] = (alpha_png_bytes(2, size=(480, 360)), dt.datetime(2023, 5, 2, 10, 0))
    files["letter.docx"] = (docx_bytes(1), dt.datetime(2023, 5, 9, 16, 0))
    files["scan-damaged.jpg"] = (broken_jpeg_bytes(1), dt.datetime(2023, 6, 1, 9, 0))
    site = start_site(tmp_path_factory.mktemp("demo"),
                      {k: v for k, v in files.items() if not k.startswith("copy of")})
    # The copy goes in last, so the duplicate is recorded against the first one.
    _drop_duplicate(site, "copy of sunset-pier.jpg", files["copy of sunset-pier.jpg"][0])
    yield site
    stop_site(site)


def _drop_duplicate(site, name: str, data: bytes) -> None:
    from helpers import poll_until

    staged = site.data / f".staged-{name}"
    staged.write_bytes(data)
    os.rename(staged, site.data / "inbox" / name)
    item_id = site.items["sunset-pier.jpg"]["id"]
    poll_until(lambda: site.api(f"/api/library/{item_id}")["duplicates"], timeout=60,
               message=lambda: site.daemon.read_log()[-2000:])


def _out_dir(tmp_path) -> Path:
    folder = os.environ.get("HOPPER_SCREENSHOTS")
    return Path(folder) if folder else tmp_path


@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize("width", ["desktop", "phone"])
@pytest.mark.parametrize("which", ["library", "item", "video"])
def test_library_page_fits_the_width_and_loads_cleanly(demo_site, open_page, tmp_path,
                                                       which, width, scheme):
    page, seen = open_page(demo_site.base_url, viewport=VIEWPORTS[width], color_scheme=scheme)
    item = demo_site.items["IMG_4103.MOV" if which == "video" else "sunset-pier.jpg"]
    page.goto("/library" if which == "library" else f"/library/{item['id']}")
    if which == "video":  # the poster frame is shown once the player has the metadata
        page.wait_for_function("v => v.readyState >= 2", arg=page.locator("video").element_handle())
    for img in page.locator("img").element_handles():
        img.scroll_into_view_if_needed()
        page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=img)
    page.evaluate("window.scrollTo(0, 0)")
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"{overflow}px of sideways scrolling"
    name = f"{PREFIX[which]}-{width}-{scheme}.png"
    page.screenshot(path=str(_out_dir(tmp_path) / name), full_page=which != "library")
    seen.assert_clean()
