"""The HTML pages: overview, tasks, one task, schedules, settings, library, login.

Pages read the same backend the API does; state changes go through forms that
carry the session's CSRF token (cancel, retry, login) or, for the worker
slider, a PATCH to /api/settings with the token in a header.
"""
from __future__ import annotations

import time
from collections import Counter

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)

from hopper.app import queue, scheduler, task_fields, workflow
from hopper.app.backends.base import STATUSES, TaskConflict
from hopper.app.published import FLASK_APP_ERROR_KEY, SETTINGS_ERROR_KEY
from hopper.app.watch.host import read_status
from hopper.app.web import auth, inputs, task_view, workflow_graph
from hopper.app.web.api_system import public_settings, settings_in_force
from hopper.app.web.errors import ApiError
from hopper.app.web.library_pages import item_page, library_page
from hopper.app.web.limits_page import limits_page, rate_form
from hopper.app.web.settings_words import library_rows

bp = Blueprint("ui", __name__, template_folder="templates", static_folder="static",
               static_url_path="/static")


def _backend():
    return current_app.extensions["hopper"].backend


@bp.get("/")
def overview():
    """Queue cards, charts, workers and failures; dashboard.js fills and refreshes them."""
    return render_template("overview.html", watch=read_status(_backend()))


def _known_count(filters: dict) -> int | None:
    """The number of tasks matching a status/queue filter, from the counters."""
    if filters["name"] or filters["q"] or filters["parent_id"] or filters["tag"]:
        return None
    if not filters["status"] and not filters["queue"]:
        return None
    counts = _backend().counts()
    queues = [filters["queue"]] if filters["queue"] else list(counts)
    return sum(n for q in queues for s, n in counts.get(q, {}).items()
               if filters["status"] in (None, s))


@bp.get("/tasks")
def tasks():
    """A filterable, searchable, paged task list with bulk actions."""
    try:
        limit = inputs.query_limit()
        filters = {"status": inputs.query_text("status", STATUSES),
                   "name": inputs.query_text("name"), "queue": inputs.query_text("queue"),
                   "q": inputs.query_text("q"), "parent_id": inputs.query_int("parent_id"),
                   "tag": inputs.query_text("tag")}
        cursor = inputs.query_int("cursor")
        tags = [task_fields.check_tag(filters["tag"])] if filters["tag"] else None
    except ApiError as exc:
        abort(400, exc.detail)
    except ValueError as exc:
        abort(400, str(exc))
    listed = {k: v for k, v in filters.items() if k != "tag"}
    rows, next_cursor = _backend().page(limit=limit, cursor=cursor, tags=tags, **listed)
    bulk_filter = {k: v for k, v in filters.items() if v and k in ("status", "name", "queue", "q")}
    if filters["parent_id"] or filters["tag"]:
        bulk_filter = {}  # the bulk API filters by status, name, queue and text only
    return render_template("tasks.html", tasks=rows, filters=filters, statuses=STATUSES,
                           next_cursor=next_cursor, cursor=cursor, limit=limit,
                           bulk_filter=bulk_filter, known_count=_known_count(filters))


CHILDREN_SHOWN = 50


@bp.get("/tasks/<int:task_id>")
def task(task_id: int):
    """One task: fields, progress, children, timeline, each attempt's traceback."""
    backend = _backend()
    found = backend.get(task_id) if task_id <= inputs.INT64_MAX else None
    if found is None:
        abort(404, f"no task {task_id}")
    children = (backend.list(parent_id=task_id, limit=CHILDREN_SHOWN + 1)
                if found["children"] else [])
    done, total = found["progress"]["done"] or 0, found["progress"]["total"] or 0
    percent = min(100, round(100 * done / total)) if total else 0
    attempts = task_view.attempts(found)
    # None only if the task was deleted since it was read: then it stands alone.
    graph = workflow.workflow(backend, task_id) or {"nodes": [], "edges": [], "truncated": False}
    counts = Counter(node["status"] for node in graph["nodes"])
    return render_template("task.html", task=found, percent=percent, attempts=attempts,
                           timeline=task_view.timeline(found, attempts),
                           children=children[:CHILDREN_SHOWN],
                           children_more=len(children) > CHILDREN_SHOWN,
                           workflow=graph, workflow_counts=sorted(counts.items()),
                           workflow_svg=workflow_graph.render_svg(graph, task_id))


