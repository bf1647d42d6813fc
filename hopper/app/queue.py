"""The public Python API: ``task``, ``enqueue``, ``get_task``, ``wait`` and friends.

Any process can enqueue: the client finds the database from ``HOPPER_CONFIG``
(or the default settings.yaml), exactly as the daemon does. Inside a Flask app
context whose ``app.config["HOPPER_CONFIG"]`` names a settings file, that file
is used instead, so a web app can carry its own setting.
"""
from __future__ import annotations

import datetime as dt
import json
import os
import sys
import threading
import time
from pathlib import Path
from typing import Any, Literal

from hopper.app import execute, graph_plan, logs, registry, tracing
from hopper.app import settings as settings_mod
from hopper.app.backends import is_unavailable, open_backend
from hopper.app.backends.base import FINISHED, STATUSES, Backend, NewTask, QueueUnavailable
from hopper.app.backends.urls import redact
from hopper.app.engines import InlineEngine, QueueEngine
from hopper.app.flow import flow_fields
from hopper.app.queue_names import check_queue_name
from hopper.app.registry import task  # noqa: F401  (re-exported: ``from hopper import task``)
from hopper.app.task_fields import check_meta, check_tags

__all__ = ["task", "enqueue", "enqueue_many", "get_task", "wait", "cancel", "retry",
           "current_task_id", "set_progress", "set_meta", "list_tasks", "pause_queue",
           "resume_queue", "configure", "client", "QueueUnavailable"]

def _args_encoder():
    """``args`` to JSON text, refusing NaN and infinity (JSON has neither: clients
    could not read them back). One encoder serves every call: ``json.dumps``
    builds a new one whenever an option differs from its defaults, and the C
    encoder called directly skips the Python wrapper, about 2x faster for the
    small objects args usually are. No cycle check: a self-containing object
    ends in RecursionError, which ``build_task`` reports like any other."""
    encoder = json.JSONEncoder(allow_nan=False)
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:  # an interpreter without the C accelerator
        return encoder.encode
    c_encode = make(None, encoder.default, json.encoder.encode_basestring_ascii, None,
                    ": ", ", ", False, False, False)
    return lambda value: "".join(c_encode(value, 0))


_encode_args = _args_encoder()

_ENQUEUE_KEYS = {"args", "queue", "priority", "run_after", "delay", "unique_key",
                 "max_attempts", "timeout", "parent_id", "tags", "meta", "depends_on",
                 "concurrency_key", "concurrency", "rate_key"}
_REQUEST_KEYS = _ENQUEUE_KEYS | {"name", "ref"}


class Client:
    """A process's handle on the queue: settings, backend and the engine that runs
    what it enqueues (the daemons' workers, or this process in eager mode)."""

    def __init__(self, settings: settings_mod.Settings, migrate: bool = True,
                 modules: tuple[str, ...] = ()):
        self.settings = settings
        # The settings folder goes on sys.path only when there is user code to find there.
        has_user_code = bool(settings.task_modules or settings.flask_app)
        registry.load_modules((*modules, *settings.task_modules),
                              settings.path.parent if has_user_code else None)
        with reaching(settings.database):
            self.backend: Backend = open_backend(settings.database, settings.durability)
            if migrate:
                self.backend.migrate()
        self.eager = settings.eager or os.environ.get("HOPPER_EAGER", "") not in ("", "0")
        self.engine = InlineEngine(self.backend) if self.eager else QueueEngine(self.backend)


_client: Client | None = None
_client_lock = threading.Lock()
_app_clients: dict[Path, Client] = {}  # by settings file named in a Flask app's config
_resolved_config_paths: dict[str | os.PathLike, Path] = {}  # HOPPER_CONFIG values, resolved


class reaching:
    """Turn "the database cannot be reached" into :class:`QueueUnavailable`.

    Any other error (a bug, a constraint) passes through unchanged.
    """

    def __init__(self, url: str):
        self.url = url

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind, exc, tb) -> Literal[False]:
        if (exc is not None and not isinstance(exc, QueueUnavailable)
                and is_unavailable(self.url, exc)):
            raise QueueUnavailable(
                f"the task database {redact(self.url)} cannot be reached: {exc}") from exc
        return False


