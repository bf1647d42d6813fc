"""Running one claimed task and turning what happened into an Outcome."""
from __future__ import annotations

import contextvars
import json
import random
import time
import traceback

from hopper.app import registry
from hopper.app.backends.base import Claimed, Outcome

MAX_BACKOFF_S = 3600.0

current_task_id: contextvars.ContextVar[int | None] = contextvars.ContextVar(
    "current_task_id", default=None)

_loop = None  # the event loop of async tasks; asyncio is imported on first use (~30 ms)


def backoff_delay(base: float, attempts: int) -> float:
    """Exponential backoff with jitter: base * 2^(attempts-1), stretched by up to 25 %.

    The jitter only ever lengthens a gap, so gaps still grow attempt after attempt.
    """
    return min(MAX_BACKOFF_S, base * 2 ** (attempts - 1) * random.uniform(1.0, 1.25))


def _run(spec: registry.TaskSpec, args: dict):
    global _loop
    if not spec.is_async:
        return spec.fn(**args)
    if _loop is None or _loop.is_closed():
        import asyncio

        _loop = asyncio.new_event_loop()
    return _loop.run_until_complete(spec.fn(**args))


def execute(task: Claimed) -> Outcome:
    """Run a claimed task; never raises for errors inside the task."""
    started = time.time()
    token = current_task_id.set(task.id)
    try:
        spec = registry.get(task.name)
        args = json.loads(task.args)
        result = json.dumps(_run(spec, args))
        return Outcome(task.id, True, started, time.time(), result=result)
    except registry.UnknownTask as exc:
        return Outcome(task.id, False, started, time.time(), error=str(exc))
    except Exception:  # a task's own failure is data, recorded for retry
        # A message may carry undecodable file names (surrogate escapes) the
        # database cannot store as text: keep them visible as \udcXX escapes.
        error = traceback.format_exc().encode("utf-8", "backslashreplace").decode("utf-8")
        retry_at = None
        if task.attempts < task.max_attempts:
            spec = registry.get(task.name)
            retry_at = time.time() + backoff_delay(spec.backoff, task.attempts)
        return Outcome(task.id, False, started, time.time(), error=error, retry_at=retry_at)
    finally:
        current_task_id.reset(token)
