"""The OpenAPI 3 description of Hopper's HTTP API: the one place it is written.

Served at ``GET /api/openapi.json``; the test suite fuzzes the live server
against it, so a change to an endpoint's shape must be made here too.
"""
from __future__ import annotations

from flask import Blueprint, jsonify

from hopper.app.backends.base import MAX_TAG_LENGTH, MAX_TAGS, STATUSES
from hopper.app.defaults import QUEUE_NAME_MAX
from hopper.app.flow import MAX_CONCURRENCY, MAX_KEY_LENGTH
from hopper.app.registry import MAX_ATTEMPTS_LIMIT, PRIORITY_RANGE
from hopper.app.settings import MAX_WORKERS
from hopper.app.web.api_tasks import MAX_ENQUEUE_BATCH
from hopper.app.web.inputs import INT64_MAX, MAX_LIMIT

bp = Blueprint("openapi", __name__)

JSON = "application/json"


def _ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def _null(schema: dict) -> dict:
    return {**schema, "nullable": True}


def _json(schema: dict, description: str) -> dict:
    return {"description": description, "content": {JSON: {"schema": schema}}}


def _errors(*codes: int) -> dict:
    text = {400: "Malformed JSON, wrong types or values", 401: "Missing or wrong bearer token",
            403: "Refused: a Host not served, a state change from another origin or with a"
                 " body that is not application/json, an artifact outside data/artifacts/",
            404: "Unknown id", 409: "Not allowed in the current state",
            413: "Request body too large", 429: "Too many wrong tokens; see Retry-After",
            503: "Service unavailable"}
    # Every operation can meet the token check, the wrong-token lock-out and the web-safety rules.
    return {str(c): _json(_ref("Error"), text[c]) for c in sorted({401, 403, 429, *codes})}


ID = {"type": "integer", "minimum": 1, "maximum": INT64_MAX}
NUM, INT, STR = {"type": "number"}, {"type": "integer"}, {"type": "string"}
TASK_ID_PARAM = {"name": "id", "in": "path", "required": True, "schema": ID}
SCHEDULE_NAME_PARAM = {"name": "name", "in": "path", "required": True, "schema": STR,
                       "description": "The entry's task name"}
LIMIT = {"name": "limit", "in": "query", "schema": {**INT, "minimum": 1, "maximum": MAX_LIMIT,
                                                    "default": 50}}
CURSOR = {"name": "cursor", "in": "query", "schema": ID,
          "description": "The next_cursor of the previous page"}


def _query(name: str, schema: dict) -> dict:
    return {"name": name, "in": "query", "schema": schema}


# Printable text: the API refuses control characters in tags.
TAG = {"type": "string", "minLength": 1, "maxLength": MAX_TAG_LENGTH,
       "pattern": "^[^\\x00-\\x1f\\x7f]+$"}
TAG_FILTER = {"name": "tag", "in": "query", "style": "form", "explode": True,
              "schema": {"type": "array", "items": TAG, "maxItems": MAX_TAGS},
              "description": "Repeatable: only tasks that carry every tag named"}


def _obj(properties: dict, required: list[str] | None = None, **extra) -> dict:
    schema = {"type": "object", "properties": properties, **extra}
    if required:
        schema["required"] = required
    return schema


