"""``/api/tasks``: enqueue (one or a batch), list, inspect, cancel, retry, artifacts."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from flask import Blueprint, current_app, jsonify, request, send_file

from hopper.app import graph_plan, queue, registry, task_fields
from hopper.app.backends.base import (
    FINISHED,
    MAX_TAGS,
    STATUSES,
    InvalidDependency,
    NewTask,
    TaskConflict,
    new_task_dict,
)
from hopper.app.flow import MAX_CONCURRENCY, MAX_KEY_LENGTH
from hopper.app.web import inputs
from hopper.app.web.errors import ApiError, bad_request, conflict, not_found
from hopper.app.web.group_commit import GroupCommit

bp = Blueprint("api_tasks", __name__)

MAX_ENQUEUE_BATCH = 1000
ENQUEUE_FIELDS = ("name", "args", "queue", "priority", "run_after", "delay", "unique_key",
                  "max_attempts", "timeout", "parent_id", "tags", "meta", "depends_on", "ref",
                  "concurrency_key", "concurrency", "rate_key")


def _backend():
    return current_app.extensions["hopper"].backend


def enqueue_request(body) -> dict:
    """Check one enqueue object's JSON types and ranges; the registry checks the rest."""
    if not isinstance(body, dict):
        raise bad_request("invalid task", "each task must be a JSON object")
    unknown = sorted(set(body) - set(ENQUEUE_FIELDS))
    if unknown:
        raise bad_request("unknown field", f"unknown field(s): {', '.join(unknown)}")
    if body.get("name") is None:
        raise bad_request("invalid name", "name is required")
    request_: dict[str, Any] = {"name": inputs.field_text(body, "name")}
    try:
        registry.get(request_["name"])
    except registry.UnknownTask as exc:
        raise bad_request("unknown task", str(exc)) from None
    args = body.get("args")
    if args is not None and not isinstance(args, dict):
        raise bad_request("invalid args", "args must be a JSON object")
    request_["args"] = args
    try:
        request_["tags"] = list(task_fields.check_tags(body.get("tags")))
    except ValueError as exc:
        raise bad_request("invalid tags", str(exc)) from None
    meta = body.get("meta")
    try:
        task_fields.check_meta(meta)
    except ValueError as exc:
        raise bad_request("invalid meta", str(exc)) from None
    request_["meta"] = meta
    checks = {
        "queue": lambda: inputs.field_text(body, "queue", 100),
        "unique_key": lambda: inputs.field_text(body, "unique_key", 500),
        "priority": lambda: inputs.field_int(body, "priority", *registry.PRIORITY_RANGE),
        "max_attempts": lambda: inputs.field_int(body, "max_attempts", 1,
                                                 registry.MAX_ATTEMPTS_LIMIT),
        "parent_id": lambda: inputs.field_int(body, "parent_id", 1, inputs.INT64_MAX),
        "timeout": lambda: inputs.field_number(body, "timeout", 0, 1e7, exclusive_low=True),
        "delay": lambda: inputs.field_number(body, "delay", 0, 1e9),
        "concurrency_key": lambda: inputs.field_text(body, "concurrency_key", MAX_KEY_LENGTH),
        "concurrency": lambda: inputs.field_int(body, "concurrency", 1, MAX_CONCURRENCY),
        "rate_key": lambda: inputs.field_text(body, "rate_key", MAX_KEY_LENGTH),
    }
    for key, check in checks.items():
        value = check()
        if value is not None:
            request_[key] = value
    _dependency_fields(body, request_)
    run_after = body.get("run_after")
    if isinstance(run_after, str):
        request_["run_after"] = inputs.check_text(run_after, "run_after")
    elif run_after is not None:
        request_["run_after"] = inputs.field_number(body, "run_after", 0, 1e11)
    return request_


