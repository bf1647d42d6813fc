"""Log output for every Hopper process, as text or one JSON object per line.

The CLI's ``--log-format`` and ``--log-level`` are passed to child processes
(web server, workers) through ``HOPPER_LOG_FORMAT`` and ``HOPPER_LOG_LEVEL``,
so the whole process tree logs alike.

Task events (enqueued, started, succeeded, failed, retried, rescued, cancelled)
go to the ``hopper.tasks`` logger with their fields (task id, name, queue,
worker, attempt, duration) as JSON keys or ``key=value`` text. ``task_event``
returns before building anything when its level is off, so the worker's
success path costs one level check when events are not logged.
"""
from __future__ import annotations

import datetime as dt
import json
import logging
import os
import sys

FORMAT_ENV = "HOPPER_LOG_FORMAT"
LEVEL_ENV = "HOPPER_LOG_LEVEL"
FORMATS = ("text", "json")
LEVELS = ("debug", "info", "warning", "error")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
QUIET_LIBRARIES = ("watchdog", "PIL", "urllib3")

# The level of each task event. The default level (info) shows what needs attention;
# --log-level debug adds a task's routine events. Two lines cost the worker 40-80 us, a
# third of a fast task's whole cost (bench/bench_logging.py), so they stay off by default.
EVENT_LEVELS = {
    "enqueued": logging.DEBUG,
    "started": logging.DEBUG,
    "succeeded": logging.DEBUG,
    "cancelled": logging.INFO,
    "retried": logging.WARNING,
    "rescued": logging.WARNING,
    "failed": logging.ERROR,
    "fenced": logging.WARNING,   # stopped: its daemon lost the database for longer than the lease
}

tasks_log = logging.getLogger("hopper.tasks")


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, msg, the task fields, exc."""

    def format(self, record: logging.LogRecord) -> str:
        out = {
            "ts": dt.datetime.fromtimestamp(record.created, dt.timezone.utc)
                    .isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
            "pid": record.process,
        }
        out.update(getattr(record, "fields", None) or {})
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str)


class TextFormatter(logging.Formatter):
    """The classic line, with a task event's fields appended as ``key=value``."""

    def __init__(self):
        super().__init__(TEXT_FORMAT)

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        fields = getattr(record, "fields", None)
        if fields:
            line += " " + " ".join(f"{k}={v}" for k, v in fields.items() if v is not None)
        return line


def formatter(fmt: str | None = None) -> logging.Formatter:
    """The formatter for ``fmt`` (default: the environment's), e.g. for Gunicorn's own log."""
    fmt = (fmt or os.environ.get(FORMAT_ENV) or "text").lower()
    return JsonFormatter() if fmt == "json" else TextFormatter()


def configure(fmt: str | None = None, level: str | None = None) -> None:
    """Send this process's logs to stderr in ``fmt`` at ``level`` (default: the environment's)."""
    fmt = (fmt or os.environ.get(FORMAT_ENV) or "text").lower()
    level = (level or os.environ.get(LEVEL_ENV) or "info").lower()
    if fmt not in FORMATS:
        raise ValueError(f"log format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    if level not in LEVELS:
        raise ValueError(f"log level must be one of {', '.join(LEVELS)}, got {level!r}")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter(fmt))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    # Libraries' own debug output (every inotify event) would drown Hopper's.
    for noisy in QUIET_LIBRARIES:
        logging.getLogger(noisy).setLevel(max(logging.INFO, root.level))


def export(fmt: str, level: str) -> None:
    """Make child processes started from now on log in ``fmt`` at ``level``."""
    os.environ[FORMAT_ENV], os.environ[LEVEL_ENV] = fmt, level


def task_event(event: str, task_id: int | None, name: str | None, queue: str | None,
               worker: str | None = None, attempt: int | None = None,
               duration: float | None = None, **extra) -> None:
    """Log one task event with its fields (nothing is built when its level is off)."""
    level = EVENT_LEVELS[event]
    if not tasks_log.isEnabledFor(level):
        return
    fields = {"event": event, "task_id": task_id, "name": name, "queue": queue,
              "worker": worker, "attempt": attempt,
              "duration": None if duration is None else round(duration, 6), **extra}
    where = f" on {worker}" if worker else ""
    tasks_log.log(level, "task %s %s %s%s", task_id, name, event, where,
                  extra={"fields": fields})