SCHEMAS = {
    "Error": _obj({"error": STR, "detail": {"description": "More about the error, any JSON"}},
                  ["error"]),
    "Task": _obj({
        "id": ID, "queue": STR, "name": STR, "args": {"type": "object"},
        "status": {"type": "string", "enum": list(STATUSES)}, "priority": INT,
        "run_after": NUM, "attempts": INT, "max_attempts": INT, "timeout": _null(NUM),
        "unique_key": _null(STR), "parent_id": _null(ID), "continuation": _null(STR),
        "progress": _obj({"done": _null(INT), "total": _null(INT)}, ["done", "total"]),
        "result": {"description": "The task's return value, any JSON", "nullable": True},
        "error": _null(STR), "worker": _null(STR), "created_at": NUM,
        "started_at": _null(NUM), "finished_at": _null(NUM),
        "tags": {"type": "array", "items": STR},
        "meta": {"type": "object", "description": "What the task reported with set_meta"},
        "depends_on": {"type": "array", "items": ID,
                       "description": "The tasks it waits for (status blocked until they succeed)"},
        "children": {"type": "object", "additionalProperties": INT,
                     "description": "Counts of child tasks by status (single task only)"},
        "history": {"type": "array", "items": _ref("Attempt"),
                    "description": "Every attempt, oldest first (single task only)"},
        "concurrency_key": _null(STR), "concurrency_limit": _null(INT), "rate_key": _null(STR),
        "waiting_for": _null(_obj({
            "reason": {"type": "string", "enum": ["concurrency", "rate"]}, "key": STR,
            "limit": INT, "running": INT, "rate": STR, "next_at": NUM}, ["reason", "key"],
            description="Why a queued task is not running yet (single task only)")),
    }, ["id", "queue", "name", "args", "status", "priority", "run_after", "attempts",
        "max_attempts", "progress", "created_at"]),
    "Attempt": _obj({
        "attempt": INT, "worker": _null(STR), "started_at": _null(NUM),
        "finished_at": _null(NUM), "error": _null(STR),
        "kind": _null({"type": "string", "enum": ["error", "timeout", "lost", "unstorable"],
                       "description": "How a failed attempt ended; null if it did not fail"}),
    }, ["attempt", "worker", "started_at", "finished_at", "error"]),
    "Schedule": _obj({
        "name": STR, "cron": STR, "every": {**NUM, "description": "Seconds"},
        "args": {"type": "object"}, "paused": {"type": "boolean"},
        "last_slot": _null(NUM), "last_task_id": _null(ID), "next_slot": NUM,
    }, ["name", "args", "paused", "last_slot", "last_task_id", "next_slot"],
        description="A schedule entry: exactly one of cron and every"),
    "ScheduleList": _obj({"schedules": {"type": "array", "items": _ref("Schedule")}},
                         ["schedules"]),
    "ScheduleRun": _obj({"id": ID, "schedule": _ref("Schedule")}, ["id", "schedule"]),
    "EnqueueRequest": _obj({
        "name": {**STR, "minLength": 1, "maxLength": 200, "description": "A registered task name"},
        "args": _null({"type": "object"}),
        "queue": _null({**STR, "minLength": 1, "maxLength": 100}),
        "priority": _null({**INT, "minimum": PRIORITY_RANGE[0], "maximum": PRIORITY_RANGE[1]}),
        "run_after": _null({"anyOf": [{**NUM, "minimum": 0, "maximum": 1e11},
                                      {**STR, "format": "date-time"}],
                            "description": "Unix time or ISO 8601"}),
        "delay": _null({**NUM, "minimum": 0, "maximum": 1e9}),
        "unique_key": _null({**STR, "minLength": 1, "maxLength": 500}),
        "max_attempts": _null({**INT, "minimum": 1, "maximum": MAX_ATTEMPTS_LIMIT}),
        "timeout": _null({**NUM, "exclusiveMinimum": True, "minimum": 0, "maximum": 1e7}),
        "parent_id": _null(ID),
        "tags": _null({"type": "array", "items": TAG, "maxItems": MAX_TAGS,
                       "description": "e.g. user:42; filter with GET /api/tasks?tag="}),
        "meta": _null({"type": "object", "description": "The task's initial meta object"}),
        "depends_on": _null({"type": "array", "maxItems": 1000,
                             "items": {"anyOf": [ID, {**STR, "minLength": 1}]},
                             "description": "Task ids (or, in a batch, refs of other items)"
                                            " that must succeed first; the task is blocked"
                                            " until then"}),
        "ref": _null({**STR, "minLength": 1, "maxLength": 200,
                      "description": "Batch only: a name other items' depends_on use"}),
        "concurrency_key": _null({**STR, "minLength": 1, "maxLength": MAX_KEY_LENGTH,
                                  "description": "At most `concurrency` tasks with this key"
                                                 " run at once, across every daemon"}),
        "concurrency": _null({**INT, "minimum": 1, "maximum": MAX_CONCURRENCY,
                              "description": "The key's limit (default 1)"}),
        "rate_key": _null({**STR, "minLength": 1, "maxLength": MAX_KEY_LENGTH,
                           "description": "Claims obey this key's rate limit"}),
    }, ["name"], additionalProperties=False),
    "Workflow": _obj({
        "nodes": {"type": "array", "items": _obj({"id": ID, "name": STR, "status": {
            "type": "string", "enum": list(STATUSES)}}, ["id", "name", "status"])},
        "edges": {"type": "array", "items": _obj({"from": ID, "to": ID, "kind": {
            "type": "string", "enum": ["depends_on", "child", "continuation"]}},
            ["from", "to", "kind"])},
        "truncated": {"type": "boolean", "description": "More than 10,000 tasks: not all shown"},
    }, ["nodes", "edges", "truncated"]),
    "Limits": _obj({
        "concurrency": {"type": "array", "items": _obj({
            "key": STR, "limit": _null(INT), "running": INT, "queued": INT},
            ["key", "limit", "running", "queued"])},
        "rates": {"type": "array", "items": _obj({
            "key": STR, "rate": STR, "amount": INT, "period_s": NUM,
            "used": {**INT, "description": "Claims in the current period"},
            "period_start": NUM, "next_at": NUM, "queued": INT,
            "source": {"type": "string", "enum": ["settings", "api"]}},
            ["key", "rate", "used"])},
    }, ["concurrency", "rates"]),
    "RateLimitPut": _obj({"rate": _null({**STR, "pattern": "^[0-9]+/[smh]$",
                                          "description": "N/s, N/m or N/h; null removes"})},
                         ["rate"], additionalProperties=False),
    "RateLimitState": _obj({"key": STR, "rate": _null(STR), "changed": {"type": "boolean"}},
                           ["key", "rate", "changed"]),
    "TaskList": _obj({"tasks": {"type": "array", "items": _ref("Task")},
                      "next_cursor": _null(ID)}, ["tasks", "next_cursor"]),
    "BatchResult": _obj({"ids": {"type": "array", "items": ID},
                         "created": {"type": "array", "items": {"type": "boolean"}}},
                        ["ids", "created"]),
    "Queue": _obj({
        "counts": {"type": "object", "additionalProperties": INT,
                   "description": "Tasks in this queue by status"},
        "running": INT,
        "concurrency": _null({**INT, "minimum": 0,
                              "description": "This daemon's limit (null: every worker)"}),
        "paused": {"type": "boolean"}, "paused_at": _null(NUM),
        "throughput": _obj({
            "succeeded_per_minute": NUM, "failed_per_minute": NUM,
            "minutes": {"type": "array", "items": _obj(
                {"minute": INT, "succeeded": INT, "failed": INT},
                ["minute", "succeeded", "failed"])}},
            ["succeeded_per_minute", "failed_per_minute", "minutes"]),
    }, ["counts", "running", "concurrency", "paused", "paused_at", "throughput"]),
    "Queues": _obj({
        "queues": {"type": "object", "additionalProperties": _ref("Queue")},
        "window_minutes": INT}, ["queues", "window_minutes"]),
    "QueueState": _obj({"name": STR, "paused": {"type": "boolean"},
                        "changed": {"type": "boolean",
                                    "description": "False when it already was in that state"}},
                       ["name", "paused", "changed"]),
    "BulkRequest": _obj({
        "action": {"type": "string", "enum": ["retry", "cancel", "delete"]},
        "ids": {"type": "array", "minItems": 1, "maxItems": 10000, "items": ID},
        "filter": _obj({"status": {"type": "string", "enum": list(STATUSES)},
                        "name": {**STR, "minLength": 1, "maxLength": 500},
                        "queue": {**STR, "minLength": 1, "maxLength": 500},
                        "q": {**STR, "minLength": 1, "maxLength": 500}},
                       minProperties=1, additionalProperties=False),
        "dry_run": {"type": "boolean", "description": "Only count what would be changed"},
    }, ["action"], additionalProperties=False,
        description="Either ids or filter. retry: failed or cancelled tasks; cancel: queued, "
                    "running or waiting ones; delete: finished ones only"),
    "BulkResult": _obj({"matched": INT, "changed": INT, "limit": INT}, ["matched", "changed"]),
    "Throughput": _obj({
        "minutes": {"type": "array", "items": _obj({
            "minute": INT, "queue": STR, "succeeded": INT, "failed": INT, "picked": INT,
            "pickup_ms": _null(NUM)}, ["minute", "queue", "succeeded", "failed", "picked"])},
        "window_minutes": INT, "now": NUM}, ["minutes", "window_minutes"]),
    "Worker": _obj({"id": STR, "pid": INT, "state": STR, "task_id": _null(INT),
                    "cpu_percent": _null(NUM), "rss_bytes": _null(INT), "started_at": NUM},
                   ["id", "pid", "state", "task_id", "cpu_percent", "rss_bytes", "started_at"]),
    "Settings": _obj({
        "path": STR, "database": STR, "durability": {"type": "string", "enum": ["full", "normal"]},
        "workers": INT, "max_workers": INT,
        "server": _obj({"bind": STR, "threads": INT,
                        "allowed_hosts": {"type": "array", "items": STR}}),
        "auth": _obj({"token_set": {"type": "boolean"}}),
        "library": {"type": "object"}, "retention": {"type": "object"},
        "tasks": {"type": "object"}, "schedules": {"type": "array", "items": {"type": "object"}},
        "queues": {"type": "object", "additionalProperties": {"type": "object"}},
    }, ["path", "database", "durability", "workers", "max_workers", "server", "auth"]),
    "SettingsView": _obj({
        "settings": _ref("Settings"),
        "error": _null(_obj({"error": STR, "at": _null(NUM)}, ["error"],
                            description="The last live-reload error")),
        "flask_app_error": _null(_obj(
            {"app": STR, "error": STR, "traceback": STR, "at": NUM}, ["app", "error"],
            description="Why the workers could not build tasks.flask_app (null: they could)")),
        "watch": {"type": "array", "description": "Watched folders as their hosts publish them",
                  "items": _obj({"path": STR, "task": STR, "state": {
                      "type": "string", "enum": ["starting", "watching", "polling", "error"]},
                      "error": _null(STR), "host": STR,
                      "last_hour": _obj({"seen": INT, "started": INT, "ignored": INT})},
                      ["path", "task", "state", "error"])},
    }, ["settings", "error"]),
    "SettingsPatch": _obj({
        "workers": {**INT, "minimum": 1, "maximum": MAX_WORKERS},
        "queues": {"type": "object", "minProperties": 1, "additionalProperties": _obj(
            {"concurrency": {**INT, "minimum": 0, "maximum": MAX_WORKERS}}, ["concurrency"],
            additionalProperties=False),
            "description": "queues.NAME.concurrency for this daemon's pool (0: never claim)"},
    }, minProperties=1, additionalProperties=False),
    "SettingsWritten": _obj({"written": {"type": "object"}, "path": STR,
                             "comments_preserved": {"type": "boolean"},
                             "settings": _ref("Settings")},
                            ["written", "path", "comments_preserved", "settings"]),
    "LibraryItem": _obj({
        "id": ID, "path": _null(STR), "sha256": _null(STR), "mime": _null(STR),
        "size": _null(INT), "taken_at": _null({"anyOf": [NUM, STR]}), "kind": _null(STR),
        "source_name": _null(STR), "width": _null(INT), "height": _null(INT),
        "camera": _null(STR),
        "thumbnail": {"type": "string", "enum": ["pending", "ready", "none"]},
        "thumbnail_reason": _null({**STR, "description": "Why thumbnail is none"}),
        "label": {**STR, "description": "Short type name (PDF, Word, MP4...)"},
        "previewable": {"type": "boolean", "description": "A visual kind (image, video,"
                        " PDF): with thumbnail none, it could not be decoded"},
        "latitude": _null(NUM), "longitude": _null(NUM),
        "duration": _null({**NUM, "description": "Seconds (videos)"}),
        "pages": _null({**INT, "description": "Page count (PDFs)"}),
        "codec": _null({**STR, "description": "Video codec"}),
        "duplicates": {"type": "array", "items": {"type": "object"}},
    }, ["id"], description="An indexed file (further fields may be present)"),
    "LibraryTimeline": _obj({
        "total": INT,
        "years": {"type": "array", "items": _obj({
            "year": INT, "count": INT,
            "months": {"type": "array", "items": _obj({"month": INT, "count": INT},
                                                      ["month", "count"])}},
            ["year", "count", "months"])}}, ["total", "years"]),
    "LibraryList": _obj({"items": {"type": "array", "items": _ref("LibraryItem")},
                         "next_cursor": _null(ID)}, ["items", "next_cursor"]),
    "Health": _obj({"status": STR, "db": STR, "pool": _null(_obj(
        {"status": STR, "workers": INT}))}, ["status", "db"]),
}


