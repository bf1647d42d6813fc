"""OpenTelemetry tracing, when the ``otel`` extra is installed (the only module that
imports it).

``enqueue`` stores the W3C ``traceparent`` of the current span with the task;
each attempt then runs in a span ``hopper.run <name>`` whose parent is that
span, so a failure in a task can be followed back to the request that caused it.
Without the extra, or outside any span, nothing is stored and no span is made
beyond OpenTelemetry's own no-op ones.
"""
from __future__ import annotations

import contextlib
import os
from typing import Any, Iterator

_api: Any = None  # the loaded OpenTelemetry pieces, or False when they are not installed


def _load():
    """The OpenTelemetry API, imported on first use; None when not installed."""
    global _api
    if _api is None:
        try:
            from opentelemetry import trace
            from opentelemetry.trace import SpanKind, Status, StatusCode
            from opentelemetry.trace.propagation.tracecontext import (
                TraceContextTextMapPropagator,
            )
        except ImportError:
            _api = False
        else:
            _api = (trace, SpanKind, Status, StatusCode, TraceContextTextMapPropagator())
    return _api or None


def current_traceparent() -> str | None:
    """The W3C traceparent of the span current in this thread, or None (no extra,
    or no span being recorded)."""
    api = _load()
    if api is None:
        return None
    trace, _, _, _, propagator = api
    if not trace.get_current_span().get_span_context().is_valid:
        return None
    carrier: dict[str, str] = {}
    propagator.inject(carrier)
    return carrier.get("traceparent")


@contextlib.contextmanager
def attempt_span(task_id: int, name: str, queue: str, attempt: int,
                 traceparent: str | None) -> Iterator[Any]:
    """Run one attempt inside a span ``hopper.run <name>`` whose parent is the span
    that enqueued it (from ``traceparent``); the span is current meanwhile, so the
    children a task enqueues carry the trace on. Yields None without the extra."""
    api = _load()
    if api is None:
        yield None
        return
    trace, kind, _, _, propagator = api
    parent = propagator.extract({"traceparent": traceparent}) if traceparent else None
    tracer = trace.get_tracer("hopper")
    with tracer.start_as_current_span(
            f"hopper.run {name}", context=parent, kind=kind.CONSUMER,
            attributes={"hopper.task.id": task_id, "hopper.task.name": name,
                        "hopper.queue": queue, "hopper.attempt": attempt},
            record_exception=False, set_status_on_exception=False) as span:
        yield span


def recording() -> bool:
    """Whether an attempt is worth a span without a trace to carry on: a tracer
    provider is installed (until one is, the API makes no-op spans, and entering one
    still cost a tenth of a no-op task's time).

    Read from the API's module global, set by ``set_tracer_provider``:
    ``get_tracer_provider()`` reads the environment on every call."""
    api = _load()
    if api is None:
        return False
    trace = api[0]
    provider = getattr(trace, "_TRACER_PROVIDER", _ABSENT)
    if provider is None and not _PROVIDER_FROM_ENV:
        return False  # none set: the common case, answered without a call
    if provider is _ABSENT or provider is None:
        # An API without the global, or a provider named by the environment: ask it.
        provider = trace.get_tracer_provider()
    return not isinstance(provider, (trace.ProxyTracerProvider, trace.NoOpTracerProvider))


_ABSENT = object()
# OpenTelemetry makes the provider this variable names at its first use.
_PROVIDER_FROM_ENV = "OTEL_PYTHON_TRACER_PROVIDER" in os.environ


def record_failure(span: Any, exc: BaseException) -> None:
    """Mark an attempt's span failed, with the exception as an event."""
    api = _load()
    if api is None or span is None:
        return
    _, _, status, code, _ = api
    span.record_exception(exc)
    span.set_status(status(code.ERROR, f"{type(exc).__name__}: {exc}"))
