"""Running one claimed task and turning what happened into an Outcome.

Shared by the worker loop and eager mode; it knows nothing about processes.
"""
from __future__ import annotations

import contextvars
import json
import time
import traceback

from hopper.app import defaults, logs, registry, tracing
from hopper.app.backends import retries
from hopper.app.backends.base import ATTEMPT_ERROR, Claimed, Outcome

current_task_id: contextvars.ContextVar[int | None] = contextvars.ContextVar(
    "current_task_id", default=None)

_loop = None  # the event loop of async tasks; asyncio is imported on first use (~30 ms)


def backoff_for(name: str) -> float:
    """The first retry delay of a task name (the default for an unknown name)."""
    try:
        return registry.get(name).backoff
    except registry.UnknownTask:
        return defaults.BACKOFF_BASE_S


def retry_at_for(name: str, attempts: int, max_attempts: int,
                 kind: str = ATTEMPT_ERROR) -> float | None:
    """When a failed attempt of task ``name`` may run again; None when the task fails
    for good (the decision is ``retries.retry_at``'s, with the task's own backoff)."""
    return retries.retry_at(attempts, max_attempts, kind, backoff_for(name))


def _run(spec: registry.TaskSpec, args: dict):
    global _loop
    if not spec.is_async:
        return spec.fn(**args)
    if _loop is None or _loop.is_closed():
        import asyncio

        _loop = asyncio.new_event_loop()
    return _loop.run_until_complete(spec.fn(**args))


def execute(task: Claimed) -> Outcome:
    """Run a claimed task; never raises for errors inside the task. With the
    ``otel`` extra, and a trace to carry on or a tracer provider installed, the
    attempt runs in its own span (see ``tracing``)."""
    if task.traceparent is None and not tracing.recording():
        return _execute(task, None)
    with tracing.attempt_span(task.id, task.name, task.queue, task.attempts,
                              task.traceparent) as span:
        return _execute(task, span)


def _execute(task: Claimed, span) -> Outcome:
    started = time.time()
    token = current_task_id.set(task.id)
    try:
        spec = registry.get(task.name)
        args = json.loads(task.args)
        result = json.dumps(_run(spec, args))
        return Outcome(task.id, True, started, time.time(), result=result,
                       parent_id=task.parent_id, attempt=task.attempts)
    except registry.UnknownTask as exc:
        tracing.record_failure(span, exc)
        return Outcome(task.id, False, started, time.time(), error=str(exc),
                       parent_id=task.parent_id, kind=ATTEMPT_ERROR, attempt=task.attempts)
    except Exception as exc:  # a task's own failure is data, recorded for retry
        tracing.record_failure(span, exc)
        # A message may carry undecodable file names (surrogate escapes) the
        # database cannot store as text: keep them visible as \udcXX escapes.
        error = traceback.format_exc().encode("utf-8", "backslashreplace").decode("utf-8")
        return Outcome(task.id, False, started, time.time(), error=error,
                       retry_at=retry_at_for(task.name, task.attempts, task.max_attempts),
                       parent_id=task.parent_id, kind=ATTEMPT_ERROR, attempt=task.attempts)
    finally:
        current_task_id.reset(token)


def log_outcome(task: Claimed, outcome: Outcome, worker_id: str) -> None:
    """The succeeded, retried or failed event of one attempt."""
    if outcome.ok:
        event = "succeeded"
    else:
        event = "retried" if outcome.retry_at is not None else "failed"
    logs.task_event(event, task.id, task.name, task.queue, worker_id, task.attempts,
                    outcome.finished_at - outcome.started_at)
