"""Fixtures for the library tests."""
from __future__ import annotations

import pytest
from daemons import write_settings
from library_support import LIBRARY_MODULES


@pytest.fixture
def lib(tmp_path, monkeypatch):
    """An eager client (tasks run in this process) on temp library folders."""
    config = write_settings(tmp_path, eager=True, tasks={"modules": LIBRARY_MODULES})
    monkeypatch.setenv("HOPPER_CONFIG", str(config))
    from hopper.app import queue, settings

    client = queue.configure(settings.load(config))
    for folder in (client.settings.inbox, client.settings.library_root):
        folder.mkdir(parents=True, exist_ok=True)
    return client


@pytest.fixture
def engine_lib(tmp_path, monkeypatch, database):
    """An eager client on the engine under test (SQLite and PostgreSQL), temp folders."""
    config = write_settings(tmp_path, eager=True, database=database,
                            tasks={"modules": LIBRARY_MODULES})
    monkeypatch.setenv("HOPPER_CONFIG", str(config))
    from hopper.app import queue, settings

    client = queue.configure(settings.load(config))
    for folder in (client.settings.inbox, client.settings.library_root):
        folder.mkdir(parents=True, exist_ok=True)
    return client


@pytest.fixture
def library_http(engine_lib):
    """The web app on the same settings and database, through Flask's test client."""
    from hopper.app.web import create_app

    return create_app(engine_lib.settings).test_client()
