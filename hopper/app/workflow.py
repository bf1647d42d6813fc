"""The graph a task belongs to: its dependencies, fan-out children and continuations.

Every edge points from an older task to a newer one (a dependency to its
dependent, a parent to its child or its continuation), so ordering by id is a
topological order. The graph is found breadth first from one task, a level of
tasks per few queries, and stops at ``MAX_NODES`` tasks (``truncated``).
"""
from __future__ import annotations

import json
from typing import Any

from hopper.app.backends.base import Backend
from hopper.app.backends.sql_parts import marks as _marks
from hopper.app.backends.states import continuation_key

MAX_NODES = 10_000
_CHUNK = 500
_FIELDS = "id, name, status, parent_id, depends_on, unique_key, continuation"
_CONTINUATION = "continuation:"


def continuation_of(unique_key: str | None) -> int | None:
    """The parent whose continuation a task is (its unique_key ``continuation:<id>``)."""
    if unique_key and unique_key.startswith(_CONTINUATION):
        suffix = unique_key[len(_CONTINUATION):]
        if suffix.isdigit():
            return int(suffix)
    return None


def _rows(backend: Backend, where: str, values: list) -> list[tuple]:
    rows: list[tuple] = []
    for start in range(0, len(values), _CHUNK):
        chunk = values[start:start + _CHUNK]
        rows += backend.fetch(f"SELECT {_FIELDS} FROM tasks WHERE {where.format(_marks(chunk))}",
                              chunk)
    return rows


def workflow(backend: Backend, task_id: int, max_nodes: int = MAX_NODES) -> dict[str, Any] | None:
    """``{nodes: [{id, name, status}], edges: [{from, to, kind}], truncated}`` of the
    graph ``task_id`` belongs to, nodes in id order; None for an unknown task."""
    found: dict[int, tuple] = {row[0]: row for row in _rows(backend, "id IN ({})", [task_id])}
    if not found:
        return None
    frontier = list(found)
    truncated = False
    while frontier and not truncated:
        rows = [found[i] for i in frontier]
        wanted: set[int] = set()
        for _, _, _, parent_id, depends_on, unique_key, _ in rows:
            if parent_id is not None:
                wanted.add(parent_id)
            if depends_on:
                wanted.update(json.loads(depends_on))
            parent = continuation_of(unique_key)
            if parent is not None:
                wanted.add(parent)
        new = _rows(backend, "id IN ({})", sorted(wanted - found.keys()))
        new += _rows(backend, "parent_id IN ({})", frontier)
        dependents = []
        for start in range(0, len(frontier), _CHUNK):
            chunk = frontier[start:start + _CHUNK]
            dependents += [r[0] for r in backend.fetch(
                f"SELECT task_id FROM task_deps WHERE depends_on IN ({_marks(chunk)})", chunk)]
        new += _rows(backend, "id IN ({})", sorted(set(dependents) - found.keys()))
        keys = [continuation_key(r[0]) for r in rows if r[6]]
        # The same range as the partial index tasks_continuations, so it is used.
        new += _rows(backend, "unique_key >= 'continuation:' AND unique_key < 'continuation;'"
                     " AND unique_key IN ({})", keys)
        frontier = []
        for row in sorted(new):
            if row[0] in found:
                continue
            if len(found) >= max_nodes:
                truncated = True
                break
            found[row[0]] = row
            frontier.append(row[0])
    return _graph(found, truncated)


def _graph(found: dict[int, tuple], truncated: bool) -> dict[str, Any]:
    nodes, edges = [], []
    for task_id in sorted(found):
        _, name, status, parent_id, depends_on, unique_key, _ = found[task_id]
        nodes.append({"id": task_id, "name": name, "status": status})
        for dep in sorted(json.loads(depends_on)) if depends_on else []:
            if dep in found:
                edges.append({"from": dep, "to": task_id, "kind": "depends_on"})
        if parent_id in found:
            edges.append({"from": parent_id, "to": task_id, "kind": "child"})
        parent = continuation_of(unique_key)
        if parent is not None:
            if parent in found:
                edges.append({"from": parent, "to": task_id, "kind": "continuation"})
    return {"nodes": nodes, "edges": edges, "truncated": truncated}
