"""OpenTelemetry from the web request that enqueues to the attempt that runs, across
processes: the request's span (the SDK's in-memory exporter, in this process) is
the parent of the task's ``hopper.run`` span (exported by the worker process)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from daemons import write_settings
from flask import Flask
from helpers import poll_until
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from otel_export import read_spans

from hopper.app import queue

MODULES = {"modules": ["sample_tasks", "otel_export"]}
_exporter = InMemorySpanExporter()
_provider = TracerProvider()
_provider.add_span_processor(SimpleSpanProcessor(_exporter))


@pytest.fixture
def traced(tmp_path, monkeypatch, make_daemon, client):
    """A daemon whose processes export spans to a file; a Flask app of the test's own
    whose requests run in spans recorded in memory. Returns (app, spans file)."""
    spans = tmp_path / "spans.jsonl"
    monkeypatch.setenv("HOPPER_TEST_SPANS", str(spans))
    folder = tmp_path / "daemon"
    folder.mkdir()
    make_daemon(config=write_settings(folder, database=client.settings.database,
                                      tasks=MODULES))
    _exporter.clear()
    tracer = _provider.get_tracer("users-app")
    app = Flask("users_app")

    @app.post("/orders/<action>")
    def order(action: str):
        with tracer.start_as_current_span(f"POST /orders/{action}", kind=trace.SpanKind.SERVER):
            if action == "fan-out":
                return {"ids": [queue.enqueue("fan_out", {"children": 2,
                                                          "log": str(tmp_path / "kids")})]}
            if action == "graph":
                return {"ids": queue.enqueue_many([
                    {"name": "echo", "ref": "a"},
                    {"name": "echo", "ref": "b", "depends_on": ["a"]}])}
            return {"ids": [queue.enqueue(action)]}

    return app, spans


def _run_spans(spans, task_id: int, count: int = 1) -> list[dict]:
    def found():
        mine = [s for s in read_spans(spans) if s["name"].startswith("hopper.run ")
                and s["attributes"]["hopper.task.id"] == task_id]
        return mine if len(mine) >= count else None
    return poll_until(found, timeout=30, message=lambda: f"spans: {read_spans(spans)}")


def test_the_request_span_is_the_parent_of_the_tasks_run_span(traced):
    app, spans = traced
    task_id = app.test_client().post("/orders/echo").json["ids"][0]
    (request_span,) = _exporter.get_finished_spans()
    (run,) = _run_spans(spans, task_id)
    assert run["name"] == "hopper.run echo"
    assert run["trace_id"] == f"{request_span.context.trace_id:032x}"
    assert run["parent_span_id"] == f"{request_span.context.span_id:016x}"
    assert run["attributes"] == {"hopper.task.id": task_id, "hopper.task.name": "echo",
                                 "hopper.queue": "default", "hopper.attempt": 1}
    assert run["status"] == "UNSET"


def test_a_failed_attempts_span_has_error_status_and_the_exception(traced):
    app, spans = traced
    task_id = app.test_client().post("/orders/always_fails").json["ids"][0]
    runs = _run_spans(spans, task_id, count=2)  # always_fails has two attempts
    assert [r["status"] for r in runs] == ["ERROR", "ERROR"]
    assert all(r["events"] == ["exception"] for r in runs)
    assert sorted(r["attributes"]["hopper.attempt"] for r in runs) == [1, 2]


def test_a_dependents_span_carries_the_same_trace(traced):
    app, spans = traced
    first, second = app.test_client().post("/orders/graph").json["ids"]
    (request_span,) = _exporter.get_finished_spans()
    trace_id = f"{request_span.context.trace_id:032x}"
    assert _run_spans(spans, first)[0]["trace_id"] == trace_id
    assert _run_spans(spans, second)[0]["trace_id"] == trace_id


def test_children_a_task_enqueues_run_in_its_trace_under_its_span(traced):
    app, spans = traced
    parent = app.test_client().post("/orders/fan-out").json["ids"][0]
    (parent_run,) = _run_spans(spans, parent)
    children = [t["id"] for t in queue.list_tasks(limit=10) if t["parent_id"] == parent]
    assert len(children) == 2
    for child in children:
        (run,) = _run_spans(spans, child)
        assert run["trace_id"] == parent_run["trace_id"]
        assert run["parent_span_id"] == parent_run["span_id"]


def test_outside_any_span_no_trace_context_is_stored(client):
    task_id = queue.enqueue("echo")
    assert client.backend.fetch("SELECT traceparent FROM tasks WHERE id = ?",
                                       (task_id,)) == [(None,)]


def test_without_opentelemetry_hopper_imports_none_of_it_and_stores_nothing(settings_path):
    # A process where OpenTelemetry cannot be imported, as without the otel extra.
    code = (
        "import sys\n"
        "sys.modules['opentelemetry'] = None\n"
        "import hopper\n"
        "from hopper.app import queue\n"
        "task_id = queue.enqueue('echo')\n"
        "row = queue.client().backend.fetch('SELECT traceparent FROM tasks WHERE id = ?',"
        " (task_id,))\n"
        "assert row == [(None,)], row\n"
        "print('ok')\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={**os.environ, "HOPPER_CONFIG": str(settings_path),
                               "PYTHONPATH": str(Path(__file__).parent)}, timeout=60)
    assert done.stdout.strip() == "ok", done.stderr


def test_importing_hopper_does_not_import_opentelemetry():
    code = "import sys, hopper; print('opentelemetry' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60)
    assert done.stdout.strip() == "False", done.stderr
