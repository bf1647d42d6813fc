"""``GET /api/tasks/<id>/workflow``: the graph a task belongs to."""
from __future__ import annotations

from flask import Blueprint, current_app, jsonify

from hopper.app import workflow
from hopper.app.web import inputs
from hopper.app.web.errors import not_found

bp = Blueprint("api_workflow", __name__)


@bp.get("/api/tasks/<raw_id>/workflow")
def get_workflow(raw_id: str):
    """``{nodes: [{id, name, status}], edges: [{from, to, kind}], truncated}``: the
    task's dependencies, fan-out children and continuations, and theirs, at most
    10,000 tasks."""
    task_id = inputs.path_id(raw_id)
    graph = workflow.workflow(current_app.extensions["hopper"].backend, task_id)
    if graph is None:
        raise not_found(f"no task {task_id}")
    return jsonify(graph)
