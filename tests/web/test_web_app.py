"""The Flask app in-process, for states a running daemon cannot easily be put in:
an unreachable database, a library index present or missing, settings text edits."""
from __future__ import annotations

import datetime as dt

import pytest
import yaml
from daemons import write_settings

from hopper.app import settings as settings_mod
from hopper.app.backends.sqlite import SqliteBackend
from hopper.app.web import create_app, settings_file


@pytest.fixture
def app(tmp_path, monkeypatch):
    config = write_settings(tmp_path)
    monkeypatch.setenv("HOPPER_CONFIG", str(config))
    return create_app(settings_mod.load(config))


def test_healthz_is_503_when_the_database_cannot_be_reached(app, tmp_path):
    # A folder where the database file should be: SQLite cannot open it.
    folder = tmp_path / "not-a-db"
    folder.mkdir()
    app.extensions["hopper"].backend = SqliteBackend(f"sqlite:///{folder}")
    response = app.test_client().get("/healthz")
    assert response.status_code == 503
    assert response.json["status"] == "unavailable"
    assert response.json["db"].startswith("error:")


def _index_photos(backend, count: int) -> list[int]:
    from hopper.app.library.identify import Identity
    from hopper.app.library.index import Source, upsert_item

    ids = []
    for i in range(count):
        identity = Identity(sha256=f"{i:064x}", size=100 + i, mime="image/jpeg", kind="image",
                            taken_at=dt.datetime(2024, 5, 1 + i), taken_at_source="exif:DateTime")
        ids.append(upsert_item(backend, f"image/2024/05/beach-{i}.jpg", identity,
                               Source(f"beach-{i}.jpg", f"beach-{i}.jpg", 1)))
    return ids


def test_library_endpoints_page_and_look_up_through_the_index(app):
    ids = _index_photos(app.extensions["hopper"].backend, 5)
    client = app.test_client()
    first = client.get("/api/library?q=BEACH&kind=image&limit=2").json
    assert [i["id"] for i in first["items"]] == ids[:-3:-1]
    rest = client.get(f"/api/library?limit=10&cursor={first['next_cursor']}").json
    assert [i["id"] for i in rest["items"]] == ids[2::-1] and rest["next_cursor"] is None
    assert client.get("/api/library?kind=video").json["items"] == []
    item = client.get(f"/api/library/{ids[3]}").json
    assert item["path"] == "image/2024/05/beach-3.jpg" and item["duplicates"] == []
    assert client.get("/api/library/424242").status_code == 404


def test_workers_line_is_rewritten_in_place_keeping_comments(tmp_path):
    path = tmp_path / "settings.yaml"
    path.write_text("# mine\ndatabase: sqlite:///data/h.db\nworkers: 2   # live\n"
                    "server:\n  bind: 127.0.0.1:8000  # keep\n")
    written = settings_file.write_workers(path, 12)
    assert written.comments_preserved
    assert path.read_text() == ("# mine\ndatabase: sqlite:///data/h.db\nworkers: 12   # live\n"
                                "server:\n  bind: 127.0.0.1:8000  # keep\n")
    assert written.settings.workers == 12
    assert not list(tmp_path.glob(".settings.yaml.*.tmp"))


def test_missing_workers_key_is_added_by_a_yaml_round_trip(tmp_path):
    path = tmp_path / "settings.yaml"
    path.write_text("# dropped by the round trip\ndatabase: sqlite:///data/h.db\n")
    written = settings_file.write_workers(path, 3)
    assert not written.comments_preserved
    assert yaml.safe_load(path.read_text()) == {"database": "sqlite:///data/h.db", "workers": 3}


def test_an_invalid_file_is_left_untouched(tmp_path):
    path = tmp_path / "settings.yaml"
    original = "workers: 2\ndurability: sometimes\n"
    path.write_text(original)
    with pytest.raises(settings_mod.SettingsError):
        settings_file.write_workers(path, 3)
    assert path.read_text() == original


def test_ui_pages_render_with_assets_served_locally(app):
    client = app.test_client()
    for path in ("/", "/tasks", "/settings", "/library"):
        response = client.get(path)
        assert response.status_code == 200, path
        assert "http://" not in response.text and "https://" not in response.text
    settings_page = client.get("/settings").text
    assert '<input type="range" id="workers"' in settings_page
    assert client.get("/static/app.js").status_code == 200
    assert client.get("/static/app.css").status_code == 200
    assert client.get("/tasks/12345").status_code == 404


def test_api_enqueue_without_a_cookie_sets_no_session_cookie(app):
    response = app.test_client().post("/api/tasks", json={"name": "echo", "args": {"a": 1}})
    assert response.status_code == 201
    assert response.json["status"] == "queued" and response.json["args"] == {"a": 1}
    assert "Set-Cookie" not in response.headers


def test_api_enqueue_answers_the_row_that_was_stored(app):
    created = app.test_client().post("/api/tasks", json={
        "name": "echo", "args": {"a": 1}, "priority": 5, "delay": 60,
        "tags": ["user:42", "report"], "meta": {"source": "test"}}).json
    stored = app.test_client().get(f"/api/tasks/{created['id']}").json
    assert created == stored
