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


def context():
    """The fork-server context with the worker code preloaded."""
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(PRELOAD)
    return ctx


def start_early() -> None:
    """Start the fork server now, before the supervisor imports its own modules.

    The fork server is a new interpreter that imports ``PRELOAD``; started first,
    it does that on the other core while the supervisor is still importing and
    initialising, so the first workers can be forked as soon as the pool asks.
    """
    from multiprocessing import forkserver

    context()
    forkserver.ensure_running()
