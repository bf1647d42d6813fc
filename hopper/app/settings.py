"""Loading and validating settings.yaml.

The settings file is the daemon's single source of configuration. Loading it
either returns a fully validated :class:`Settings` or raises
:class:`SettingsError` with a message a person can act on; callers that reload
live keep the last good settings when that happens.
"""
from __future__ import annotations

import dataclasses
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from hopper.app import flow, queue_names, settings_keys
from hopper.app.backends.urls import sqlite_path
from hopper.app.defaults import MAX_LIMITED_QUEUES, MAX_QUEUE_SETTINGS

SETTINGS_NAME = "settings.yaml"   # looked for in the current folder when nothing names a file
MAX_WORKERS = max(4, (os.cpu_count() or 1) * 8)
# The whole stop (claiming ends, web server, running tasks) fits in docker stop's 10 s.
DEFAULT_SHUTDOWN_GRACE = "8s"
# Child processes (the web server) take the supervisor's last good settings from here,
# never from a settings file that may be mid-edit or broken.
SNAPSHOT_ENV = "HOPPER_SETTINGS_SNAPSHOT"

_FLASK_APP = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, None: 1}


class SettingsError(ValueError):
    """The settings file cannot be used; the message says why."""


def parse_duration(value: Any, key: str = "duration") -> float:
    """Seconds from a number or a string such as ``500ms``, ``30s``, ``7d``."""
    if isinstance(value, bool):
        raise SettingsError(f"{key}: expected a duration, got {value!r}")
    if isinstance(value, (int, float)):
        seconds = float(value)
    else:
        match = _DURATION.match(str(value))
        if not match:
            raise SettingsError(f"{key}: {value!r} is not a duration (e.g. 500ms, 30s, 5m, 1h, 7d)")
        seconds = float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    if seconds < 0:
        raise SettingsError(f"{key}: must not be negative")
    return seconds


@dataclass(frozen=True)
class Settings:
    """Validated settings; paths are absolute."""

    path: Path
    database: str
    durability: str = "full"
    workers: int = 2
    bind: str = "127.0.0.1:8000"
    threads: int = 4
    allowed_hosts: tuple[str, ...] = ()
    token: str | None = None
    retention_succeeded: float = 7 * 86400.0
    retention_failed: float = 30 * 86400.0
    task_modules: tuple[str, ...] = ()
    flask_app: str | None = None
    schedules: tuple[dict, ...] = ()
    queue_limits: dict[str, int] = field(default_factory=dict)  # queues.NAME.concurrency
    eager: bool = False
    lease: float = 30.0
    shutdown_grace: float = 8.0
    rate_limits: dict = field(default_factory=dict)  # key -> flow.Rate, shared via the database
    from_file: bool = True          # False: built-in defaults, no settings file exists yet
    raw: dict = field(default_factory=dict, compare=False, repr=False)
    # Each plugin's parsed settings section, by plugin name; their attributes read as
    # this object's own (``settings.inbox``), so a plugin's code reads its settings
    # like the core's without the core naming them.
    extensions: dict = field(default_factory=dict, compare=False, repr=False)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        for section in self.__dict__.get("extensions", {}).values():
            if hasattr(section, name):
                return getattr(section, name)
        raise AttributeError(f"no setting named {name!r}")

    @property
    def data_dir(self) -> Path:
        """The folder task artifacts are served from: the database's folder for SQLite."""
        if self.database.startswith("sqlite:///"):
            return sqlite_path(self.database).parent
        return self.path.parent / "data"

    @property
    def artifacts_dir(self) -> Path:
        """The only folder task artifacts are served from: ``artifacts/`` in the data folder."""
        return self.data_dir / "artifacts"

    @property
    def bind_host(self) -> str:
        """The host part of ``server.bind`` (no brackets around IPv6)."""
        return self.bind.rsplit(":", 1)[0].strip("[]")

    @property
    def bind_is_loopback(self) -> bool:
        host = self.bind_host
        return host in ("127.0.0.1", "localhost", "::1") or host.startswith("127.")

    def snapshot(self) -> str:
        """These settings as text a child process turns back into them (``from_snapshot``)."""
        return json.dumps({"path": str(self.path), "raw": self.raw, "from_file": self.from_file},
                          default=str)


def config_path(explicit: str | os.PathLike | None = None) -> Path:
    """The settings file in force: ``--config``, else ``HOPPER_CONFIG``, else
    ``settings.yaml`` in the current folder."""
    chosen = explicit or os.environ.get("HOPPER_CONFIG") or Path.cwd() / SETTINGS_NAME
    return Path(chosen).resolve()


