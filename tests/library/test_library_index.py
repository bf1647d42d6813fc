"""The index API the web endpoints use: search_items and get_item."""
from __future__ import annotations

from library_media import drop, jpeg_bytes, text_bytes

from hopper.app.library.index import get_item, search_items
from hopper.app.library.ingest import ingest


def _ingest_all(lib, files):
    for name, data in files.items():
        drop(lib.settings.inbox, name, data)
        ingest(lib.settings, lib.backend, name)


def test_search_filters_by_name_and_kind_and_pages_with_a_cursor(lib):
    _ingest_all(lib, {"beach_100%.jpg": jpeg_bytes(1), "beach_notes.txt": text_bytes(1),
                      "city.jpg": jpeg_bytes(2), "todo.txt": text_bytes(2)})
    assert {i["name"] for i in search_items(lib.backend, q="BEACH")} == {"beach_100%.jpg",
                                                                         "beach_notes.txt"}
    assert [i["name"] for i in search_items(lib.backend, q="100%")] == ["beach_100%.jpg"]
    assert [i["name"] for i in search_items(lib.backend, q="_1")] == ["beach_100%.jpg"]
    assert {i["name"] for i in search_items(lib.backend, kind="image")} == {"beach_100%.jpg",
                                                                            "city.jpg"}
    first = search_items(lib.backend, limit=3)
    rest = search_items(lib.backend, limit=3, cursor=first[-1]["id"])
    assert len(first) == 3 and len(rest) == 1
    assert {i["id"] for i in first} | {i["id"] for i in rest} == \
        {i["id"] for i in search_items(lib.backend)}


def test_get_item_has_the_identify_fields_and_duplicates(lib):
    _ingest_all(lib, {"a.jpg": jpeg_bytes(3, original="2020:02:02 02:02:02"),
                      "copy.jpg": jpeg_bytes(3, original="2020:02:02 02:02:02")})
    [listed] = search_items(lib.backend)
    item = get_item(lib.backend, listed["id"])
    assert item["path"] == "image/2020/02/a.jpg" and item["source_name"] == "a.jpg"
    assert (item["mime"], item["kind"], item["taken_at"]) == ("image/jpeg", "image",
                                                              "2020-02-02T02:02:02")
    assert item["width"] == 64 and item["height"] == 48 and len(item["sha256"]) == 64
    assert [d["source_name"] for d in item["duplicates"]] == ["copy.jpg"]
    assert get_item(lib.backend, item["id"] + 1000) is None
