"""Settings of folder triggers and ignores, checked without a daemon."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from daemons import REPO, write_settings

from hopper.app import settings as settings_mod
from hopper.app.watch.entries import entries_from
from hopper.app.watch.ignores import IgnoreRules


def test_library_ignore_adds_patterns_to_the_built_in_ignores(tmp_path):
    settings = settings_mod.load(write_settings(tmp_path, library={"ignore": ["*.raw", "tmp/"]}))
    rules = IgnoreRules(settings.inbox, settings.library_ignore)
    inbox = settings.inbox
    assert rules.ignores(inbox / "a.raw") and rules.ignores(inbox / "tmp" / "x.jpg")
    assert rules.ignores(inbox / "DCIM" / ".DS_Store") and rules.ignores(inbox / "@eaDir", True)
    assert not rules.ignores(inbox / "DCIM" / "IMG_0001.JPG")


def test_a_library_ignore_that_is_not_a_list_of_patterns_is_refused(tmp_path):
    with pytest.raises(settings_mod.SettingsError, match="library.ignore"):
        settings_mod.load(write_settings(tmp_path, library={"ignore": "*.raw"}))


def test_a_misspelt_watch_key_is_refused_with_a_suggestion(tmp_path):
    config = write_settings(tmp_path, watch=[{"path": "x", "task": "t", "paterns": ["*"]}])
    with pytest.raises(settings_mod.SettingsError, match="did you mean 'watch\\[0\\].patterns'"):
        settings_mod.load(config)


def test_a_bad_watch_entry_carries_its_error_and_leaves_the_others_usable(tmp_path):
    settings = settings_mod.load(write_settings(tmp_path, watch=[
        {"path": "a", "task": "t", "settle_time": "soon"},
        {"path": "b"},
        {"path": "c", "task": "t", "patterns": ["*.nsp"], "queue": "games"}]))
    bad_time, no_task, good = entries_from(settings)
    assert "watch[0].settle_time" in bad_time.error
    assert "watch[1].task" in no_task.error
    assert good.error is None and good.path == (tmp_path / "c").resolve()
    assert good.wants("sub/x.nsp") and not good.wants("x.txt")


def test_lint_imports_shows_the_core_never_imports_the_media_library():
    tool = shutil.which("lint-imports") or str(Path(REPO / ".venv" / "bin" / "lint-imports"))
    if not Path(tool).exists():
        pytest.skip("import-linter is not installed (pip install import-linter)")
    result = subprocess.run([tool], cwd=REPO, capture_output=True, text=True)
    assert "The core never imports the media library (a plugin) KEPT" in result.stdout, \
        result.stdout
