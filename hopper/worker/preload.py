"""Imported by the fork server after the worker code: the database backend and the
plugins' task modules of the daemon being started.

The daemon starts its fork server before it has read its settings (so that the
two start side by side on two cores); the fork server reads them here, from the
same place the daemon will (``--config`` reaches it as ``HOPPER_CONFIG``).
Nothing here is required: a module not imported now is imported by each worker,
and a settings file that cannot be read is reported by the daemon itself.
"""
from __future__ import annotations

import importlib

from hopper.app import plugins
from hopper.app import settings as settings_mod
from hopper.worker.context import backend_module


def _preload() -> None:
    # Any failure here is the daemon's to report: it reads the same settings and
    # loads the same plugins itself, and exits with its code and message; a fork
    # server that died of it would only add a second traceback.
    try:
        settings = settings_mod.load()
        modules = backend_module(settings.database) + list(plugins.task_modules())
    except Exception:  # a broken settings file or plugin: see above
        return
    for name in modules:
        try:
            importlib.import_module(name)
        except Exception:  # the worker that needs it imports it again and reports it
            continue


_preload()
