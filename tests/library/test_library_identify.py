"""identify: sha256, MIME from content, capture time sources, image size, hostile files."""
from __future__ import annotations

import datetime as dt
import hashlib
import io
import os
import random
import time

import pytest
from library_media import jpeg_bytes, pdf_bytes, png_bytes, set_mtime, text_bytes
from PIL import Image

from hopper.app.library.identify import identify_path, kind_of

MTIME = dt.datetime(2015, 8, 9, 10, 11, 12)


def _write(tmp_path, name, data, mtime=MTIME):
    path = tmp_path / name
    path.write_bytes(data)
    set_mtime(path, mtime)
    return path


def test_exif_datetimeoriginal_wins_over_datetime_and_mtime(tmp_path):
    path = _write(tmp_path, "a.jpg", jpeg_bytes(1, original="2018:03:02 09:08:07",
                                                datetime="2019:05:04 10:00:00"))
    found = identify_path(path)
    assert found.taken_at == dt.datetime(2018, 3, 2, 9, 8, 7)
    assert found.taken_at_source == "exif:DateTimeOriginal"


def test_exif_datetime_is_used_without_datetimeoriginal(tmp_path):
    path = _write(tmp_path, "a.jpg", jpeg_bytes(2, datetime="2019:05:04 10:00:00"))
    found = identify_path(path)
    assert (found.taken_at, found.taken_at_source) == (dt.datetime(2019, 5, 4, 10), "exif:DateTime")


def test_mtime_is_used_without_exif(tmp_path):
    path = _write(tmp_path, "a.jpg", jpeg_bytes(3))
    found = identify_path(path)
    assert (found.taken_at, found.taken_at_source) == (MTIME, "mtime")


def test_future_exif_date_is_not_trusted(tmp_path):
    future = (dt.datetime.now() + dt.timedelta(days=400)).strftime("%Y:%m:%d %H:%M:%S")
    path = _write(tmp_path, "a.jpg", jpeg_bytes(4, original=future, datetime="2017:01:02 03:04:05"))
    assert identify_path(path).taken_at_source == "exif:DateTime"
    path = _write(tmp_path, "b.jpg", jpeg_bytes(5, original=future))
    assert (identify_path(path).taken_at, identify_path(path).taken_at_source) == (MTIME, "mtime")


def test_future_mtime_falls_back_to_ingest_time(tmp_path):
    path = _write(tmp_path, "n.txt", text_bytes(1), mtime=dt.datetime.now() + dt.timedelta(days=30))
    found = identify_path(path)
    assert found.taken_at_source == "ingest"
    assert abs((found.taken_at - dt.datetime.now()).total_seconds()) < 60


def test_blank_exif_date_falls_back(tmp_path):
    path = _write(tmp_path, "a.jpg", jpeg_bytes(6, original="0000:00:00 00:00:00"))
    assert identify_path(path).taken_at_source == "mtime"


