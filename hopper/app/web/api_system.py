"""``/api/workers``, ``/api/settings`` and ``/healthz``."""
from __future__ import annotations

import logging

import yaml
from flask import Blueprint, current_app, jsonify

from hopper.app import plugins
from hopper.app import settings as settings_mod
from hopper.app.backends.urls import redact
from hopper.app.published import FLASK_APP_ERROR_KEY, SETTINGS_ERROR_KEY
from hopper.app.watch.host import read_status
from hopper.app.web import inputs, settings_file
from hopper.app.web.errors import bad_request, conflict

bp = Blueprint("api_system", __name__)
log = logging.getLogger("hopper.web")

LIVE_KEYS = ("workers", "queues")
WORKER_FIELDS = ("id", "pid", "state", "task_id", "cpu_percent", "rss_bytes", "started_at")


def _client():
    return current_app.extensions["hopper"]


def live_workers() -> list[dict]:
    """Workers with a fresh heartbeat, in the public shape."""
    rows = _client().backend.live_workers()
    return [{k: row[k] for k in WORKER_FIELDS} for row in rows]


@bp.get("/api/workers")
def workers():
    """The live worker processes."""
    return jsonify(live_workers())


def public_settings(s: settings_mod.Settings) -> dict:
    """Settings as shown to clients: never the token itself."""
    return {
        "path": str(s.path),
        "database": redact(s.database),
        "durability": s.durability,
        "workers": s.workers,
        "max_workers": settings_mod.MAX_WORKERS,
        "server": {"bind": s.bind, "threads": s.threads,
                   "allowed_hosts": list(s.allowed_hosts)},
        "auth": {"token_set": bool(s.token)},
        **plugins.public(s),
        "retention": {"succeeded": s.retention_succeeded, "failed": s.retention_failed},
        "tasks": {"modules": list(s.task_modules), "flask_app": s.flask_app},
        "schedules": [dict(entry) for entry in s.schedules],
        "queues": {name: {"concurrency": n} for name, n in sorted(s.queue_limits.items())},
    }


def settings_in_force() -> tuple[settings_mod.Settings, str | None]:
    """The settings the daemon applies: the file when it loads (the watcher
    applies a good file within a fraction of a second), else the last good
    settings this process saw, with the load error."""
    client = _client()
    try:
        current = settings_mod.reload(client.settings)
    except settings_mod.SettingsError as exc:
        return current_app.config["HOPPER_LAST_GOOD"], str(exc)
    current_app.config["HOPPER_LAST_GOOD"] = current
    return current, None


def _settings_body(current: settings_mod.Settings, load_error: str | None) -> dict:
    backend = _client().backend
    published = backend.get_state(SETTINGS_ERROR_KEY)
    error = published if published else (
        {"error": load_error, "at": None} if load_error else None)
    return {"settings": public_settings(current), "error": error,
            "flask_app_error": backend.get_state(FLASK_APP_ERROR_KEY),
            "watch": read_status(backend)}


@bp.get("/api/settings")
def get_settings():
    """The settings in force and the last live-reload error, if any."""
    return jsonify(_settings_body(*settings_in_force()))


@bp.patch("/api/settings")
def patch_settings():
    """Change live keys (``workers``, ``queues.NAME.concurrency``) in settings.yaml;
    the daemon's watcher applies them."""
    body = inputs.json_body()
    if not isinstance(body, dict) or not body:
        raise bad_request("invalid settings",
                          "the body must be a JSON object such as {\"workers\": 3}")
    unknown = sorted(set(body) - set(LIVE_KEYS))
    if unknown:
        raise bad_request("not a live setting",
                          f"{', '.join(unknown)} cannot be changed here; live keys: "
                          f"{', '.join(LIVE_KEYS)}")
    workers = inputs.field_int(body, "workers", 1, settings_mod.MAX_WORKERS)
    if "workers" in body and workers is None:
        raise bad_request("invalid workers", f"workers must be an integer from 1 to "
                                             f"{settings_mod.MAX_WORKERS}")
    limits = _queue_limits(body["queues"]) if "queues" in body else None
    path = _client().settings.path
    try:
        written = settings_file.write_live(path, workers=workers, queue_limits=limits)
    except (settings_mod.SettingsError, yaml.YAMLError) as exc:
        raise conflict("settings file is invalid", f"{path} was left unchanged: {exc}") from None
    except OSError as exc:
        raise conflict("settings file not writable", f"{path}: {exc.strerror}") from None
    current_app.config["HOPPER_LAST_GOOD"] = written.settings
    log.info("settings.yaml: %s", written.changes)
    return jsonify(written=written.changes, path=str(written.path),
                   comments_preserved=written.comments_preserved,
                   settings=public_settings(written.settings))


def _queue_limits(value) -> dict[str, int]:
    """``{name: {concurrency: n}}`` from a PATCH body, checked like the settings file."""
    example = 'such as {"queues": {"video": {"concurrency": 2}}}'
    if not isinstance(value, dict) or not value:
        raise bad_request("invalid queues", f"queues must be a non-empty object {example}")
    limits = {}
    for name, entry in value.items():
        try:
            settings_mod.check_queue_name(name, f"queues.{name}")
        except settings_mod.SettingsError as exc:
            raise bad_request("invalid queue name", str(exc)) from None
        if not isinstance(entry, dict) or set(entry) != {"concurrency"}:
            raise bad_request("invalid queues",
                              f"queues.{name} must be an object with only concurrency, {example}")
        n = entry["concurrency"]
        if isinstance(n, bool) or not isinstance(n, int) or not 0 <= n <= settings_mod.MAX_WORKERS:
            raise bad_request("invalid concurrency",
                              f"queues.{name}.concurrency must be an integer from 0 to "
                              f"{settings_mod.MAX_WORKERS}, got {n!r}")
        limits[name] = n
    return limits


@bp.get("/healthz")
def healthz():
    """200 when the database answers and workers are alive; 503 otherwise."""
    backend = _client().backend
    try:
        backend.ping()
        alive = len(live_workers())
    except Exception as exc:  # any failure to reach the database is what this reports
        log.warning("health check: database unavailable: %s", exc)
        return jsonify(status="unavailable", db=f"error: {exc}", pool=None), 503
    pool = {"status": "ok" if alive else "down", "workers": alive}
    if not alive:
        return jsonify(status="unavailable", db="ok", pool=pool), 503
    return jsonify(status="ok", db="ok", pool=pool)
