"""The multiprocessing context that starts worker processes.

Workers are forked from a fork server, a clean single-threaded process that has
already imported the worker code (``PRELOAD``), so a new worker starts in
milliseconds and never inherits the supervisor's threads or locks.
"""
from __future__ import annotations

import multiprocessing

# The built-in task modules (registry.BUILTIN_MODULES) too: each worker would
# otherwise import them after its fork; the fork server imports them once.
PRELOAD = ["hopper.worker.forkserver_init", "hopper.worker.loop", "hopper.app.queue",
           "hopper.app.builtin_tasks"]


def backend_module(database_url: str | None) -> list[str]:
    """The backend module a worker on this database imports (psycopg alone takes
    ~130 ms), for the fork server to import once instead of every worker."""
    if not database_url:
        return []
    if database_url.startswith(("postgresql://", "postgres://")):
        return ["hopper.app.backends.postgres"]
    if database_url.startswith("sqlite:///"):
        return ["hopper.app.backends.sqlite"]
    return []


def context(database_url: str | None = None, modules: tuple[str, ...] = ()):
    """The fork-server context with the worker code preloaded, and ``modules`` (the
    plugins' task modules: the library's alone took each new worker ~170 ms)."""
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(PRELOAD + backend_module(database_url) + list(modules))
    return ctx


def start_early() -> None:
    """Start the fork server now, before the supervisor has read its settings or
    imported its own modules.

    The fork server is a new interpreter that imports ``PRELOAD`` and then
    ``hopper.worker.preload`` (the backend and the plugins' task modules named by
    the settings the daemon will read); started first, it does that on the other
    core while the supervisor is still importing and initialising, so the first
    workers can be forked as soon as the pool asks.
    """
    from multiprocessing import forkserver

    context(modules=("hopper.worker.preload",))
    forkserver.ensure_running()
