"""Plugins that ship with Hopper, loaded without an install (a checkout runs as is).

These are strings, never imports: the core (``app/queue.py``, ``app/registry.py``,
``app/settings.py``, the scheduler, the daemon and the workers) never imports a
plugin; :mod:`hopper.app.plugins` loads them by name like any installed plugin.
"""
from __future__ import annotations

PLUGINS: tuple[str, ...] = ("hopper.app.library.plugin:plugin",)

