"""Plugins: packages that add settings, tasks, schedules, serve-only queues, watchers
and commands to Hopper through one interface, without the core naming them.

A plugin is a :class:`Plugin` object, found through the ``hopper.plugins`` entry
point group of installed packages (``[project.entry-points."hopper.plugins"]`` in
a ``pyproject.toml``), plus the plugins that ship with Hopper (``bundled.PLUGINS``,
so a checkout runs without an install). ``docs/plugins.md`` shows how to write one.
"""
from __future__ import annotations

import importlib
import logging
import threading
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, Callable

from hopper.app import bundled

log = logging.getLogger("hopper.plugins")

ENTRY_POINT_GROUP = "hopper.plugins"


class PluginError(RuntimeError):
    """A plugin cannot be loaded; the message names it."""


@dataclass(frozen=True)
class Command:
    """A ``run.py`` subcommand: ``arguments(parser)`` adds its options, ``run(args,
    client)`` runs it and returns the exit code."""

    name: str
    help: str
    arguments: Callable[[Any], None]
    run: Callable[[Any, Any], int]


@dataclass(frozen=True)
class Plugin:
    """What a plugin adds; every part is optional.

    - ``section``/``keys``/``parse``: the top-level settings section it owns, the
      keys known under it (misspellings are refused like the core's), and a function
      ``parse(section: dict, folder: Path) -> object`` that validates it (raising
      ``SettingsError``) and returns an object whose attributes become attributes
      of ``Settings`` (``settings.inbox``).
    - ``task_modules``: modules whose ``@task`` functions every process loads.
    - ``schedules(settings)``: recurring entries added to the user's ``schedules``.
    - ``serve_only_queues``: queues only ``serve`` daemons claim (their files live
      where the watchers run) unless ``worker --queues`` names them.
    - ``watchers(settings)``: started by the web server's hooks beside the ``watch:``
      entries; returns an object with ``stop()``.
    - ``public(settings)``: the section as ``GET /api/settings`` shows it.
    - ``commands``: ``run.py`` subcommands.
    """

    name: str
    section: str | None = None
    keys: dict | None = None
    parse: Callable[[dict, Path], Any] | None = None
    task_modules: tuple[str, ...] = ()
    schedules: Callable[[Any], tuple[dict, ...]] | None = None
    serve_only_queues: tuple[str, ...] = ()
    watchers: Callable[[Any], Any] | None = None
    public: Callable[[Any], dict] | None = None
    commands: tuple[Command, ...] = ()


_loaded: tuple[Plugin, ...] | None = None
_lock = threading.Lock()


def _load(spec: str) -> Plugin:
    module_name, _, attr = spec.partition(":")
    try:
        found = getattr(importlib.import_module(module_name), attr or "plugin")
    except (ImportError, AttributeError) as exc:
        raise PluginError(f"plugin {spec!r} cannot be loaded: {exc}") from exc
    if not isinstance(found, Plugin):
        raise PluginError(f"plugin {spec!r} is a {type(found).__name__}, not a hopper Plugin")
    return found


def plugins() -> tuple[Plugin, ...]:
    """Every plugin, bundled first, then installed ones; each name once."""
    global _loaded
    with _lock:
        if _loaded is None:
            specs = list(bundled.PLUGINS)
            specs += [ep.value for ep in entry_points(group=ENTRY_POINT_GROUP)
                      if ep.value not in specs]
            found: dict[str, Plugin] = {}
            for spec in specs:
                plugin = _load(spec)
                found.setdefault(plugin.name, plugin)
            _loaded = tuple(found.values())
        return _loaded


def task_modules() -> tuple[str, ...]:
    """The task modules of every plugin."""
    return tuple(m for p in plugins() for m in p.task_modules)


def serve_only_queues() -> frozenset[str]:
    """Queues only ``serve`` daemons claim."""
    return frozenset(q for p in plugins() for q in p.serve_only_queues)


def settings_keys() -> dict:
    """``{section: keys}`` of every plugin that owns a settings section."""
    return {p.section: p.keys for p in plugins() if p.section}


def parse_sections(raw: dict, folder: Path) -> dict[str, Any]:
    """``{plugin name: parsed section}``; SettingsError from a plugin propagates."""
    out = {}
    for p in plugins():
        if p.section and p.parse:
            section = raw.get(p.section) or {}
            out[p.name] = p.parse(section, folder)
    return out


def schedules(settings) -> tuple[dict, ...]:
    """The recurring entries plugins add (a user's entry of the same name wins)."""
    mine = {e["name"] for e in settings.schedules}
    out = []
    for p in plugins():
        if p.schedules:
            out += [e for e in p.schedules(settings) if e["name"] not in mine]
    return tuple(out)


def public(settings) -> dict:
    """``{section: shown values}`` for ``GET /api/settings``."""
    return {p.section: p.public(settings) for p in plugins() if p.section and p.public}


def commands() -> tuple[Command, ...]:
    """Every plugin's ``run.py`` subcommands."""
    return tuple(c for p in plugins() for c in p.commands)


def start_watchers(settings) -> list:
    """Start every plugin's watchers; one that fails is logged, the others still start."""
    started = []
    for p in plugins():
        if p.watchers is None:
            continue
        try:
            started.append(p.watchers(settings))
        except Exception:  # one plugin's folder problem must not stop the web server
            log.exception("plugin %s: its watchers could not start", p.name)
    return started
