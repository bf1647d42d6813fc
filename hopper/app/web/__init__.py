"""The Flask web UI and REST API, served by Gunicorn (``app.web:create_app()``)."""
from __future__ import annotations

import datetime as dt
import os
from typing import cast

from flask import Flask
from flask.json.provider import DefaultJSONProvider

from hopper.app import plugins, queue, registry
from hopper.app import settings as settings_mod

MAX_BODY_BYTES = 1024 * 1024


def create_app(settings: settings_mod.Settings | None = None) -> Flask:
    """The app factory. Without ``settings`` it uses this process's queue client,
    which reads ``HOPPER_CONFIG`` (set by the supervisor for Gunicorn)."""
    from hopper.app.web import (
        api_dashboard,
        api_library,
        api_limits,
        api_queues,
        api_schedules,
        api_system,
        api_tasks,
        api_workflow,
        auth,
        errors,
        metrics,
        openapi,
        safety,
        sessions,
        ui,
    )

    if settings is None and os.environ.get(settings_mod.SNAPSHOT_ENV):
        settings = settings_mod.inherited()  # the supervisor's last good settings
    client = queue.configure(settings) if settings is not None else queue.client()
    registry.load_modules(plugins.task_modules())
    app = Flask(__name__)
    app.config.update(
        # Werkzeug answers 413 for bigger bodies before a view reads them.
        MAX_CONTENT_LENGTH=MAX_BODY_BYTES,
        SECRET_KEY=auth.session_secret(client.settings.data_dir),
        SESSION_COOKIE_HTTPONLY=True,
        # Strict: no cross-site request, not even a top-level link, carries the session.
        SESSION_COOKIE_SAMESITE="Strict",
        HOPPER_LAST_GOOD=client.settings,
    )
    app.session_interface = sessions.CookieSessionInterface()
    app.extensions["hopper"] = client
    app.extensions["hopper_metrics"] = metrics.make_registry(client.backend)
    cast(DefaultJSONProvider, app.json).sort_keys = False  # Flask's default provider
    errors.register(app)
    auth.register(app)
    safety.register(app)  # runs before auth: refused requests never reach a token check
    for module in (api_dashboard, api_tasks, api_system, api_queues, api_schedules, api_library,
                   api_workflow, openapi, metrics, ui, api_limits):
        app.register_blueprint(module.bp)
    app.jinja_env.globals.update(csrf_token=auth.csrf_token, csrf_field=auth.CSRF_FIELD)
    app.jinja_env.filters["when"] = _when
    return app


def _when(timestamp: float | None) -> str:
    """A Unix time as local ISO text for the UI."""
    if timestamp is None:
        return "—"
    return dt.datetime.fromtimestamp(timestamp).isoformat(sep=" ", timespec="seconds")
