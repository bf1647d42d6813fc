"""Loading and validating settings.yaml."""
from __future__ import annotations

from pathlib import Path

import pytest

from hopper.app import settings


@pytest.mark.parametrize("text, seconds", [
    ("500ms", 0.5), ("30s", 30), ("5m", 300), ("1h", 3600), ("7d", 604800), (12, 12), ("2.5s", 2.5),
])
def test_durations_accept_numbers_and_units(text, seconds):
    assert settings.parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("bad", ["soon", "5 weeks", "-3s", True])
def test_bad_durations_are_refused(bad):
    with pytest.raises(settings.SettingsError):
        settings.parse_duration(bad)


def test_relative_paths_resolve_against_the_settings_folder(tmp_path):
    path = tmp_path / "settings.yaml"
    path.write_text("database: sqlite:///db/h.db\nlibrary: {inbox: in}\n")
    loaded = settings.load(path)
    assert loaded.database == f"sqlite:///{tmp_path}/db/h.db"
    assert loaded.inbox == tmp_path / "in"


def test_environment_overrides_the_database(tmp_path, monkeypatch):
    path = tmp_path / "settings.yaml"
    path.write_text("workers: 1\n")
    monkeypatch.setenv("HOPPER_DATABASE_URL", "postgresql://u@h:5432/d")
    assert settings.load(path).database == "postgresql://u@h:5432/d"


@pytest.mark.parametrize("text, message", [
    ("workers: [oops", "not valid YAML"),
    ("workers: 0", "workers: must be between"),
    ("workers: two", "workers: expected a whole number"),
    ("durability: sometimes", "durability: must be full or normal"),
    ("server: {bind: '0.0.0.0:8000'}", "auth.token is required"),
    ("schedules: [{name: echo}]", "exactly one of cron or every"),
    ("schedules: [{name: echo, cron: 'not cron'}]", "is not a cron expression"),
    ("schedules: [{name: echo, every: 1s}, {name: echo, every: 2s}]", "a second entry named"),
    ("- just\n- a list", "expected a mapping"),
])
def test_invalid_settings_are_refused_with_a_clear_message(tmp_path, text, message):
    path = tmp_path / "settings.yaml"
    path.write_text(text)
    with pytest.raises(settings.SettingsError, match=message):
        settings.load(path)


def test_the_shipped_settings_file_is_valid():
    loaded = settings.load(Path(__file__).resolve().parent.parent / "settings.yaml")
    assert loaded.workers == 2 and loaded.durability == "full"
