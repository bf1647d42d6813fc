"""The library pipeline on the PostgreSQL backend."""
from __future__ import annotations

from helpers import poll_until
from library_media import jpeg_bytes, sha

from hopper.app.library.index import get_item, search_items


def test_library_ingest_and_search_on_postgres(make_daemon, pg_client, pg_settings):
    daemon = make_daemon(config=pg_settings)
    inbox = daemon.config.parent / "data" / "inbox"
    inbox.mkdir(parents=True, exist_ok=True)
    photo = jpeg_bytes(1, original="2021:07:04 10:00:00")
    (inbox / "Beach Day.jpg").write_bytes(photo)
    items = poll_until(lambda: (r := search_items(pg_client.backend, q="beach")) and r, timeout=60,
                       message=lambda: daemon.read_log()[-2000:])
    assert items[0]["sha256"] == sha(photo)
    assert items[0]["path"].startswith("image/2021/07/")
    (inbox / "copy.jpg").write_bytes(photo)
    item = poll_until(lambda: (i := get_item(pg_client.backend, items[0]["id"]))["duplicates"]
                      and i, timeout=30)
    assert [d["source_name"] for d in item["duplicates"]] == ["copy.jpg"]