@bp.post("/tasks/<int:task_id>/workflow/<any(cancel, retry):action>")
def workflow_action(task_id: int, action: str):
    """Cancel every unfinished task, or retry every failed and cancelled one, of the
    workflow this task belongs to (form post with CSRF token)."""
    auth.require_csrf_form()
    backend = _backend()
    graph = workflow.workflow(backend, task_id) if task_id <= inputs.INT64_MAX else None
    if graph is None:
        abort(404, f"no task {task_id}")
    # The backend wakes idle workers for what the retry queued.
    result = backend.bulk(action, ids=[node["id"] for node in graph["nodes"]])
    flash(f"workflow of task {task_id}: {action} changed {result['changed']} of"
          f" {result['matched']} tasks")
    return redirect(url_for("ui.task", task_id=task_id))


@bp.post("/tasks/<int:task_id>/<any(cancel, retry):action>")
def task_action(task_id: int, action: str):
    """Cancel or retry from the task page (form post with CSRF token)."""
    auth.require_csrf_form()
    try:
        (queue.cancel if action == "cancel" else queue.retry)(task_id)
        flash(f"task {task_id}: {action} done")
    except KeyError:
        abort(404, f"no task {task_id}")
    except TaskConflict as exc:
        flash(str(exc))
    return redirect(url_for("ui.task", task_id=task_id))


@bp.get("/schedules")
def schedules():
    """Schedule entries with their last and next slots; run, pause and resume buttons."""
    entries = scheduler.schedules_for(settings_in_force()[0])
    return render_template("schedules.html",
                           schedules=scheduler.describe(_backend(), entries))


@bp.post("/schedules/<name>/<any(run, pause, resume):action>")
def schedule_action(name: str, action: str):
    """Run, pause or resume an entry from the schedules page (form post with CSRF token)."""
    auth.require_csrf_form()
    entries = {e["name"]: e for e in scheduler.schedules_for(settings_in_force()[0])}
    if name not in entries:
        abort(404, f"no schedule entry {name}")
    if action == "run":
        task_id = scheduler.enqueue_entry(_backend(), entries[name], time.time())
        flash(f"{name}: enqueued task {task_id}")
    else:
        _backend().set_schedule_paused(name, action == "pause")
        flash(f"{name}: {action}d")
    return redirect(url_for("ui.schedules"))


@bp.get("/limits")
def limits():
    """Concurrency keys and rate limits shared by every daemon."""
    return limits_page()


@bp.post("/limits/rate")
def limits_rate():
    """Set or remove a rate limit from the Limits page (form post with CSRF token)."""
    return rate_form()


@bp.get("/settings")
def settings_page():
    """Settings in force, the last reload error, and the worker slider."""
    current, load_error = settings_in_force()
    published = _backend().get_state(SETTINGS_ERROR_KEY)
    error = (published or {}).get("error") or load_error
    return render_template("settings.html", settings=public_settings(current), error=error,
                           flask_app_error=_backend().get_state(FLASK_APP_ERROR_KEY),
                           library_rows=library_rows(current),
                           watch=read_status(_backend()))


@bp.get("/library")
def library():
    """The library browser: timeline, search, thumbnail grid, export."""
    return library_page()


@bp.get("/library/<int:item_id>")
def library_item(item_id: int):
    """One library item: preview, metadata, duplicates, download."""
    return item_page(item_id)


@bp.route("/login", methods=["GET", "POST"])
def login():
    """Ask for the token once; the session cookie remembers it."""
    target = auth.safe_next(request.values.get("next"))
    if request.method == "POST":
        auth.require_csrf_form()
        client, throttle = auth.client_address(), auth.throttle()
        wait = throttle.retry_after(client)
        if wait:
            # Answered at once, the token unchecked: guessing stays slow without
            # holding a server thread.
            flash(f"too many wrong tokens; try again in {wait} s")
            page = render_template("login.html", next=target)
            return page, 429, {"Retry-After": str(wait)}
        if auth.token_matches(request.form.get("token")):
            throttle.succeeded(client)
            auth.log_in()
            return redirect(target)
        throttle.failed(client)
        flash("wrong token")
    return render_template("login.html", next=target)


@bp.post("/logout")
def logout():
    """Forget this browser's login."""
    auth.require_csrf_form()
    from flask import session

    session.clear()
    return redirect(url_for("ui.login"))

