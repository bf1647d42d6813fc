"""``from hopper import enqueue`` inside a user's Flask app: which settings it uses,
and the clear error when the task database cannot be reached."""
from __future__ import annotations

import psycopg
import pytest
from daemons import free_port, write_settings
from flask import Flask

import hopper
from hopper.app import queue, settings


@pytest.fixture
def two_configs(tmp_path, monkeypatch):
    """Settings A (named by HOPPER_CONFIG) and B (named by a Flask app's config)."""
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    a, b = write_settings(tmp_path / "a"), write_settings(tmp_path / "b")
    monkeypatch.setenv("HOPPER_CONFIG", str(a))
    monkeypatch.setattr(queue, "_client", None)
    return a, b


def _task_in(config, task_id: int) -> dict | None:
    return queue.Client(settings.load(config)).backend.get(task_id)


def test_inside_an_app_context_enqueue_uses_the_apps_hopper_config(two_configs):
    a, b = two_configs
    app = Flask("users_app")
    app.config["HOPPER_CONFIG"] = str(b)
    with app.app_context():
        task_id = hopper.enqueue("echo", {"from": "request handler"})
        assert hopper.get_task(task_id)["args"] == {"from": "request handler"}
    assert _task_in(b, task_id)["args"] == {"from": "request handler"}
    assert _task_in(a, task_id) is None


def test_outside_an_app_context_enqueue_uses_hopper_config(two_configs):
    a, b = two_configs
    task_id = hopper.enqueue("echo", {"from": "cli"})
    assert _task_in(a, task_id)["args"] == {"from": "cli"}
    assert _task_in(b, task_id) is None


def test_an_app_without_the_key_uses_hopper_config(two_configs):
    a, _ = two_configs
    with Flask("plain").app_context():
        task_id = hopper.enqueue("echo", {"plain": True})
    assert _task_in(a, task_id)["args"] == {"plain": True}


def test_a_postgres_server_nobody_listens_on_raises_queue_unavailable(tmp_path, monkeypatch):
    config = write_settings(tmp_path, database=f"postgresql://postgres@127.0.0.1:{free_port()}/x")
    monkeypatch.setenv("HOPPER_CONFIG", str(config))
    monkeypatch.setattr(queue, "_client", None)
    with pytest.raises(hopper.QueueUnavailable, match="cannot be reached"):
        hopper.enqueue("echo", {})


def test_a_sqlite_folder_that_cannot_be_created_raises_queue_unavailable(tmp_path, monkeypatch):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    config = write_settings(tmp_path, database=f"sqlite:///{blocker}/hopper.db")
    monkeypatch.setenv("HOPPER_CONFIG", str(config))
    monkeypatch.setattr(queue, "_client", None)
    with pytest.raises(hopper.QueueUnavailable, match="cannot be reached"):
        hopper.enqueue("echo", {})


def test_a_database_that_goes_away_after_connecting_raises_queue_unavailable(pg_client, pg_url):
    hopper.enqueue("echo", {})  # connected and working
    server, name = pg_url.rsplit("/", 1)
    with psycopg.connect(f"{server}/postgres", autocommit=True) as admin:
        admin.execute(f"ALTER DATABASE {name} ALLOW_CONNECTIONS false")
        admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                      " WHERE datname = %s", (name,))
    with pytest.raises(hopper.QueueUnavailable):
        hopper.enqueue("echo", {})
    with pytest.raises(hopper.QueueUnavailable):  # and again: no half-open state
        hopper.enqueue("echo", {})


def test_a_mistake_in_the_call_is_not_reported_as_unavailable(client):
    with pytest.raises(ValueError, match="unknown task name"):
        hopper.enqueue("no_such_task", {})