def configure(settings: settings_mod.Settings | None = None, migrate: bool = True,
              modules: tuple[str, ...] = ()) -> Client:
    """Bind this process to a settings file (default: HOPPER_CONFIG or settings.yaml).

    ``modules`` are task modules to load besides the settings' ``tasks.modules``
    (the daemon passes the library's)."""
    global _client
    with _client_lock:
        _client = Client(settings or settings_mod.load(), migrate, modules)
        return _client


def client() -> Client:
    """This process's client, created from the settings on first use.

    Inside a Flask app context whose config has ``HOPPER_CONFIG``, the client for
    that settings file (created once per file).
    """
    path = _app_config_path()
    if path is not None and (_client is None or path != _client.settings.path):
        return _client_for(path)
    return _client if _client is not None else configure()


def _app_config_path() -> Path | None:
    flask = sys.modules.get("flask")  # never import Flask only to ask
    if flask is None or not flask.has_app_context():
        return None
    configured = flask.current_app.config.get("HOPPER_CONFIG")
    if not configured:
        return None
    path = _resolved_config_paths.get(configured)
    if path is None:  # resolving walks the path's folders: once, not on every request
        path = _resolved_config_paths[configured] = settings_mod.config_path(configured)
    return path


def _client_for(path: Path) -> Client:
    with _client_lock:
        found = _app_clients.get(path)
        if found is None:
            found = _app_clients[path] = Client(settings_mod.load(path))
        return found


def _timestamp(value: Any) -> float:
    if isinstance(value, dt.datetime):
        return value.timestamp()
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        try:
            return dt.datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
        except ValueError:
            pass
    raise ValueError(f"run_after must be a Unix timestamp or an ISO 8601 time, got {value!r}")


def build_task(name: str, args: dict | None = None, *, queue: str | None = None,
               priority: int | None = None, run_after: Any = None, delay: float | None = None,
               unique_key: str | None = None, max_attempts: int | None = None,
               timeout: float | None = None, parent_id: int | None = None,
               tags: list[str] | None = None, meta: dict | None = None,
               depends_on: list[int] | None = None,
               concurrency_key: str | None = None, concurrency: int | None = None,
               rate_key: str | None = None) -> NewTask:
    """Validate an enqueue request against the registry; ValueError says what is wrong."""
    if not isinstance(name, str):
        raise ValueError(f"name must be a string, got {name!r}")
    spec = registry.get(name)
    args = {} if args is None else args
    if not isinstance(args, dict):
        raise ValueError(f"args must be a JSON object, got {type(args).__name__}")
    try:
        args_json = _encode_args(args)
    except (TypeError, ValueError, RecursionError) as exc:
        raise ValueError(f"args are not JSON-serializable: {exc}") from None
    if priority is not None or timeout is not None or max_attempts is not None:
        # The spec's own defaults were validated when the task was registered.
        priority = spec.priority if priority is None else priority
        timeout = spec.timeout if timeout is None else timeout
        max_attempts = spec.max_attempts if max_attempts is None else max_attempts
        registry.validate_options(priority=priority, timeout=timeout, max_attempts=max_attempts)
    else:
        priority, timeout, max_attempts = spec.priority, spec.timeout, spec.max_attempts
    queue = check_queue_name(spec.queue if queue is None else queue)
    if unique_key is not None and (not isinstance(unique_key, str) or not unique_key):
        raise ValueError(f"unique_key must be a non-empty string, got {unique_key!r}")
    if parent_id is not None and (isinstance(parent_id, bool) or not isinstance(parent_id, int)):
        raise ValueError(f"parent_id must be a task id, got {parent_id!r}")
    when = None if run_after is None else _timestamp(run_after)
    if delay is not None:
        if isinstance(delay, bool) or not isinstance(delay, (int, float)) or delay < 0:
            raise ValueError(f"delay must be a non-negative number of seconds, got {delay!r}")
        when = time.time() + delay
    new = NewTask(name=name, args=args, queue=queue, priority=priority, run_after=when,
                  max_attempts=max_attempts, timeout=timeout, unique_key=unique_key,
                  parent_id=parent_id, continuation=spec.continuation, args_json=args_json,
                  tags=check_tags(tags), meta_json=check_meta(meta),
                  depends_on=tuple(graph_plan.check_ids(depends_on)),
                  traceparent=tracing.current_traceparent())
    if (concurrency_key is not None or rate_key is not None or concurrency is not None
            or spec.concurrency_key or spec.rate_key):
        flow_fields(new, spec, concurrency_key, concurrency, rate_key)
    return new


