"""Previews, thumbnail states, the preview endpoint and Range requests on /file, on both
engines, through the real pipeline tasks (eager mode) into a real library folder."""
from __future__ import annotations

import io

import pytest
from library_media import (
    alpha_png_bytes,
    broken_jpeg_bytes,
    camera_jpeg_bytes,
    docx_bytes,
    drop,
    heic_bytes,
    pdf_pages_bytes,
    sha,
    text_bytes,
    video_bytes,
)
from PIL import Image

from hopper.app import queue


def _ingest(lib, name: str, data: bytes) -> dict:
    drop(lib.settings.inbox, name, data)
    task = queue.get_task(queue.enqueue("library.ingest", {"path": name}))
    assert task["status"] == "succeeded", task
    return task["result"]


def _thumb_task(lib) -> dict:
    [task] = lib.backend.list(name="library.thumbnail", limit=10)
    return task


def _picture(http, item_id: int, which: str) -> Image.Image:
    response = http.get(f"/api/library/{item_id}/{which}")
    assert response.status_code == 200, response.json
    return Image.open(io.BytesIO(response.data))


def test_heic_gets_a_thumbnail_and_a_large_preview(engine_lib, library_http):
    result = _ingest(engine_lib, "IMG_0001.HEIC", heic_bytes(1, "2018:03:04 05:06:07",
                                                              size=(2000, 1500)))
    item = library_http.get(f"/api/library/{result['item_id']}").json
    assert (item["thumbnail"], item["taken_at"]) == ("ready", "2018-03-04T05:06:07")
    assert max(_picture(library_http, item["id"], "thumbnail").size) == 320
    assert _picture(library_http, item["id"], "preview").size == (1600, 1200)


def test_video_gets_a_poster_frame_duration_and_codec(engine_lib, library_http):
    result = _ingest(engine_lib, "clip.mp4", video_bytes(2, "mp4", "2016-07-04T12:00:00Z",
                                                         seconds=2.0, size=(320, 240)))
    item = library_http.get(f"/api/library/{result['item_id']}").json
    assert (item["kind"], item["thumbnail"], item["codec"]) == ("video", "ready", "h264")
    assert item["duration"] == pytest.approx(2.0, abs=0.1)
    assert _picture(library_http, item["id"], "preview").size == (320, 240)


def test_pdf_gets_a_first_page_preview_and_page_count(engine_lib, library_http):
    result = _ingest(engine_lib, "doc.pdf", pdf_pages_bytes(3, pages=3, created="D:20140203"))
    item = library_http.get(f"/api/library/{result['item_id']}").json
    assert (item["pages"], item["thumbnail"]) == (3, "ready")
    preview = _picture(library_http, item["id"], "preview")
    assert max(preview.size) == 1600 and preview.size[1] > preview.size[0]  # a portrait page


def test_rotated_jpeg_preview_is_upright_like_its_dimensions(engine_lib, library_http):
    result = _ingest(engine_lib, "r.jpg", camera_jpeg_bytes(4, "2019:06:01 10:00:00", 48.85,
                                                            2.29, size=(640, 480)))
    item = library_http.get(f"/api/library/{result['item_id']}").json
    assert (item["width"], item["height"]) == (480, 640)
    assert _picture(library_http, item["id"], "preview").size == (480, 640)
    assert item["latitude"] == pytest.approx(48.85) and item["longitude"] == pytest.approx(2.29)


def test_transparent_png_keeps_its_alpha_in_the_preview(engine_lib, library_http):
    result = _ingest(engine_lib, "a.png", alpha_png_bytes(5))
    preview = _picture(library_http, result["item_id"], "preview")
    assert preview.mode == "RGBA" and preview.getpixel((0, 0))[3] == 0


@pytest.mark.parametrize("name,data", [("n.txt", text_bytes(6)), ("n.docx", docx_bytes(6))])
def test_non_visual_items_have_thumbnail_none_with_a_reason(engine_lib, library_http, name,
                                                            data):
    result = _ingest(engine_lib, name, data)
    item = library_http.get(f"/api/library/{result['item_id']}").json
    assert item["thumbnail"] == "none" and item["thumbnail_reason"].startswith("no preview for")
    response = library_http.get(f"/api/library/{item['id']}/preview")
    assert response.status_code == 404 and "no preview for" in response.json["detail"]


def test_undecodable_image_task_succeeds_with_thumbnail_none_and_reason(engine_lib,
                                                                        library_http):
    result = _ingest(engine_lib, "broken.jpg", broken_jpeg_bytes(7))
    task = _thumb_task(engine_lib)
    assert task["status"] == "succeeded"
    assert task["result"]["thumbnail"] == "none" and "cannot be decoded" in task["result"]["reason"]
    item = library_http.get(f"/api/library/{result['item_id']}").json
    assert (item["thumbnail"], item["thumbnail_reason"]) == ("none", task["result"]["reason"])


