"""Running tasks inside the user's own Flask app (``tasks.flask_app``).

Each worker process builds the app once, then runs every task inside
``app.app_context()`` and pops that context after the task, as Flask does after
a request: teardown functions run (Flask-SQLAlchemy removes its session), so
nothing a task left in a session reaches the next task. Flask is imported only
here, and only when the setting is present.
"""
from __future__ import annotations

import importlib
import logging
import time
import traceback
from contextlib import contextmanager
from typing import Any, Callable, ContextManager, Iterator

from hopper.app.backends.base import Backend
from hopper.app.published import FLASK_APP_ERROR_KEY

log = logging.getLogger("hopper.worker")

# A worker exits with this code when the app cannot be built; the pool reports
# the error once and backs off instead of restarting it at once.
EXIT_APP_FAILED = 3


def load_app(spec: str) -> Any:
    """The Flask app named by ``"package.module:create_app"`` (called with no
    arguments) or ``"package.module:app"`` (used as it is)."""
    from flask import Flask

    module_name, _, attribute = spec.partition(":")
    target = getattr(importlib.import_module(module_name), attribute)
    app = target if isinstance(target, Flask) else target()
    if not isinstance(app, Flask):
        raise TypeError(f"{spec} gave {type(app).__name__}, not a Flask app")
    return app


def task_context_for(app: Any) -> Callable[[], ContextManager[None]]:
    """A context manager factory: one fresh app context per task."""

    @contextmanager
    def in_app_context() -> Iterator[None]:
        context = app.app_context()
        context.push()
        try:
            yield
        finally:
            try:
                context.pop()
            except Exception:  # the task's outcome is already known: keep it, report this
                log.exception("a teardown function of %s failed after a task", app.name)

    return in_app_context


def build_or_exit(spec: str, backend: Backend) -> Callable[[], ContextManager[None]]:
    """Build the app for this worker; on failure publish why and exit the process.

    The error is published in the database (``GET /api/settings`` and the UI show
    it); the supervisor logs it once and delays the replacement worker.
    """
    try:
        app = load_app(spec)
    except Exception as exc:  # any failure in the user's factory is reported, not raised
        backend.put_state(FLASK_APP_ERROR_KEY, {
            "app": spec, "error": f"{type(exc).__name__}: {exc}",
            "traceback": traceback.format_exc(), "at": time.time()})
        raise SystemExit(EXIT_APP_FAILED) from None
    if backend.get_state(FLASK_APP_ERROR_KEY) is not None:
        backend.put_state(FLASK_APP_ERROR_KEY, None)  # fixed: the app builds again
    return task_context_for(app)