def enqueue(name: str, args: dict | None = None, **options) -> int:
    """Enqueue one task and return its id (an existing id for a duplicate unique_key).

    ``tags`` (a list of strings such as ``user:42``) find the task again with
    :func:`list_tasks`; ``meta`` is the task's initial meta object. Raises
    :class:`QueueUnavailable` when the database cannot be reached.
    """
    _refuse_unknown(options)
    c = client()  # loads the task modules before the name is looked up
    return _submit(c, [build_task(name, args, **options)])[0][0]


def enqueue_many(requests: list[dict]) -> list[int]:
    """Enqueue several tasks in one transaction; all or nothing."""
    ids, _ = enqueue_requests(requests)
    return ids


def enqueue_requests(requests: list[dict]) -> tuple[list[int], list[bool]]:
    """Like enqueue_many, also saying which tasks were created (False: unique_key hit).

    Items may carry ``ref`` and ``depends_on`` (refs of other items, or task ids):
    the graph is checked first (InvalidDependency, a ValueError, for a cycle or an
    unknown ref or id) and inserted dependencies first, all in one transaction."""
    client()  # loads the task modules before the names are looked up
    if not any(isinstance(r, dict) and ("ref" in r or "depends_on" in r) for r in requests):
        results = submit([task_from_request(request) for request in requests])
        return [task_id for task_id, _ in results], [created for _, created in results]
    for request in requests:
        if not isinstance(request, dict):
            raise ValueError("each task must be an object with a name")
    plan = graph_plan.plan(requests)
    position: dict[int, int] = {}
    tasks: list[NewTask] = []
    for index in plan.order:
        request = {k: v for k, v in requests[index].items() if k not in ("ref", "depends_on")}
        new = task_from_request(request)
        new.depends_on = tuple(plan.external[index])
        new.after = tuple(position[dep] for dep in plan.internal[index])
        position[index] = len(tasks)
        tasks.append(new)
    results = submit(tasks)
    ordered = [results[position[index]] for index in range(len(requests))]
    return [task_id for task_id, _ in ordered], [created for _, created in ordered]


def task_from_request(request: dict) -> NewTask:
    """One enqueue request (``{name, args?, queue?, ...}``) validated into a NewTask."""
    if not isinstance(request, dict) or "name" not in request:
        raise ValueError("each task needs a name")
    if not request.keys() <= _REQUEST_KEYS:
        _refuse_unknown(request.keys() - {"name"})
    if "ref" in request:  # only the graph of enqueue_many reads it
        request = {k: v for k, v in request.items() if k != "ref"}
    return build_task(**request)


def submit(tasks: list[NewTask]) -> list[tuple[int, bool]]:
    """Insert validated tasks in one transaction; ``(id, created)`` per task."""
    return _submit(client(), tasks)


def _refuse_unknown(options) -> None:
    unknown = set(options) - _ENQUEUE_KEYS
    if unknown:
        raise ValueError(f"unknown enqueue option(s): {', '.join(sorted(unknown))}")


def _submit(c: Client, tasks: list[NewTask]) -> list[tuple[int, bool]]:
    """Insert validated tasks (the backend wakes idle workers), then hand the new
    ones to the client's engine (eager mode runs them here)."""
    # The wake-up waits for the "enqueued" events, so a log never shows "started" first.
    with c.backend.notifier().held():
        with reaching(c.settings.database):
            results = c.engine.insert(tasks)
        if logs.tasks_log.isEnabledFor(logs.EVENT_LEVELS["enqueued"]):
            for new, (task_id, created) in zip(tasks, results, strict=True):
                if created:
                    logs.task_event("enqueued", task_id, new.name, new.queue)
    c.engine.run([task_id for task_id, created in results if created])
    return results