def test_a_new_item_is_pending_until_its_preview_is_made(engine_lib, library_http):
    from hopper.app.library.identify import identify_path
    from hopper.app.library.index import upsert_item

    path = engine_lib.settings.library_root / "by-hand.jpg"
    path.write_bytes(camera_jpeg_bytes(8, "2019:06:01 10:00:00", 1.0, 1.0))
    item_id = upsert_item(engine_lib.backend, "by-hand.jpg", identify_path(path), None)
    assert library_http.get(f"/api/library/{item_id}").json["thumbnail"] == "pending"
    assert "not made yet" in library_http.get(f"/api/library/{item_id}/preview").json["detail"]


def test_file_answers_range_requests_with_206_and_the_bytes(engine_lib, library_http):
    data = video_bytes(9, "mp4", seconds=1.0)
    result = _ingest(engine_lib, "clip.mp4", data)
    response = library_http.get(f"/api/library/{result['item_id']}/file",
                                headers={"Range": "bytes=100-1099"})
    assert response.status_code == 206
    assert response.headers["Content-Range"] == f"bytes 100-1099/{len(data)}"
    assert response.data == data[100:1100]
    tail = library_http.get(f"/api/library/{result['item_id']}/file",
                            headers={"Range": "bytes=-10"})
    assert tail.status_code == 206 and tail.data == data[-10:]


def test_file_without_range_is_whole_and_says_it_accepts_ranges(engine_lib, library_http):
    data = video_bytes(10, "mov", seconds=0.4)
    result = _ingest(engine_lib, "clip.mov", data)
    response = library_http.get(f"/api/library/{result['item_id']}/file?inline=1")
    assert response.status_code == 200 and response.data == data
    assert response.headers["Accept-Ranges"] == "bytes"
    assert response.headers["Content-Type"] == "video/quicktime"
    assert not response.headers.get("Content-Disposition", "").startswith("attachment")


def test_file_range_beyond_the_end_is_416(engine_lib, library_http):
    data = text_bytes(11)
    result = _ingest(engine_lib, "n.txt", data)
    response = library_http.get(f"/api/library/{result['item_id']}/file",
                                headers={"Range": f"bytes={len(data) + 10}-"})
    assert response.status_code == 416


def test_placed_file_changed_after_hashing_is_identified_again(engine_lib, monkeypatch):
    from hopper.app.library import ingest as ingest_mod

    original = ingest_mod._place
    extra = b"written after the hash"

    def place_then_write(fd, source, folder, name, sha256, st):
        final = original(fd, source, folder, name, sha256, st)
        with open(final, "ab") as out:  # a writer that still had the file open
            out.write(extra)
        return final

    monkeypatch.setattr(ingest_mod, "_place", place_then_write)
    data = text_bytes(12)
    result = _ingest(engine_lib, "n.txt", data)
    on_disk = (engine_lib.settings.library_root / result["library_path"]).read_bytes()
    assert on_disk == data + extra and result["reidentified"] is True
    item = engine_lib.backend.fetch("SELECT sha256, size FROM library_items WHERE id = ?",
                                    (result["item_id"],))[0]
    assert (item[0], item[1]) == (sha(on_disk), len(on_disk))


def test_placed_file_that_became_a_copy_is_recorded_as_a_duplicate(engine_lib, monkeypatch):
    from hopper.app.library import ingest as ingest_mod

    first = text_bytes(13) + b"tail"
    kept = _ingest(engine_lib, "first.txt", first)
    original = ingest_mod._place

    def place_then_complete(fd, source, folder, name, sha256, st):
        final = original(fd, source, folder, name, sha256, st)
        with open(final, "ab") as out:
            out.write(b"tail")  # the copy completes into the very content of first.txt
        return final

    monkeypatch.setattr(ingest_mod, "_place", place_then_complete)
    result = _ingest(engine_lib, "second.txt", text_bytes(13))
    assert (result["status"], result["item_id"]) == ("duplicate", kept["item_id"])
    rows = engine_lib.backend.fetch("SELECT path FROM library_items")
    assert rows == [(kept["library_path"],)]
    assert not (engine_lib.settings.library_root / result["library_path"]).exists()


def test_reindex_keeps_every_id_and_added_time_of_50_items(engine_lib):
    from hopper.app.library.reindex import reindex

    for n in range(50):
        _ingest(engine_lib, f"n{n}.txt", text_bytes(1000 + n) + str(n).encode())
    before = dict((r[0], (r[1], r[2])) for r in engine_lib.backend.fetch(
        "SELECT path, id, created_at FROM library_items"))
    gone = sorted(before)[0]
    (engine_lib.settings.library_root / gone).unlink()
    assert reindex(engine_lib.settings, engine_lib.backend) == 49
    after = dict((r[0], (r[1], r[2])) for r in engine_lib.backend.fetch(
        "SELECT path, id, created_at FROM library_items"))
    del before[gone]
    assert after == before


def test_reindex_keeps_the_id_of_a_file_moved_by_hand(engine_lib):
    from hopper.app.library.reindex import reindex

    result = _ingest(engine_lib, "moved.txt", text_bytes(14))
    root = engine_lib.settings.library_root
    (root / "elsewhere").mkdir()
    (root / result["library_path"]).rename(root / "elsewhere" / "moved.txt")
    assert reindex(engine_lib.settings, engine_lib.backend) == 1
    assert engine_lib.backend.fetch("SELECT id, path FROM library_items") == [
        (result["item_id"], "elsewhere/moved.txt")]
