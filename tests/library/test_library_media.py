"""identify on phone media: HEIC/AVIF, MP4/MOV, multi-page PDFs, rotated and geotagged JPEGs."""
from __future__ import annotations

import datetime as dt

import pytest
from library_media import (
    alpha_png_bytes,
    avif_bytes,
    avif_writable,
    camera_jpeg_bytes,
    docx_bytes,
    heic_bytes,
    pdf_pages_bytes,
    set_mtime,
    video_bytes,
)

from hopper.app.library.identify import identify_path
from hopper.app.library.media import iso6709_position, pdf_time, utc_text_time

MTIME = dt.datetime(2015, 8, 9, 10, 11, 12)


def _write(tmp_path, name, data):
    path = tmp_path / name
    path.write_bytes(data)
    set_mtime(path, MTIME)
    return path


def _local(utc_text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(utc_text).astimezone().replace(tzinfo=None)


def test_rotated_jpeg_reports_displayed_dimensions_and_gps(tmp_path):
    found = identify_path(_write(tmp_path, "a.jpg", camera_jpeg_bytes(
        1, "2019:06:01 10:00:00", -33.8568, 151.2153, size=(640, 480), orientation=6)))
    assert (found.width, found.height) == (480, 640)
    assert (found.latitude, found.longitude) == pytest.approx((-33.8568, 151.2153), abs=1e-4)
    assert found.taken_at == dt.datetime(2019, 6, 1, 10)


def test_heic_gets_exif_capture_time_and_dimensions(tmp_path):
    found = identify_path(_write(tmp_path, "IMG_0001.HEIC",
                                 heic_bytes(2, "2018:03:04 05:06:07", size=(640, 480))))
    assert found.mime in ("image/heic", "image/heif")
    assert (found.taken_at, found.taken_at_source) == (dt.datetime(2018, 3, 4, 5, 6, 7),
                                                       "exif:DateTimeOriginal")
    assert (found.width, found.height) == (640, 480)


@pytest.mark.skipif(not avif_writable(), reason="the installed Pillow cannot write AVIF")
def test_avif_gets_exif_capture_time_and_dimensions(tmp_path):
    found = identify_path(_write(tmp_path, "a.avif", avif_bytes(3, "2017:01:02 03:04:05")))
    assert found.mime == "image/avif"
    assert found.taken_at == dt.datetime(2017, 1, 2, 3, 4, 5)
    assert (found.width, found.height) == (320, 240)


@pytest.mark.parametrize("container,mime", [("mp4", "video/mp4"), ("mov", "video/quicktime")])
def test_video_creation_time_duration_size_codec_location(tmp_path, container, mime):
    data = video_bytes(4, container, creation_time="2016-07-04T12:00:00.000000Z",
                       location="+40.6892-074.0445/", seconds=2.0, size=(320, 240))
    found = identify_path(_write(tmp_path, f"clip.{container}", data))
    assert (found.mime, found.kind) == (mime, "video")
    assert found.taken_at == _local("2016-07-04T12:00:00+00:00")
    assert found.taken_at_source == "video:creation_time"
    assert (found.width, found.height, found.codec) == (320, 240, "h264")
    assert found.duration == pytest.approx(2.0, abs=0.1)
    assert (found.latitude, found.longitude) == pytest.approx((40.6892, -74.0445))


def test_video_without_creation_time_uses_the_mtime(tmp_path):
    found = identify_path(_write(tmp_path, "clip.mp4", video_bytes(5, seconds=0.4)))
    assert (found.taken_at, found.taken_at_source) == (MTIME, "mtime")


def test_pdf_page_count_and_creation_date(tmp_path):
    found = identify_path(_write(tmp_path, "doc.pdf",
                                 pdf_pages_bytes(6, pages=3, created="D:20140203040506Z")))
    assert (found.mime, found.pages) == ("application/pdf", 3)
    assert found.taken_at == _local("2014-02-03T04:05:06+00:00")
    assert found.taken_at_source == "pdf:CreationDate"


def test_future_video_creation_time_is_not_trusted(tmp_path):
    found = identify_path(_write(tmp_path, "clip.mov", video_bytes(
        7, "mov", creation_time="2099-01-01T00:00:00.000000Z", seconds=0.4)))
    assert found.taken_at_source == "mtime"


def test_png_alpha_docx_and_text_have_no_media_facts(tmp_path):
    png = identify_path(_write(tmp_path, "a.png", alpha_png_bytes(8)))
    docx = identify_path(_write(tmp_path, "a.docx", docx_bytes(9)))
    assert (png.width, png.height, png.duration) == (200, 160, None)
    assert docx.mime.endswith("wordprocessingml.document")
    assert (docx.width, docx.pages, docx.taken_at_source) == (None, None, "mtime")


def test_iso6709_and_container_time_parsers():
    assert iso6709_position("+48.8584+002.2945+035.000/") == (48.8584, 2.2945)
    assert iso6709_position("garbage") == (None, None)
    assert utc_text_time("1970-01-01T00:00:00.000000Z") is None
    assert pdf_time("D:20210304050607+01'00'") == _local("2021-03-04T04:06:07+00:00")
    assert pdf_time("D:2021") == dt.datetime(2021, 1, 1)