def _op(summary: str, responses: dict, params: list | None = None, body: str | None = None,
        **extra) -> dict:
    op = {"summary": summary, "operationId": extra.pop("operation_id"), "responses": responses,
          **extra}
    if params:
        op["parameters"] = params
    if body:
        op["requestBody"] = {"required": True, "content": {JSON: {"schema": _ref(body)}}}
    return op


PATHS = {
    "/api/tasks": {
        "post": _op("Enqueue a task", {
            "201": _json(_ref("Task"), "Created"),
            "200": _json(_ref("Task"), "An unfinished task with this unique_key already exists"),
            **_errors(400, 413)}, body="EnqueueRequest", operation_id="enqueueTask"),
        "get": _op("List tasks, newest first", {"200": _json(_ref("TaskList"), "A page"),
                                                **_errors(400)},
                   [_query("status", {"type": "string", "enum": list(STATUSES)}),
                    _query("name", STR), _query("queue", STR), _query("parent_id", ID),
                    {**_query("q", STR), "description": "Text in the name, args or error"},
                    TAG_FILTER, LIMIT, CURSOR], operation_id="listTasks"),
    },
    "/api/tasks/batch": {"post": {
        "summary": "Enqueue several tasks in one transaction", "operationId": "enqueueBatch",
        "requestBody": {"required": True, "content": {JSON: {"schema": {
            "type": "array", "minItems": 1, "maxItems": MAX_ENQUEUE_BATCH,
            "items": _ref("EnqueueRequest")}}}},
        "responses": {"201": _json(_ref("BatchResult"), "Created"), **_errors(400, 413)}}},
    "/api/tasks/bulk": {"post": _op(
        "Retry, cancel or delete the given tasks, or up to 10,000 matching a filter",
        {"200": _json(_ref("BulkResult"), "Done (or counted, with dry_run)"), **_errors(400, 413)},
        body="BulkRequest", operation_id="bulkTasks")},
    "/api/throughput": {"get": _op(
        "Per minute and queue: tasks succeeded, failed, picked up, mean pickup latency",
        {"200": _json(_ref("Throughput"), "Per-minute rows"), **_errors(400)},
        [_query("minutes", {**INT, "minimum": 1, "maximum": 1440, "default": 60})],
        operation_id="getThroughput")},
    "/api/tasks/{id}": {"get": _op(
        "One task with progress and children counts",
        {"200": _json(_ref("Task"), "The task"), **_errors(400, 404)}, [TASK_ID_PARAM],
        operation_id="getTask")},
    "/api/tasks/{id}/cancel": {"post": _op(
        "Cancel a queued or running task", {"200": _json(_ref("Task"), "Cancelled"),
                                            **_errors(400, 404, 409)},
        [TASK_ID_PARAM], operation_id="cancelTask")},
    "/api/tasks/{id}/retry": {"post": _op(
        "Re-queue a failed or cancelled task", {"200": _json(_ref("Task"), "Re-queued"),
                                                **_errors(400, 404, 409)},
        [TASK_ID_PARAM], operation_id="retryTask")},
    "/api/tasks/{id}/workflow": {"get": _op(
        "The graph the task belongs to: dependencies, children, continuations (at most 10,000)",
        {"200": _json(_ref("Workflow"), "The graph"), **_errors(400, 404)}, [TASK_ID_PARAM],
        operation_id="getWorkflow")},
    "/api/tasks/{id}/artifact": {"get": _op(
        "Download the file a finished task produced",
        {"200": {"description": "The file", "content": {"application/octet-stream": {
            "schema": {"type": "string", "format": "binary"}}}}, **_errors(400, 403, 404, 409)},
        [TASK_ID_PARAM], operation_id="getArtifact")},
    "/api/schedules": {"get": _op("Schedule entries with their last and next slots", {
        "200": _json(_ref("ScheduleList"), "Entries"), **_errors()},
        operation_id="listSchedules")},
    "/api/schedules/{name}/run": {"post": _op(
        "Enqueue a schedule entry now", {"201": _json(_ref("ScheduleRun"), "Enqueued"),
                                         **_errors(400, 404)},
        [SCHEDULE_NAME_PARAM], operation_id="runSchedule")},
    "/api/schedules/{name}/pause": {"post": _op(
        "Pause a schedule entry for every daemon", {"200": _json(_ref("Schedule"), "Paused"),
                                                    **_errors(400, 404)},
        [SCHEDULE_NAME_PARAM], operation_id="pauseSchedule")},
    "/api/schedules/{name}/resume": {"post": _op(
        "Resume a schedule entry", {"200": _json(_ref("Schedule"), "Resumed"),
                                    **_errors(400, 404)},
        [SCHEDULE_NAME_PARAM], operation_id="resumeSchedule")},
    "/api/queues": {"get": _op(
        "Per queue: counts by status, running, concurrency here, paused, throughput per minute",
        {"200": _json(_ref("Queues"), "Queues"), **_errors()}, operation_id="getQueues")},
    "/api/queues/{name}/{action}": {"post": _op(
        "Pause or resume a queue for every daemon on this database",
        {"200": _json(_ref("QueueState"), "The queue's state"), **_errors(400)},
        [{"name": "name", "in": "path", "required": True,
          "schema": {**STR, "minLength": 1, "maxLength": QUEUE_NAME_MAX}},
         {"name": "action", "in": "path", "required": True,
          "schema": {"type": "string", "enum": ["pause", "resume"]}}],
        operation_id="pauseOrResumeQueue")},
    "/api/limits": {"get": _op(
        "Concurrency keys with tasks queued or running, and every rate limit",
        {"200": _json(_ref("Limits"), "Limits"), **_errors()}, operation_id="getLimits")},
    "/api/rate-limits/{key}": {"put": _op(
        "Set (or with null remove) a rate limit for every daemon on this database",
        {"200": _json(_ref("RateLimitState"), "The key's rate"), **_errors(400, 413)},
        [{"name": "key", "in": "path", "required": True,
          "schema": {**STR, "minLength": 1, "maxLength": MAX_KEY_LENGTH}}],
        body="RateLimitPut", operation_id="putRateLimit")},
    "/api/workers": {"get": _op("Live worker processes", {
        "200": _json({"type": "array", "items": _ref("Worker")}, "Workers"), **_errors()},
        operation_id="getWorkers")},
    "/api/settings": {
        "get": _op("Settings in force and the last live-reload error",
                   {"200": _json(_ref("SettingsView"), "Settings"), **_errors()},
                   operation_id="getSettings"),
        "patch": _op("Change live settings; written to settings.yaml atomically",
                     {"200": _json(_ref("SettingsWritten"), "Written"),
                      **_errors(400, 409, 413)}, body="SettingsPatch",
                     operation_id="patchSettings"),
    },
    "/api/library": {"get": _op(
        "Search indexed library items, newest capture first",
        {"200": _json(_ref("LibraryList"), "A page"), **_errors(400)},
        [_query("q", STR), _query("kind", STR),
         {**_query("taken_from", STR), "description": "YYYY, YYYY-MM, YYYY-MM-DD or "
                                                       "YYYY-MM-DDTHH:MM[:SS], inclusive"},
         {**_query("taken_to", STR), "description": "Same forms; the whole period is included"},
         LIMIT, CURSOR], operation_id="searchLibrary")},
    "/api/library/timeline": {"get": _op(
        "Item counts per year and month, newest first",
        {"200": _json(_ref("LibraryTimeline"), "Counts"), **_errors(400)},
        [_query("kind", STR)], operation_id="libraryTimeline")},
    "/api/library/{id}": {"get": _op(
        "One library item", {"200": _json(_ref("LibraryItem"), "The item"),
                             **_errors(400, 404)},
        [{**TASK_ID_PARAM, "description": "Library item id"}], operation_id="getLibraryItem")},
    "/api/library/{id}/thumbnail": {"get": _op(
        "The item's thumbnail (images)",
        {"200": {"description": "The thumbnail", "content": {
            m: {"schema": {"type": "string", "format": "binary"}}
            for m in ("image/webp", "image/jpeg")}}, **_errors(400, 404)},
        [{**TASK_ID_PARAM, "description": "Library item id"}],
        operation_id="getLibraryThumbnail")},
    "/api/library/{id}/preview": {"get": _op(
        "The item's large preview (1,600 px; images, video frames, PDF first pages)",
        {"200": {"description": "The preview", "content": {
            m: {"schema": {"type": "string", "format": "binary"}}
            for m in ("image/webp", "image/jpeg")}}, **_errors(400, 404)},
        [{**TASK_ID_PARAM, "description": "Library item id"}],
        operation_id="getLibraryPreview")},
    "/api/library/{id}/file": {"get": _op(
        "The original file under its name; answers Range requests",
        {"200": {"description": "The file", "content": {"application/octet-stream": {
            "schema": {"type": "string", "format": "binary"}}}},
         "206": {"description": "The requested byte range", "content": {
             "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}},
         "416": {"description": "The range lies beyond the end of the file"},
         **_errors(400, 404)},
        [{**TASK_ID_PARAM, "description": "Library item id"},
         {**_query("inline", STR), "description": "1: shown in the browser, not downloaded"}],
        operation_id="getLibraryFile")},
    "/api/openapi.json": {"get": _op("This document", {
        "200": _json({"type": "object"}, "OpenAPI 3 document"), **_errors()},
        operation_id="getOpenapi")},
    "/healthz": {"get": _op("Database and pool health, no auth", {
        "200": _json(_ref("Health"), "Healthy"), "503": _json(_ref("Health"), "Unhealthy")},
        security=[], operation_id="health")},
    "/metrics": {"get": _op("Prometheus metrics", {
        "200": {"description": "Prometheus text format",
                "content": {"text/plain": {"schema": STR}}}, **_errors()},
        operation_id="metrics")},
}

DOCUMENT = {
    "openapi": "3.0.3",
    "info": {"title": "Hopper", "version": "1",
             "description": "Background jobs: tasks, queues, workers, settings, library. "
                            "Errors are {\"error\", \"detail\"} with a 4xx status."},
    "paths": PATHS,
    "components": {"schemas": SCHEMAS,
                   "securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer"}}},
    "security": [{"bearerAuth": []}],
}


@bp.get("/api/openapi.json")
def openapi():
    """The OpenAPI document."""
    return jsonify(DOCUMENT)
