"""Read access to the library index and task table of a test daemon."""
from __future__ import annotations

import sqlite3
from pathlib import Path

# A test process that enqueues library tasks itself loads them like any user module.
LIBRARY_MODULES = ["sample_tasks", "hopper.app.library.tasks"]

def index_rows(config: Path) -> list[dict]:
    """All library_items rows of the daemon using ``config`` (empty before migration)."""
    from hopper.app.backends import open_backend
    from hopper.app.library.index import search_items
    from hopper.app.settings import load

    backend = open_backend(load(config).database)
    try:
        rows, cursor = [], None
        while True:
            page = search_items(backend, limit=500, cursor=cursor)
            rows += page
            if len(page) < 500:
                return rows
            cursor = page[-1]["id"]
    except sqlite3.OperationalError:  # tables not created yet: the daemon is starting
        return []
    finally:
        backend.close()

def tasks_named(config: Path, name: str) -> list[dict]:
    from hopper.app.backends import open_backend
    from hopper.app.settings import load

    backend = open_backend(load(config).database)
    try:
        return backend.list(name=name, limit=100_000)
    finally:
        backend.close()
