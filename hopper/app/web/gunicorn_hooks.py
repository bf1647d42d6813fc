"""Gunicorn server hooks (loaded with ``--config python:hopper.app.web.gunicorn_hooks``).

Besides tying the web server's life to the supervisor, these hooks own the
watchers (the ``watch:`` entries and the plugins' own): they start once the
arbiter is ready and stop when it exits.
"""
from __future__ import annotations

import ctypes
import os
import signal
import threading

from gunicorn.glogging import Logger

_watchers: list = []
_watch_host = None
_watchers_lock = threading.Lock()   # starting (on its thread) and stopping never overlap
_stopped = False


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
    """Start the watchers in the arbiter process: the ``watch:`` entries and every
    plugin's own (with their startup scans). Started here, before the arbiter forks
    its web workers: a thread busy starting them (imports, logging, a database
    connection) while a worker is forked would leave that worker deadlocked on a
    lock it copied held."""
    from hopper.app import plugins, registry
    from hopper.app import settings as settings_mod

    registry.load_modules(plugins.task_modules())  # the watchers enqueue the plugins' tasks
    _start_watchers(server, settings_mod.inherited())


def _start_watchers(server, settings) -> None:
    global _watchers
    from hopper.app import plugins

    with _watchers_lock:
        if _stopped:
            return
        _start_watch_host(server, settings)
        _watchers = plugins.start_watchers(settings)


def _start_watch_host(server, settings):
    """The folder triggers of ``watch:``: a failure is logged, the server keeps serving."""
    global _watch_host
    from hopper.app import queue
    from hopper.app.watch.host import WatchHost

    try:
        client = queue.client()  # loads tasks.modules: entries name the user's tasks
        host = WatchHost(settings, client.backend)
        host.start()
    except Exception:  # the API must keep serving
        server.log.exception("the folder watcher could not start")
        return
    _watch_host = host


def on_exit(server):
    """Stop the watchers when Gunicorn shuts down."""
    global _watchers, _watch_host, _stopped
    with _watchers_lock:
        _stopped = True
        _stop_watchers()


def _stop_watchers() -> None:
    global _watchers, _watch_host
    if _watch_host is not None:
        _watch_host.stop()
        _watch_host = None
    for watcher in _watchers:
        watcher.stop()
    _watchers = []
