"""The settings page shows every library setting in words, and ``library --help`` says
what reindex does."""
from __future__ import annotations

import subprocess
import sys

from daemons import REPO, write_settings

from hopper.app.web.settings_words import duration_words


def test_durations_are_words():
    assert [duration_words(s) for s in (2592000.0, 5.0, 5400.0, 0.5, 3600.0, 90.0)] == [
        "30 days", "5 s", "1 h 30 min", "0.5 s", "1 h", "1 min 30 s"]


def test_settings_page_shows_library_settings_in_words(tmp_path, monkeypatch):
    config = write_settings(tmp_path, eager=True, library={"settle_time": "5s",
                                                           "rescan_interval": "2h"},
                            retention={"failed": "30d", "succeeded": "7d"})
    monkeypatch.setenv("HOPPER_CONFIG", str(config))
    from hopper.app import queue, settings
    from hopper.app.web import create_app

    client = queue.configure(settings.load(config))
    page = create_app(client.settings).test_client().get("/settings").get_data(as_text=True)
    table = page[page.index('id="library-settings"'):page.index("</table>",
                                                                   page.index("library-settings"))]
    for key, words in (("library.settle_time", "5 s"), ("library.rescan_interval", "2 h"),
                       ("retention.failed", "30 days"), ("retention.succeeded", "7 days"),
                       ("library.polling", "off")):
        assert f"<code>{key}</code></td><td>{words}</td>" in table
    assert "2592000" not in table


def test_library_help_describes_reindex():
    done = subprocess.run([sys.executable, str(REPO / "run.py"), "library", "--help"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0
    assert "keeps its id and added time" in " ".join(done.stdout.split())
