"""Keys of the facts Hopper's processes publish for each other in the database
(``put_state``/``get_state``), so the UI and API can show what a daemon or a
worker could not say in a response of its own."""
from __future__ import annotations

SETTINGS_ERROR_KEY = "settings_error"    # the daemon refused a live edit of settings.yaml
FLASK_APP_ERROR_KEY = "flask_app_error"  # a worker could not build tasks.flask_app
# The folder watcher's entries and counts, one key per web server process (HOST:PID after it).
WATCH_STATUS_PREFIX = "watch_status:"