def get_task(task_id: int) -> dict | None:
    """The task as a dict (fields as in DESIGN.md), or None."""
    c = client()
    with reaching(c.settings.database):
        return c.backend.get(task_id)


def list_tasks(*, tags: list[str] | None = None, status: str | None = None,
               name: str | None = None, queue: str | None = None, limit: int = 50,
               cursor: int | None = None) -> list[dict]:
    """Tasks newest first, filtered: ``tags`` keeps tasks that carry all of them.

    ``cursor`` is the id of the last task of the previous page.
    """
    if status is not None and status not in STATUSES:
        raise ValueError(f"status must be one of {', '.join(STATUSES)}, got {status!r}")
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise ValueError(f"limit must be a positive integer, got {limit!r}")
    if cursor is not None and (isinstance(cursor, bool) or not isinstance(cursor, int)):
        raise ValueError(f"cursor must be a task id, got {cursor!r}")
    c = client()
    with reaching(c.settings.database):
        return c.backend.list(status=status, name=name, queue=queue, limit=limit,
                              cursor=cursor, tags=list(check_tags(tags)) or None)


def wait(task_id: int, timeout: float = 30) -> dict:
    """Block until the task finishes; return it. TimeoutError after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    pause = 0.002
    while True:
        found = get_task(task_id)
        if found is None:
            raise KeyError(f"no task {task_id}")
        if found["status"] in FINISHED:
            return found
        if time.monotonic() >= deadline:
            raise TimeoutError(f"task {task_id} is still {found['status']} after {timeout}s")
        time.sleep(min(pause, max(0.0, deadline - time.monotonic())))
        pause = min(pause * 2, 0.1)


def cancel(task_id: int) -> dict:
    """Cancel a queued, waiting or running task (a running one is stopped)."""
    c = client()
    with reaching(c.settings.database):
        found = c.backend.cancel(task_id)
    logs.task_event("cancelled", task_id, found["name"], found["queue"], found["worker"],
                    found["attempts"])
    return found


def retry(task_id: int) -> dict:
    """Re-queue a failed or cancelled task."""
    c = client()
    with reaching(c.settings.database):
        found = c.backend.retry(task_id)
    logs.task_event("retried", task_id, found["name"], found["queue"], None, found["attempts"],
                    reason="retry requested")
    return found


def pause_queue(name: str) -> bool:
    """Pause a queue for every daemon on this database (its tasks stay queued);
    False if it was paused already. InvalidQueueName (a ValueError) for a bad name."""
    c = client()
    with reaching(c.settings.database):
        return c.backend.pause_queue(check_queue_name(name))


def resume_queue(name: str) -> bool:
    """Resume a paused queue and wake idle workers; False if it was not paused."""
    c = client()
    with reaching(c.settings.database):
        return c.backend.resume_queue(check_queue_name(name))


def current_task_id() -> int | None:
    """Inside a running task: its id (use it as ``parent_id`` for children)."""
    return execute.current_task_id.get()


def set_progress(done: int, total: int) -> None:
    """Inside a running task: report its own progress."""
    task_id = current_task_id()
    if task_id is None:
        raise RuntimeError("set_progress() is only available inside a running task")
    c = client()
    with reaching(c.settings.database):
        c.backend.set_progress(task_id, done, total)


def set_meta(values: dict) -> dict:
    """Inside a running task: merge ``values`` into its ``meta`` (top-level keys are
    replaced) and return the merged object. Visible to ``get_task`` at once."""
    task_id = current_task_id()
    if task_id is None:
        raise RuntimeError("set_meta() is only available inside a running task")
    check_meta(values)  # the same checks as at enqueue
    c = client()
    with reaching(c.settings.database):
        return c.backend.set_meta(task_id, values)
