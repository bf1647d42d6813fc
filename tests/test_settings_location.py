"""Which settings file is in force: ``--config``, ``HOPPER_CONFIG``, ``./settings.yaml``,
else the built-in defaults under the current folder; ``HOPPER_BIND`` overrides the bind."""
from __future__ import annotations

import pytest

from hopper.app import settings


@pytest.fixture
def elsewhere(tmp_path, monkeypatch):
    """The current folder is an empty temp folder and no file is named in the environment."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("HOPPER_CONFIG", raising=False)
    return tmp_path


def test_with_no_file_anywhere_the_defaults_keep_data_under_the_current_folder(elsewhere):
    loaded = settings.load()
    assert loaded.from_file is False
    assert loaded.database == f"sqlite:///{elsewhere}/data/hopper.db"
    assert (loaded.inbox, loaded.quarantine) == (elsewhere / "data/inbox",
                                                 elsewhere / "data/quarantine")
    assert loaded.path == elsewhere / "settings.yaml"


def test_settings_yaml_in_the_current_folder_is_used(elsewhere):
    (elsewhere / "settings.yaml").write_text("workers: 3\n")
    loaded = settings.load()
    assert (loaded.workers, loaded.from_file) == (3, True)


def test_a_named_file_that_is_missing_is_refused(elsewhere, monkeypatch):
    monkeypatch.setenv("HOPPER_CONFIG", str(elsewhere / "missing.yaml"))
    with pytest.raises(settings.SettingsError, match="cannot read .*missing.yaml"):
        settings.load()


def test_reload_of_defaults_reads_a_file_written_since(elsewhere):
    first = settings.load()
    assert settings.reload(first).workers == 2
    (elsewhere / "settings.yaml").write_text("workers: 5\n")
    assert settings.reload(first).workers == 5


def test_hopper_bind_overrides_server_bind(elsewhere, monkeypatch):
    (elsewhere / "settings.yaml").write_text("server: {bind: '127.0.0.1:8000'}\n")
    monkeypatch.setenv("HOPPER_BIND", "127.0.0.1:9123")
    assert settings.load().bind == "127.0.0.1:9123"


def test_a_bad_hopper_bind_is_refused_naming_the_variable(elsewhere, monkeypatch):
    monkeypatch.setenv("HOPPER_BIND", "8000")
    with pytest.raises(settings.SettingsError, match="HOPPER_BIND: expected HOST:PORT"):
        settings.load()
