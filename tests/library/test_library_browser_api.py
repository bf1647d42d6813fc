"""The library browser's API on both engines: thumbnails, metadata, timeline, filters,
export, downloads. Files go through the real pipeline tasks (eager mode) into a real
library folder; the endpoints are called through the web app on the same database."""
from __future__ import annotations

import csv
import datetime as dt
import io
import os

from library_media import (
    broken_jpeg_bytes,
    drop,
    files_under,
    jpeg_bytes,
    photo_bytes,
    sha,
    text_bytes,
)
from PIL import Image

from hopper.app import queue
from hopper.app.library.index import search_items


def _ingest(lib, name: str, data: bytes, mtime=None) -> dict:
    """Drop a file and run library.ingest on it (and the thumbnail it queues)."""
    drop(lib.settings.inbox, name, data, mtime=mtime)
    task = queue.get_task(queue.enqueue("library.ingest", {"path": name}))
    assert task["status"] == "succeeded", task
    return task["result"]


def _data(lib):
    return lib.settings.data_dir


def _tasks(lib, name: str) -> list[dict]:
    return lib.backend.list(name=name, limit=1000)


def test_ingested_image_gets_a_thumbnail_under_data_and_none_in_the_root(engine_lib,
                                                                        library_http):
    photo = photo_bytes(1, size=(800, 600), original="2021:03:04 05:06:07")
    result = _ingest(engine_lib, "beach.jpg", photo)
    thumb = _data(engine_lib) / "thumbnails" / sha(photo)[:2] / f"{sha(photo)}.webp"
    assert thumb.is_file()
    assert files_under(engine_lib.settings.library_root) == [
        engine_lib.settings.library_root / "image" / "2021" / "03" / "beach.jpg"]
    response = library_http.get(f"/api/library/{result['item_id']}/thumbnail")
    assert response.status_code == 200 and response.mimetype == "image/webp"
    assert Image.open(io.BytesIO(response.data)).size == (320, 240)
    assert library_http.get(f"/api/library/{result['item_id']}").json["thumbnail"] == "ready"


def test_thumbnail_is_upright_for_a_photo_with_exif_orientation(engine_lib, library_http):
    # Orientation 6: the camera was turned; the stored 800x600 pixels show upright as 600x800.
    result = _ingest(engine_lib, "portrait.jpg", photo_bytes(2, size=(800, 600), orientation=6))
    response = library_http.get(f"/api/library/{result['item_id']}/thumbnail")
    assert Image.open(io.BytesIO(response.data)).size == (240, 320)


def test_undecodable_image_gets_no_thumbnail_and_stays_in_the_library(engine_lib,
                                                                      library_http):
    data = broken_jpeg_bytes(3)
    result = _ingest(engine_lib, "broken.jpg", data)
    assert result["status"] == "ingested" and result["kind"] == "image"
    stored = engine_lib.settings.library_root / result["library_path"]
    assert stored.read_bytes() == data
    [thumb_task] = _tasks(engine_lib, "library.thumbnail")
    assert (thumb_task["status"], thumb_task["attempts"]) == ("succeeded", 1)
    assert thumb_task["result"]["status"] == "none"
    assert "cannot identify image file" in thumb_task["result"]["reason"]
    assert library_http.get(f"/api/library/{result['item_id']}").json["thumbnail"] == "none"
    response = library_http.get(f"/api/library/{result['item_id']}/thumbnail")
    assert response.status_code == 404 and "cannot be decoded" in response.json["detail"]
    assert not (_data(engine_lib) / "thumbnails" / sha(data)[:2]).exists()


def test_a_later_scan_does_not_retry_an_undecodable_image(engine_lib):
    _ingest(engine_lib, "broken.jpg", broken_jpeg_bytes(4))
    task = queue.get_task(queue.enqueue("library.index"))
    assert task["result"]["thumbnails_queued"] == 0
    assert len(_tasks(engine_lib, "library.thumbnail")) == 1


def test_library_root_holds_only_the_users_files_after_ingesting(engine_lib):
    photo = jpeg_bytes(5, original="2020:01:01 10:00:00")
    _ingest(engine_lib, "a.jpg", photo)
    _ingest(engine_lib, "b.txt", text_bytes(5), mtime=dt.datetime(2020, 2, 2, 12, 0))
    _ingest(engine_lib, "copy-of-a.jpg", photo)
    queue.enqueue("library.index")
    root = engine_lib.settings.library_root
    assert sorted(p.relative_to(root).as_posix() for p in files_under(root)) == [
        "document/2020/02/b.txt", "image/2020/01/a.jpg"]
    assert sorted(os.listdir(root)) == ["document", "image"]
    assert list((_data(engine_lib) / "locks" / "library").glob("*.lock"))


