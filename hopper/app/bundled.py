"""Task modules that ship with Hopper but are not part of the queue core.

The daemon, its web app and the command line load them the way they load a
user's ``tasks.modules``; the queue core (``app/queue.py``, ``app/registry.py``)
never imports them.
"""
from __future__ import annotations

TASK_MODULES: tuple[str, ...] = ("hopper.app.library.tasks",)
