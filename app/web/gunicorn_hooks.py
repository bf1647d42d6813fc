"""Gunicorn server hooks (loaded with ``--config python:app.web.gunicorn_hooks``)."""
from __future__ import annotations

import ctypes
import signal


def on_starting(server):
    """Die with the supervisor: no orphaned web server after a kill -9."""
    try:
        ctypes.CDLL("libc.so.6").prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        server.log.warning("cannot tie gunicorn's life to the supervisor on this platform")
