"""Fixtures for folder triggers: a daemon whose settings name watch entries."""
from __future__ import annotations

import pytest
import yaml
from daemons import write_settings

MODULES = {"modules": ["sample_tasks", "watch_tasks"]}


def entry(folder, **options) -> dict:
    """A watch entry on ``folder`` for the test tasks, 300 ms settle time."""
    return {"path": str(folder), "task": "watchtest.added", "settle_time": "300ms", **options}


@pytest.fixture
def watch_config(tmp_path):
    """Factory: a settings file with ``entries`` as its ``watch:`` list."""
    def factory(entries: list[dict], **overrides):
        return write_settings(tmp_path, watch=entries, tasks=MODULES, **overrides)
    return factory


def set_entries(config, entries: list[dict]) -> None:
    """Rewrite the settings file's ``watch:`` list (a live change)."""
    raw = yaml.safe_load(config.read_text())
    raw["watch"] = entries
    tmp = config.with_suffix(".tmp")
    tmp.write_text(yaml.safe_dump(raw, sort_keys=False))
    tmp.replace(config)


def tasks_named(client, name: str) -> list[dict]:
    """Every task of ``name`` in the database, oldest first."""
    return sorted(client.backend.list(name=name, limit=1000), key=lambda t: t["id"])