def test_truncated_jpeg_keeps_its_capture_date(tmp_path):
    noise = Image.frombytes("RGB", (400, 300), random.Random(1).randbytes(400 * 300 * 3))
    exif = Image.Exif()
    exif.get_ifd(0x8769)[0x9003] = "2012:12:24 18:30:00"
    out = io.BytesIO()
    noise.save(out, "JPEG", exif=exif.tobytes(), quality=95)
    whole = out.getvalue()
    path = _write(tmp_path, "cut.jpg", whole[: len(whole) // 3])   # image data cut short
    found = identify_path(path)
    assert (found.taken_at, found.taken_at_source) == (dt.datetime(2012, 12, 24, 18, 30),
                                                       "exif:DateTimeOriginal")
    assert (found.mime, found.width, found.height) == ("image/jpeg", 400, 300)


def test_malformed_exif_does_not_crash_and_falls_back_to_mtime(tmp_path):
    data = bytearray(jpeg_bytes(7, original="2018:03:02 09:08:07"))
    tiff = data.index(b"Exif\x00\x00") + 6
    data[tiff + 4: tiff + 8] = b"\xff\xff\xff\xf0"     # IFD0 offset points far outside the file
    found = identify_path(_write(tmp_path, "bad.jpg", bytes(data)))
    assert (found.taken_at, found.taken_at_source) == (MTIME, "mtime")
    assert found.mime == "image/jpeg"


def test_randomly_corrupted_headers_never_raise_or_hang(tmp_path):
    original = jpeg_bytes(8, original="2018:03:02 09:08:07", datetime="2019:05:04 10:00:00")
    rng = random.Random(42)
    started = time.monotonic()
    for n in range(150):
        data = bytearray(original)
        for _ in range(rng.randint(1, 40)):
            data[rng.randrange(2, min(len(data), 400))] = rng.randrange(256)
        found = identify_path(_write(tmp_path, f"fuzz{n}.jpg", bytes(data)))
        assert found.sha256 == hashlib.sha256(data).hexdigest()
        assert found.taken_at_source in ("exif:DateTimeOriginal", "exif:DateTime", "mtime")
    assert time.monotonic() - started < 30


def test_sha256_and_size_of_a_multi_buffer_file(tmp_path):
    data = os.urandom(5 * 1024 * 1024 + 123)
    found = identify_path(_write(tmp_path, "big.bin", data))
    assert (found.sha256, found.size) == (hashlib.sha256(data).hexdigest(), len(data))


def test_mime_comes_from_content_not_extension(tmp_path):
    assert identify_path(_write(tmp_path, "image.txt", png_bytes(1))).mime == "image/png"
    assert identify_path(_write(tmp_path, "doc.jpg", pdf_bytes(1))).mime == "application/pdf"
    assert identify_path(_write(tmp_path, "note.pdf",
                                "café ünïcode\n".encode())).mime == "text/plain"
    assert identify_path(_write(tmp_path, "blob.txt", b"\x00\x01\x02binary")).kind == "other"


def test_image_dimensions_are_read(tmp_path):
    found = identify_path(_write(tmp_path, "p.png", png_bytes(2, size=(33, 21))))
    assert (found.width, found.height, found.kind) == (33, 21, "image")


def test_kinds_from_mime():
    assert [kind_of(m) for m in ("image/heic", "video/mp4", "audio/mpeg", "application/pdf",
                                 "text/plain", "application/zip")] == \
        ["image", "video", "audio", "document", "document", "other"]


@pytest.mark.parametrize("fmt", ["PNG", "WEBP", "TIFF"])
def test_exif_date_is_read_from_other_image_containers(tmp_path, fmt):
    exif = Image.Exif()
    exif[0x0132] = "2011:02:03 04:05:06"
    out = io.BytesIO()
    Image.new("RGB", (40, 30), "blue").save(out, fmt,
                                            exif=exif if fmt == "TIFF" else exif.tobytes())
    found = identify_path(_write(tmp_path, "x.img", out.getvalue()))
    assert (found.taken_at, found.kind, found.width) == (
        dt.datetime(2011, 2, 3, 4, 5, 6), "image", 40)


def test_camera_is_make_and_model_without_repeating_the_make(tmp_path):
    from library_media import photo_bytes

    canon = identify_path(_write(tmp_path, "c.jpg", photo_bytes(1, make="Canon",
                                                                model="Canon EOS 5D")))
    nikon = identify_path(_write(tmp_path, "n.jpg", photo_bytes(2, make="NIKON CORPORATION",
                                                                model="NIKON D750")))
    plain = identify_path(_write(tmp_path, "p.jpg", jpeg_bytes(3)))
    assert (canon.camera, nikon.camera, plain.camera) == (
        "Canon EOS 5D", "NIKON CORPORATION NIKON D750", None)


def test_camera_is_read_from_webp_exif(tmp_path):
    exif = Image.Exif()
    exif[0x010F], exif[0x0110] = "Google", "Pixel 7"
    out = io.BytesIO()
    Image.new("RGB", (40, 30), (9, 99, 199)).save(out, "WEBP", exif=exif.tobytes())
    found = identify_path(_write(tmp_path, "pixel.webp", out.getvalue()))
    assert (found.mime, found.camera, found.width, found.height) == (
        "image/webp", "Google Pixel 7", 40, 30)
