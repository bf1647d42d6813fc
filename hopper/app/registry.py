"""The task registry: ``@task`` records a function under a name.

Workers and enqueuers load the same modules (the built-ins, the modules their
caller names, such as the library's, plus ``tasks.modules`` from settings), so a
name means the same function in every process. The queue core registers only
its own built-ins: the library's tasks are loaded like any user module.
"""
from __future__ import annotations

import functools
import importlib
import inspect
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from hopper.app import defaults, flow

BUILTIN_MODULES = ("hopper.app.builtin_tasks",)


class UnknownTask(ValueError):
    """No task is registered under this name."""


class TaskModuleError(ImportError):
    """A module listed in ``tasks.modules`` could not be imported; one line names it."""


@dataclass(frozen=True)
class TaskSpec:
    """A registered task and its defaults."""

    name: str
    fn: Callable[..., Any]
    queue: str = "default"
    max_attempts: int = defaults.MAX_ATTEMPTS
    timeout: float | None = None
    priority: int = 0
    backoff: float = defaults.BACKOFF_BASE_S
    continuation: str | None = None
    concurrency_key: str | None = None   # a format string over the args (flow.py)
    concurrency: int | None = None       # tasks under one key that may run at once
    rate_key: str | None = None          # a format string too; its rate is in rate_limits

    @functools.cached_property
    def is_async(self) -> bool:
        # Cached: asked before every run, and inspect's check was 3 % of a
        # draining worker's time.
        return inspect.iscoroutinefunction(self.fn)


_REGISTRY: dict[str, TaskSpec] = {}


def task(fn: Callable | None = None, *, name: str | None = None, queue: str = "default",
         max_attempts: int = defaults.MAX_ATTEMPTS, timeout: float | None = None,
         priority: int = 0, backoff: float = defaults.BACKOFF_BASE_S,
         continuation: str | None = None, concurrency_key: str | None = None,
         concurrency: int | None = None, rate_key: str | None = None):
    """Register a function as a task; usable as ``@task`` or ``@task(...)``.

    ``backoff`` is the first retry delay in seconds (it doubles per attempt);
    ``continuation`` names a task enqueued once when this task's children
    have all finished. ``concurrency_key`` (``"user:{user_id}"``, filled from
    the args) lets at most ``concurrency`` (default 1) tasks with the same key
    run at once; ``rate_key`` puts the task's claims under that key's rate limit.
    """
    def register(func: Callable) -> Callable:
        spec = TaskSpec(name or func.__name__, func, queue, max_attempts, timeout, priority,
                        backoff, continuation, concurrency_key, concurrency, rate_key)
        validate_options(priority=priority, timeout=timeout, max_attempts=max_attempts)
        validate_flow(concurrency_key, concurrency, rate_key)
        _REGISTRY[spec.name] = spec
        return func

    return register(fn) if fn is not None else register


PRIORITY_RANGE = (-(2**31), 2**31 - 1)   # a 32-bit column on every engine
MAX_ATTEMPTS_LIMIT = 1000


def validate_options(priority: Any = 0, timeout: Any = None, max_attempts: Any = 1) -> None:
    """Raise ValueError for option values a task cannot run with."""
    low, high = PRIORITY_RANGE
    if isinstance(priority, bool) or not isinstance(priority, int) or not low <= priority <= high:
        raise ValueError(f"priority must be an integer from {low} to {high}, got {priority!r}")
    if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, (int, float))
                                or not 0 < timeout < float("inf")):
        raise ValueError(f"timeout must be a positive number of seconds, got {timeout!r}")
    if (isinstance(max_attempts, bool) or not isinstance(max_attempts, int)
            or not 1 <= max_attempts <= MAX_ATTEMPTS_LIMIT):
        raise ValueError(f"max_attempts must be an integer from 1 to {MAX_ATTEMPTS_LIMIT},"
                         f" got {max_attempts!r}")


def validate_flow(concurrency_key: Any, concurrency: Any, rate_key: Any) -> None:
    """Raise ValueError for flow-control options a task cannot be registered with."""
    if concurrency_key is not None:
        flow.check_template(concurrency_key)
    if concurrency is not None:
        flow.check_concurrency(concurrency)
        if concurrency_key is None:
            raise ValueError("concurrency needs a concurrency_key to count tasks under")
    if rate_key is not None:
        flow.check_template(rate_key)


def get(name: str) -> TaskSpec:
    """The spec registered under ``name``; UnknownTask if there is none."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise UnknownTask(f"unknown task name {name!r}") from None


def names() -> list[str]:
    """All registered task names."""
    return sorted(_REGISTRY)


def load_modules(extra: tuple[str, ...] | list[str] = (), root: Path | None = None) -> None:
    """Import the built-in task modules and ``extra`` (the caller's, such as the library's,
    and the user's ``tasks.modules``).

    ``root`` (the settings file's folder) goes first on ``sys.path`` (moved there if it
    is already further down), so the user's modules (and ``tasks.flask_app``) resolve
    from their project in every process that runs or enqueues tasks, whatever its
    current folder, even when the user's package is called ``app`` or ``worker`` like
    Hopper's own folders (Hopper's code is ``hopper.app``, ``hopper.worker``).
    """
    if root is not None:
        folder = str(Path(root).resolve())
        if sys.path[:1] != [folder]:
            if folder in sys.path:
                sys.path.remove(folder)
            sys.path.insert(0, folder)
    for module in BUILTIN_MODULES:
        importlib.import_module(module)
    where = f" (looked in {root} first)" if root is not None else ""
    for module in extra:
        try:
            importlib.import_module(module)
        except Exception as exc:  # any failure inside the user's module is reported as its own
            detail = " ".join(str(exc).split()) or type(exc).__name__
            raise TaskModuleError(f"tasks.modules: cannot import {module!r}{where}: "
                                  f"{type(exc).__name__}: {detail}") from exc
