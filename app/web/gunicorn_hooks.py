"""Gunicorn server hooks (loaded with ``--config python:hopper.app.web.gunicorn_hooks``).

Besides tying the web server's life to the supervisor, these hooks own the
inbox watcher: it starts once the arbiter is ready and stops when it exits.
"""
from __future__ import annotations

import ctypes
import logging
import os
import signal

_watcher = None


def on_starting(server):
    """Die with the supervisor: no orphaned web server after a kill -9."""
    try:
        ctypes.CDLL("libc.so.6").prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        server.log.warning("cannot tie gunicorn's life to the supervisor on this platform")
    # A supervisor killed while this process was still starting sent no signal.
    supervisor = os.environ.get("HOPPER_SUPERVISOR_PID")
    if supervisor and os.getppid() != int(supervisor):
        server.log.warning("the supervisor is gone; not starting")
        os._exit(0)


def when_ready(server):
    """Start the inbox watcher (and its startup scan) in the arbiter process."""
    global _watcher
    from hopper.app import settings as settings_mod
    from hopper.app.library.watcher import InboxWatcher

    # The arbiter has no logging set up for our loggers: send the watcher's
    # messages (what it watches, files it could not enqueue) to Gunicorn's log.
    library_log = logging.getLogger("hopper.library")
    if not library_log.handlers:
        for handler in server.log.error_log.handlers:
            library_log.addHandler(handler)
        library_log.setLevel(logging.INFO)
        library_log.propagate = False
    try:
        watcher = InboxWatcher(settings_mod.load())
        watcher.start()
    except Exception:  # the API must keep serving; the recurring library.scan still runs
        server.log.exception("the inbox watcher could not start")
        return
    _watcher = watcher


def on_exit(server):
    """Stop the inbox watcher when Gunicorn shuts down."""
    global _watcher
    if _watcher is not None:
        _watcher.stop()
        _watcher = None
