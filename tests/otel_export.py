"""Test-only: OpenTelemetry set up in every Hopper process that loads this task module
(``tasks.modules``), writing each finished span as a JSON line to the file named
by ``HOPPER_TEST_SPANS`` so a test in another process can read them."""
from __future__ import annotations

import json
import os
import threading

from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult

_lock = threading.Lock()


class JsonLinesExporter(SpanExporter):
    """Appends spans to a file, one JSON object per line."""

    def __init__(self, path: str):
        self.path = path

    def export(self, spans) -> SpanExportResult:
        lines = []
        for span in spans:
            context, parent = span.get_span_context(), span.parent
            lines.append(json.dumps({
                "name": span.name, "trace_id": f"{context.trace_id:032x}",
                "span_id": f"{context.span_id:016x}",
                "parent_span_id": f"{parent.span_id:016x}" if parent else None,
                "status": span.status.status_code.name,
                "attributes": dict(span.attributes or {}),
                "events": [event.name for event in span.events], "pid": os.getpid()}))
        with _lock, open(self.path, "a") as f:
            f.write("".join(line + "\n" for line in lines))
        return SpanExportResult.SUCCESS


def read_spans(path) -> list[dict]:
    """Every span written so far."""
    if not os.path.exists(path):
        return []
    return [json.loads(line) for line in open(path).read().splitlines() if line]


if os.environ.get("HOPPER_TEST_SPANS"):
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(JsonLinesExporter(
        os.environ["HOPPER_TEST_SPANS"])))
    trace.set_tracer_provider(provider)