def _dependency_fields(body: dict, request_: dict) -> None:
    """``ref`` (a name other items of a batch use) and ``depends_on`` (refs or ids):
    their shapes here; the graph itself (cycles, unknown refs and ids) when enqueued."""
    if body.get("ref") is not None:
        request_["ref"] = inputs.field_text(body, "ref", graph_plan.MAX_REF_LENGTH)
    depends_on = body.get("depends_on")
    if depends_on is None:
        return
    if not isinstance(depends_on, list) or len(depends_on) > MAX_ENQUEUE_BATCH:
        raise bad_request("invalid depends_on",
                          f"depends_on must be a list of at most {MAX_ENQUEUE_BATCH}"
                          " refs or task ids")
    for value in depends_on:
        if isinstance(value, str):
            inputs.check_text(value, "depends_on")
        elif isinstance(value, bool) or not isinstance(value, int) or not (
                1 <= value <= inputs.INT64_MAX):
            raise bad_request("invalid depends_on",
                              f"depends_on holds refs (strings) or task ids, got {value!r}")
    request_["depends_on"] = depends_on


def _check_parents(requests_: list[dict]) -> None:
    """400 for a ``parent_id`` that names no task."""
    backend = _backend()
    for parent in {r["parent_id"] for r in requests_ if "parent_id" in r}:
        if backend.get(parent) is None:
            raise bad_request("unknown parent_id", f"no task {parent}")


def _commit_group(requests_: list[dict]) -> tuple[list[int], list[bool]]:
    try:
        return queue.enqueue_requests(requests_)
    except InvalidDependency as exc:  # a cycle, an unknown ref or task id: nothing stored
        raise bad_request("invalid depends_on", str(exc)) from None
    except ValueError as exc:  # unknown task name or an option the registry refuses
        raise bad_request("invalid task", str(exc)) from None


def _insert(tasks: list[NewTask]) -> tuple[list[int], list[bool]]:
    results = queue.submit(tasks)
    return [task_id for task_id, _ in results], [created for _, created in results]


# Requests are validated into NewTasks before they join a group, so a group
# holds only tasks the registry accepted.
_group_commit = GroupCommit(_insert)


@bp.post("/api/tasks")
def create_task():
    """Enqueue one task: 201 with the new task, 200 with the existing one for a
    duplicate ``unique_key``."""
    request_ = enqueue_request(inputs.json_body())
    if "ref" in request_:
        raise bad_request("invalid ref", "ref names an item of a batch (POST /api/tasks/batch)")
    _check_parents([request_])
    try:
        task = queue.task_from_request(request_)
    except InvalidDependency as exc:
        raise bad_request("invalid depends_on", str(exc)) from None
    except ValueError as exc:  # an option the registry refuses
        raise bad_request("invalid task", str(exc)) from None
    if task.depends_on:
        # Its own transaction: an unknown id must refuse this task alone, not a group.
        try:
            (task_id, created), = queue.submit([task])
        except InvalidDependency as exc:
            raise bad_request("invalid depends_on", str(exc)) from None
    else:
        task_id, created = _group_commit.submit(task)
    # A new task's row holds what was just inserted: answer from that instead of
    # reading it back. A duplicate unique_key answers with the existing task.
    body = new_task_dict(task_id, task) if created else _backend().get(task_id)
    response = jsonify(body)
    response.status_code = 201 if created else 200
    response.headers["Location"] = f"/api/tasks/{task_id}"
    return response


@bp.post("/api/tasks/batch")
def create_batch():
    """Enqueue a JSON array of task objects in one transaction (all or nothing)."""
    body = inputs.json_body()
    if not isinstance(body, list) or not body:
        raise bad_request("invalid batch", "the body must be a non-empty JSON array of tasks")
    if len(body) > MAX_ENQUEUE_BATCH:
        raise ApiError(413, "batch too large", f"at most {MAX_ENQUEUE_BATCH} tasks per batch")
    requests_ = []
    for index, item in enumerate(body):
        try:
            requests_.append(enqueue_request(item))
        except ApiError as exc:
            raise bad_request(exc.error, {"index": index, "message": exc.detail}) from None
    _check_parents(requests_)
    ids, created = _commit_group(requests_)
    return jsonify(ids=ids, created=created), 201


