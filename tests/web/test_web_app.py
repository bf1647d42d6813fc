"""The Flask app in-process, for states a running daemon cannot easily be put in:
an unreachable database, a library index present or missing, settings text edits."""
from __future__ import annotations

import sys
import types

import pytest
import yaml

from app import settings as settings_mod
from app.backends.sqlite import SqliteBackend
from app.web import create_app, settings_file
from conftest import write_settings


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


def test_library_endpoints_are_503_when_the_index_cannot_be_imported(app, monkeypatch):
    monkeypatch.setitem(sys.modules, "app.library.index", None)  # import raises ImportError
    client = app.test_client()
    for path in ("/api/library", "/api/library/1"):
        response = client.get(path)
        assert response.status_code == 503
        assert response.json["error"] == "library index unavailable"


def test_library_endpoints_page_and_look_up_through_the_index(app, monkeypatch):
    items = [{"id": i, "path": f"photo/{i}.jpg", "kind": "photo"} for i in range(5, 0, -1)]
    calls = []

    def search_items(backend, q=None, kind=None, limit=50, cursor=None):
        calls.append({"q": q, "kind": kind, "limit": limit, "cursor": cursor})
        rows = [i for i in items if cursor is None or i["id"] < cursor]
        return rows[:limit]

    fake = types.ModuleType("app.library.index")
    fake.search_items = search_items
    fake.get_item = lambda backend, item_id: next((i for i in items if i["id"] == item_id), None)
    monkeypatch.setitem(sys.modules, "app.library.index", fake)
    monkeypatch.setattr(sys.modules["app.library"], "index", fake, raising=False)
    client = app.test_client()
    first = client.get("/api/library?q=beach&kind=photo&limit=2").json
    assert [i["id"] for i in first["items"]] == [5, 4] and first["next_cursor"] == 4
    assert calls[0] == {"q": "beach", "kind": "photo", "limit": 3, "cursor": None}
    last = client.get("/api/library?limit=2&cursor=2").json
    assert [i["id"] for i in last["items"]] == [1] and last["next_cursor"] is None
    assert client.get("/api/library/3").json["path"] == "photo/3.jpg"
    assert client.get("/api/library/42").status_code == 404


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