def test_item_detail_has_path_metadata_camera_and_duplicates(engine_lib, library_http):
    photo = photo_bytes(6, size=(640, 480), original="2019:07:08 09:10:11", make="Canon",
                        model="Canon EOS 5D")
    first = _ingest(engine_lib, "Summer.jpg", photo)
    _ingest(engine_lib, "summer-copy.jpg", photo)
    item = library_http.get(f"/api/library/{first['item_id']}").json
    assert {k: item[k] for k in ("path", "sha256", "mime", "size", "taken_at", "source_name",
                                 "width", "height", "camera")} == {
        "path": "image/2019/07/Summer.jpg", "sha256": sha(photo), "mime": "image/jpeg",
        "size": len(photo), "taken_at": "2019-07-08T09:10:11", "source_name": "Summer.jpg",
        "width": 640, "height": 480, "camera": "Canon EOS 5D"}
    assert [d["source_name"] for d in item["duplicates"]] == ["summer-copy.jpg"]


def test_original_downloads_under_its_name(engine_lib, library_http):
    photo = photo_bytes(7, original="2018:01:02 03:04:05")
    result = _ingest(engine_lib, "Family Picnic.jpg", photo)
    response = library_http.get(f"/api/library/{result['item_id']}/file")
    assert response.status_code == 200 and response.data == photo
    assert response.mimetype == "image/jpeg"
    assert response.headers["Content-Length"] == str(len(photo))
    assert 'filename="Family Picnic.jpg"' in response.headers["Content-Disposition"]
    assert library_http.get("/api/library/987654/file").status_code == 404


def _three_months(lib) -> dict[str, dict]:
    plan = {"jan-1.jpg": "2021:01:05 10:00:00", "jan-2.jpg": "2021:01:25 10:00:00",
            "mar.jpg": "2021:03:31 23:59:59", "old.jpg": "2019:12:31 08:00:00"}
    return {name: _ingest(lib, name, jpeg_bytes(10 + n, original=when))
            for n, (name, when) in enumerate(plan.items())}


def test_timeline_counts_items_per_year_and_month(engine_lib, library_http):
    _three_months(engine_lib)
    _ingest(engine_lib, "notes.txt", text_bytes(9),
            mtime=dt.datetime(2021, 3, 2, 12, 0))
    body = library_http.get("/api/library/timeline").json
    assert body == {"total": 5, "years": [
        {"year": 2021, "count": 4, "months": [{"month": 3, "count": 2}, {"month": 1, "count": 2}]},
        {"year": 2019, "count": 1, "months": [{"month": 12, "count": 1}]}]}
    images = library_http.get("/api/library/timeline?kind=image").json
    assert images["total"] == 4 and images["years"][0]["months"][0] == {"month": 3, "count": 1}


def _names(response) -> list[str]:
    assert response.status_code == 200, response.json
    return [i["name"] for i in response.json["items"]]


def test_filters_by_name_kind_and_inclusive_date_range(engine_lib, library_http):
    _three_months(engine_lib)
    _ingest(engine_lib, "jan-notes.txt", text_bytes(8),
            mtime=dt.datetime(2021, 1, 9, 12, 0))
    get = library_http.get
    assert _names(get("/api/library?q=JAN")) == ["jan-2.jpg", "jan-notes.txt", "jan-1.jpg"]
    assert _names(get("/api/library?q=jan&kind=image")) == ["jan-2.jpg", "jan-1.jpg"]
    assert _names(get("/api/library?taken_from=2021-01&taken_to=2021-01&kind=image")) == [
        "jan-2.jpg", "jan-1.jpg"]
    assert _names(get("/api/library?taken_from=2021-03-31&taken_to=2021-03-31")) == ["mar.jpg"]
    assert _names(get("/api/library?taken_to=2020")) == ["old.jpg"]
    assert _names(get("/api/library?taken_from=2021-01-06&taken_to=2021-01-25")) == [
        "jan-2.jpg", "jan-notes.txt"]
    bad = get("/api/library?taken_from=2021-13")
    assert bad.status_code == 400 and bad.json["error"] == "invalid taken_from"


