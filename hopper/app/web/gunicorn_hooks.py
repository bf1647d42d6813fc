"""Gunicorn server hooks (loaded with ``--config python:hopper.app.web.gunicorn_hooks``).

Besides tying the web server's life to the supervisor, these hooks own the
inbox watcher: it starts once the arbiter is ready and stops when it exits.
"""
from __future__ import annotations

import ctypes
import os
import signal

from gunicorn.glogging import Logger

_watcher = None


class HopperLogger(Logger):
    """Gunicorn's own log lines in Hopper's format (``--log-format json``: JSON too)."""

    def setup(self, cfg):
        super().setup(cfg)
        from hopper.app import logs

        for handler in self.error_log.handlers:
            handler.setFormatter(logs.formatter())


logger_class = HopperLogger  # a Gunicorn setting, read from this config module


def on_starting(server):
    """Die with the supervisor: no orphaned web server after a kill -9. Log as it does."""
    from hopper.app import logs

    logs.configure()  # HOPPER_LOG_FORMAT and HOPPER_LOG_LEVEL, inherited from the supervisor
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
    from hopper.app import bundled, registry
    from hopper.app import settings as settings_mod
    from hopper.app.library.watcher import InboxWatcher

    registry.load_modules(bundled.TASK_MODULES)  # the watcher enqueues library tasks
    try:
        watcher = InboxWatcher(settings_mod.inherited())
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
