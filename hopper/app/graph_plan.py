"""Checking the dependencies of one ``enqueue_many`` call before anything is stored.

An item may carry ``ref: "a"`` and ``depends_on: ["a", 12]`` (refs of items of the
same call, or ids of existing tasks). The plan puts every item after the items it
depends on (a topological order, stable otherwise), so each dependency is
inserted first and gets the lower id; a cycle, an unknown or repeated ref, or a
value that is neither is refused with InvalidDependency.
"""
from __future__ import annotations

import heapq
from dataclasses import dataclass

from hopper.app.backends.base import InvalidDependency

MAX_REF_LENGTH = 200


@dataclass
class Plan:
    """``order``: request indexes in insertion order; per request, the request
    indexes (``internal``) and existing task ids (``external``) it depends on."""

    order: list[int]
    internal: list[list[int]]
    external: list[list[int]]


def check_ids(depends_on) -> list[int]:
    """``depends_on`` of a single enqueue: a list of task ids."""
    if depends_on is None:
        return []
    if not isinstance(depends_on, (list, tuple)):
        raise InvalidDependency(f"depends_on must be a list of task ids, got {depends_on!r}")
    for value in depends_on:
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise InvalidDependency(f"depends_on must hold task ids, got {value!r}")
    return sorted(set(depends_on))


def plan(requests: list[dict]) -> Plan:
    """Resolve refs and order the items; InvalidDependency says what is wrong."""
    refs: dict[str, int] = {}
    for index, request in enumerate(requests):
        ref = request.get("ref")
        if ref is None:
            continue
        if not isinstance(ref, str) or not ref or len(ref) > MAX_REF_LENGTH:
            raise InvalidDependency(f"item {index}: ref must be a non-empty string of at most"
                                    f" {MAX_REF_LENGTH} characters, got {ref!r}")
        if ref in refs:
            raise InvalidDependency(f"item {index}: ref {ref!r} is used by item {refs[ref]} too")
        refs[ref] = index
    internal: list[list[int]] = []
    external: list[list[int]] = []
    for index, request in enumerate(requests):
        named = request.get("depends_on")
        if named is None:
            named = []
        if not isinstance(named, (list, tuple)):
            raise InvalidDependency(f"item {index}: depends_on must be a list, got {named!r}")
        mine: set[int] = set()
        ids: set[int] = set()
        for value in named:
            if isinstance(value, str):
                if value not in refs:
                    raise InvalidDependency(f"item {index}: depends_on names an unknown ref"
                                            f" {value!r}")
                if refs[value] == index:
                    raise InvalidDependency(f"item {index}: a task cannot depend on itself")
                mine.add(refs[value])
            elif isinstance(value, int) and not isinstance(value, bool) and value >= 1:
                ids.add(value)
            else:
                raise InvalidDependency(f"item {index}: depends_on holds refs (strings) or"
                                        f" task ids, got {value!r}")
        internal.append(sorted(mine))
        external.append(sorted(ids))
    return Plan(_topological(internal), internal, external)


def _topological(internal: list[list[int]]) -> list[int]:
    """Kahn's algorithm, lowest index first among the ready; a cycle is refused."""
    waiting = [len(deps) for deps in internal]
    dependents: list[list[int]] = [[] for _ in internal]
    for index, deps in enumerate(internal):
        for dep in deps:
            dependents[dep].append(index)
    ready = [i for i, n in enumerate(waiting) if n == 0]
    heapq.heapify(ready)
    order: list[int] = []
    while ready:
        index = heapq.heappop(ready)
        order.append(index)
        for dependent in dependents[index]:
            waiting[dependent] -= 1
            if waiting[dependent] == 0:
                heapq.heappush(ready, dependent)
    if len(order) < len(internal):
        stuck = sorted(set(range(len(internal))) - set(order))
        raise InvalidDependency(f"depends_on forms a cycle among items {stuck[:20]}")
    return order