def test_pages_follow_capture_time_and_a_cursor(engine_lib, library_http):
    _three_months(engine_lib)
    first = library_http.get("/api/library?limit=3").json
    assert [i["name"] for i in first["items"]] == ["mar.jpg", "jan-2.jpg", "jan-1.jpg"]
    rest = library_http.get(f"/api/library?limit=3&cursor={first['next_cursor']}").json
    assert [i["name"] for i in rest["items"]] == ["old.jpg"] and rest["next_cursor"] is None
    gone = library_http.get("/api/library?cursor=99999")
    assert gone.status_code == 400 and gone.json["error"] == "invalid cursor"


def test_export_writes_the_index_as_csv_under_data_artifacts(engine_lib, library_http):
    made = _three_months(engine_lib)
    _ingest(engine_lib, "copy-of-mar.jpg", jpeg_bytes(12, original="2021:03:31 23:59:59"))
    task = queue.get_task(queue.enqueue("library.export"))
    assert task["status"] == "succeeded"
    artifact = task["result"]["artifact"]
    path = _data(engine_lib) / "artifacts" / artifact
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    items = {i["id"]: i for i in search_items(engine_lib.backend)}
    assert sorted(int(r["id"]) for r in rows) == sorted(items) == sorted(
        r["item_id"] for r in made.values())
    for row in rows:
        item = items[int(row["id"])]
        assert (row["path"], row["sha256"], row["taken_at"], int(row["size"])) == (
            item["path"], item["sha256"], item["taken_at"], item["size"])
        assert int(row["duplicates"]) == (1 if item["name"] == "mar.jpg" else 0)
    served = library_http.get(f"/api/tasks/{task['id']}/artifact")
    assert served.status_code == 200 and served.data == path.read_bytes()


def test_reindex_fills_camera_and_keeps_the_thumbnail(engine_lib):
    from hopper.app.library.reindex import reindex

    photo = photo_bytes(13, original="2017:05:06 07:08:09", make="NIKON CORPORATION",
                        model="NIKON D750")
    result = _ingest(engine_lib, "lake.jpg", photo)
    with engine_lib.backend.transaction() as conn:
        engine_lib.backend.run(conn, "UPDATE library_items SET camera = NULL")
    assert reindex(engine_lib.settings, engine_lib.backend) == 1
    [item] = search_items(engine_lib.backend)
    assert item["camera"] == "NIKON CORPORATION NIKON D750" and item["thumbnail"] == "ready"
    queue.enqueue("library.thumbnail", {"sha256": result["sha256"]},
                  unique_key=f"library.thumbnail:{result['sha256']}")
    [item] = search_items(engine_lib.backend)
    assert item["thumbnail"] == "ready"
    assert _tasks(engine_lib, "library.thumbnail")[0]["result"]["reused"] is True


def test_timeline_follows_removed_files_and_a_reindex(engine_lib, library_http):
    from hopper.app.library.reindex import reindex

    made = _three_months(engine_lib)
    (engine_lib.settings.library_root / made["mar.jpg"]["library_path"]).unlink()
    assert queue.get_task(queue.enqueue("library.index"))["result"]["forgotten"] == 1
    assert reindex(engine_lib.settings, engine_lib.backend) == 3
    assert library_http.get("/api/library/timeline").json == {"total": 3, "years": [
        {"year": 2021, "count": 2, "months": [{"month": 1, "count": 2}]},
        {"year": 2019, "count": 1, "months": [{"month": 12, "count": 1}]}]}


def test_thumbnails_of_contents_no_longer_indexed_are_removed_when_old(engine_lib):
    kept = _ingest(engine_lib, "kept.jpg", photo_bytes(20, original="2020:05:05 05:05:05"))
    gone = _ingest(engine_lib, "gone.jpg", photo_bytes(21, original="2020:05:06 05:05:05"))
    folder = _data(engine_lib) / "thumbnails"
    kept_thumb, gone_thumb = (folder / s[:2] / f"{s}.webp" for s in (kept["sha256"],
                                                                    gone["sha256"]))
    (engine_lib.settings.library_root / gone["library_path"]).unlink()
    fresh_orphan = folder / "ab" / f"{'ab' * 32}.webp"
    fresh_orphan.parent.mkdir(exist_ok=True)
    fresh_orphan.write_bytes(b"made a moment ago")
    hour_ago = dt.datetime.now().timestamp() - 3700
    for path in (kept_thumb, gone_thumb):
        os.utime(path, (hour_ago, hour_ago))
    result = queue.get_task(queue.enqueue("library.index"))["result"]
    assert (result["forgotten"], result["thumbnails_removed"]) == (1, 1)
    assert kept_thumb.is_file() and fresh_orphan.is_file() and not gone_thumb.exists()