@bp.get("/api/tasks")
def list_tasks():
    """Tasks newest first; ``next_cursor`` is the ``cursor`` of the next page, or null.

    A filter no index answers (name, queue, ``q``) looks at a bounded range of ids
    per page, so a page may hold fewer than ``limit`` tasks while ``next_cursor``
    says older ones remain to be searched.
    """
    q = inputs.query_text("q")
    if q is not None and "\x00" in q:
        raise bad_request("invalid q", "q cannot contain NUL characters")
    page, next_cursor = _backend().page(
        limit=inputs.query_limit(), cursor=inputs.query_int("cursor"),
        status=inputs.query_text("status", STATUSES), name=inputs.query_text("name"),
        queue=inputs.query_text("queue"), parent_id=inputs.query_int("parent_id"),
        q=q, tags=query_tags())
    return jsonify(tasks=page, next_cursor=next_cursor)


def query_tags() -> list[str] | None:
    """The repeatable ``tag`` filter: every tag named must be on the task."""
    raw = request.args.getlist("tag")
    if len(raw) > MAX_TAGS:
        raise bad_request("invalid tag", f"at most {MAX_TAGS} tag filters")
    try:
        return list(task_fields.check_tags(raw)) or None
    except ValueError as exc:
        raise bad_request("invalid tag", str(exc)) from None


def _task_or_404(raw_id: str) -> dict:
    task = _backend().get(inputs.path_id(raw_id))
    if task is None:
        raise not_found(f"no task {raw_id}")
    return task


@bp.get("/api/tasks/<raw_id>")
def get_task(raw_id: str):
    """One task with its progress and its children's counts by status."""
    return jsonify(_task_or_404(raw_id))


@bp.post("/api/tasks/<raw_id>/cancel")
def cancel_task(raw_id: str):
    """Cancel a queued, waiting or running task; 409 once it has finished."""
    return _change_state(raw_id, queue.cancel, "task already finished")


@bp.post("/api/tasks/<raw_id>/retry")
def retry_task(raw_id: str):
    """Re-queue a failed or cancelled task; 409 for any other status."""
    return _change_state(raw_id, queue.retry, "task cannot be retried")


def _change_state(raw_id: str, change, refusal: str):
    task_id = inputs.path_id(raw_id)
    try:
        return jsonify(change(task_id))
    except KeyError:
        raise not_found(f"no task {task_id}") from None
    except TaskConflict as exc:
        raise conflict(refusal, str(exc)) from None


@bp.get("/api/tasks/<raw_id>/artifact")
def task_artifact(raw_id: str):
    """The file a finished task returned as ``{"artifact": "<path under data/artifacts/>"}``."""
    task = _task_or_404(raw_id)
    if task["status"] not in FINISHED:
        raise conflict("task not finished", f"task {task['id']} is {task['status']}")
    result = task["result"]
    artifact = result.get("artifact") if isinstance(result, dict) else None
    if not isinstance(artifact, str) or not artifact:
        raise not_found("no artifact", f"task {task['id']} did not produce a file")
    path = artifact_file(current_app.extensions["hopper"].settings.artifacts_dir, artifact)
    if not path.is_file():
        raise not_found("artifact missing", f"{artifact} no longer exists")
    return send_file(path, as_attachment=True, download_name=path.name)


def artifact_file(artifacts_dir: Path, artifact: str) -> Path:
    """The file ``artifact`` names inside ``artifacts_dir``; 403 for anything else.

    A task's result is data anyone who can enqueue controls (``echo`` returns its
    arguments), so the name is distrusted: absolute paths, ``..``, hidden files
    (``.session-key``) and symlinks leading out are all refused.
    """
    refused = ApiError(403, "artifact not served",
                       "artifacts are served only from the artifacts folder "
                       "(data/artifacts/); this task named something else")
    relative = Path(artifact)
    if relative.is_absolute() or "\0" in artifact or any(
            part.startswith(".") for part in relative.parts):
        raise refused
    root = artifacts_dir.resolve()
    try:
        # resolve() follows symlinks, so a link pointing outside is refused too.
        path = (root / relative).resolve()
    except (OSError, ValueError):
        raise refused from None
    if not path.is_relative_to(root) or path == root:
        raise refused
    return path