def from_snapshot(text: str) -> Settings:
    """The settings a parent process passed down with ``Settings.snapshot``."""
    data = json.loads(text)
    settings = validate(data["raw"], Path(data["path"]))
    if data.get("from_file", True):
        return settings
    return dataclasses.replace(settings, from_file=False)


def inherited() -> Settings:
    """The parent's last good settings when this process was given them, else the file's."""
    text = os.environ.get(SNAPSHOT_ENV)
    return from_snapshot(text) if text else load()


def load(path: str | os.PathLike | None = None) -> Settings:
    """Read, parse and validate a settings file.

    With no file named (no ``path``, no ``HOPPER_CONFIG``) and no ``settings.yaml``
    in the current folder, the built-in defaults apply, with relative paths (the
    database and library folders under ``data/``) resolved against the current
    folder. A file that is named but missing is an error.
    """
    named = path or os.environ.get("HOPPER_CONFIG")
    path = config_path(path)
    if not named and not path.exists():
        return defaults(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise SettingsError(f"cannot read {path}: {exc.strerror}") from exc
    try:
        raw = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise SettingsError(f"{path} is not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise SettingsError(f"{path}: expected a mapping of keys at the top level")
    return validate(raw, path)


def defaults(path: Path) -> Settings:
    """The built-in settings, as if an empty file existed at ``path``."""
    return dataclasses.replace(validate({}, path), from_file=False)


def reload(current: Settings) -> Settings:
    """Load the file ``current`` came from again (the built-in defaults while no
    file has been written where the daemon would look for one)."""
    if not current.from_file and not current.path.exists():
        return defaults(current.path)
    return load(current.path)


def _section(raw: dict, key: str) -> dict:
    value = raw.get(key) or {}
    if not isinstance(value, dict):
        raise SettingsError(f"{key}: expected a mapping")
    return value


def _int(value: Any, key: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise SettingsError(f"{key}: expected a whole number, got {value!r}")
    if not low <= value <= high:
        raise SettingsError(f"{key}: must be between {low} and {high}, got {value}")
    return value


def resolve_path(base: Path, value: Any, key: str) -> Path:
    """A path setting: absolute, relative ones against the settings file's folder."""
    return _resolve(base, value, key)


def _resolve(base: Path, value: Any, key: str) -> Path:
    if not isinstance(value, str) or not value:
        raise SettingsError(f"{key}: expected a path")
    candidate = Path(value)
    return candidate if candidate.is_absolute() else (base / candidate).resolve()


def _database(raw: dict, base: Path) -> str:
    url = os.environ.get("HOPPER_DATABASE_URL") or raw.get("database", "sqlite:///data/hopper.db")
    if not isinstance(url, str):
        raise SettingsError("database: expected a URL such as sqlite:///data/hopper.db")
    if url.startswith("sqlite:///"):
        return "sqlite:///" + str(_resolve(base, str(sqlite_path(url)), "database"))
    if url.startswith(("postgresql://", "postgres://")):
        return url
    raise SettingsError(f"database: unsupported URL {url!r} (use sqlite:///PATH or postgresql://...)")


def _hosts(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(h, str) and h for h in value):
        raise SettingsError("server.allowed_hosts: expected a list of host names")
    return tuple(h.strip().lower() for h in value)


def _schedules(raw: Any) -> tuple[dict, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise SettingsError("schedules: expected a list")
    out: list[dict] = []
    for i, entry in enumerate(raw):
        key = f"schedules[{i}]"
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
            raise SettingsError(f"{key}: expected a mapping with a task name")
        if ("cron" in entry) == ("every" in entry):
            raise SettingsError(f"{key}: give exactly one of cron or every")
        if "every" in entry and parse_duration(entry["every"], f"{key}.every") <= 0:
            raise SettingsError(f"{key}.every: must be positive")
        if "cron" in entry:
            from croniter import croniter

            if not croniter.is_valid(str(entry["cron"])):
                raise SettingsError(f"{key}.cron: {entry['cron']!r} is not a cron expression")
        if not isinstance(entry.get("args", {}), dict):
            raise SettingsError(f"{key}.args: expected a mapping")
        if any(seen["name"] == entry["name"] for seen in out):
            # Slots and pauses are recorded per name: two entries would share them.
            raise SettingsError(f"{key}: a second entry named {entry['name']!r}"
                                " (one entry per task name)")
        out.append(dict(entry))
    return tuple(out)


def check_queue_name(name: Any, key: str = "queue") -> str:
    """A queue name of the settings (``queue_names.check_queue_name``'s rule);
    SettingsError otherwise."""
    try:
        return queue_names.check_queue_name(name, key)
    except queue_names.InvalidQueueName as exc:
        raise SettingsError(str(exc)) from None


def _queue_limits(raw: Any) -> dict[str, int]:
    """``queues: {NAME: {concurrency: N}}`` as ``{NAME: N}`` (queues without a limit left out)."""
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise SettingsError("queues: expected a mapping such as {library: {concurrency: 1}}")
    if len(raw) > MAX_QUEUE_SETTINGS:
        raise SettingsError(f"queues: at most {MAX_QUEUE_SETTINGS} entries")
    limits = {}
    for name, entry in raw.items():
        check_queue_name(name, f"queues.{name}")
        key = f"queues.{name}"
        if entry is None:
            entry = {}
        if not isinstance(entry, dict):
            raise SettingsError(f"{key}: expected a mapping such as {{concurrency: 1}},"
                                f" got {entry!r}")
        unknown = sorted(str(k) for k in entry if k != "concurrency")
        if unknown:
            raise SettingsError(f"{key}: unknown key(s) {', '.join(unknown)}; the only key is "
                                "concurrency (pause a queue with `run.py queue pause NAME`)")
        if "concurrency" in entry:
            limits[name] = _int(entry["concurrency"], f"{key}.concurrency", 0, MAX_WORKERS)
    if sum(1 for n in limits.values() if n > 0) > MAX_LIMITED_QUEUES:
        raise SettingsError(f"queues: at most {MAX_LIMITED_QUEUES} queues may have a "
                            "concurrency above 0")
    return limits


def _rate_limits(raw: Any) -> dict:
    try:
        return flow.parse_rate_limits(raw)
    except ValueError as exc:
        raise SettingsError(str(exc)) from None


def validate(raw: dict, path: Path) -> Settings:
    """Turn a parsed settings mapping into :class:`Settings` or raise SettingsError."""
    base = path.parent
    from hopper.app import plugins  # plugins import this module: loaded at first use

    try:
        settings_keys.check(raw, plugins.settings_keys())
    except settings_keys.UnknownKey as exc:
        raise SettingsError(str(exc)) from None
    server, auth = _section(raw, "server"), _section(raw, "auth")
    retention, tasks = _section(raw, "retention"), _section(raw, "tasks")
    for section in plugins.settings_keys():
        _section(raw, section)
    durability = raw.get("durability", "full")
    if durability not in ("full", "normal"):
        raise SettingsError(f"durability: must be full or normal, got {durability!r}")
    bind = os.environ.get("HOPPER_BIND") or server.get("bind", "127.0.0.1:8000")
    if not isinstance(bind, str) or ":" not in bind:
        source = "HOPPER_BIND" if os.environ.get("HOPPER_BIND") else "server.bind"
        raise SettingsError(f"{source}: expected HOST:PORT, got {bind!r}")
    token = os.environ.get("HOPPER_TOKEN") or auth.get("token")
    if token is not None and (not isinstance(token, str) or not token):
        raise SettingsError("auth.token: expected a non-empty string or null")
    modules = tasks.get("modules") or []
    if not isinstance(modules, list) or not all(isinstance(m, str) for m in modules):
        raise SettingsError("tasks.modules: expected a list of module names")
    flask_app = tasks.get("flask_app")
    if flask_app is not None and (not isinstance(flask_app, str)
                                  or not _FLASK_APP.match(flask_app)):
        raise SettingsError(f"tasks.flask_app: expected \"package.module:create_app\" or"
                            f" \"package.module:app\", got {flask_app!r}")
    settings = Settings(
        path=path,
        database=_database(raw, base),
        durability=durability,
        workers=_int(raw.get("workers", 2), "workers", 1, MAX_WORKERS),
        bind=bind,
        threads=_int(server.get("threads", 4), "server.threads", 1, 256),
        allowed_hosts=_hosts(server.get("allowed_hosts")),
        token=token,
        retention_succeeded=parse_duration(retention.get("succeeded", "7d"), "retention.succeeded"),
        retention_failed=parse_duration(retention.get("failed", "30d"), "retention.failed"),
        task_modules=tuple(modules),
        flask_app=flask_app,
        schedules=_schedules(raw.get("schedules")),
        queue_limits=_queue_limits(raw.get("queues")),
        eager=bool(raw.get("eager", False)),
        lease=parse_duration(raw.get("lease", "30s"), "lease"),
        shutdown_grace=parse_duration(raw.get("shutdown_grace", DEFAULT_SHUTDOWN_GRACE),
                                      "shutdown_grace"),
        rate_limits=_rate_limits(raw.get("rate_limits")),
        raw=raw,
        extensions=plugins.parse_sections(raw, base),
    )
    if settings.lease < 1:
        raise SettingsError("lease: must be at least 1s")
    if not settings.bind_is_loopback and not settings.token:
        raise SettingsError(
            f"auth.token is required when server.bind ({bind}) is not a loopback address"
        )
    return settings
