"""The workflow graph of the task page, drawn on the server as SVG (no script needed).

Tasks are laid out in layers top to bottom (each task below everything it
waits for), so a graph grows downwards and stays readable at phone width; a
layer wider than the screen scrolls sideways. Every node is a link with its id,
name and status written out; colour only repeats the status. A fan-out with more
than ``COLLAPSE_AT`` children is drawn as one node with their counts by status,
so a parent of 10,000 children is a handful of nodes.
"""
from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field

from markupsafe import Markup, escape

COLLAPSE_AT = 12       # more children than this under one parent are drawn as one node
MAX_DRAWN = 400        # nodes drawn at most; beyond, the graph is summarised in the list
NODE_W, NODE_H = 150, 46
GAP_X, GAP_Y, MARGIN = 14, 34, 8
LABEL_CHARS = 19       # characters of "#id name" that fit a node in bold 12 px


@dataclass
class Box:
    """One drawn node: a task, or a group of collapsed children."""

    key: tuple
    label: str
    status_text: str
    status: str
    href: str
    sort: int
    current: bool = False
    title: str = ""  # the full label, when ``label`` had to be cut
    preds: set = field(default_factory=set)
    x: float = 0.0
    y: float = 0.0


def _group_children(graph: dict, current: int) -> dict[int, tuple]:
    """Which task is drawn as which box: ``("t", id)`` or ``("g", parent_id)``."""
    children = defaultdict(list)
    for edge in graph["edges"]:
        if edge["kind"] == "child":
            children[edge["from"]].append(edge["to"])
    box_of = {node["id"]: ("t", node["id"]) for node in graph["nodes"]}
    for parent, kids in children.items():
        if len(kids) > COLLAPSE_AT:
            for kid in kids:
                if kid != current:
                    box_of[kid] = ("g", parent)
    return box_of


def layout(graph: dict, current: int) -> tuple[list[Box], list[tuple[Box, Box, str]]]:
    """Boxes with positions, and the edges between them (``kind`` of the first edge)."""
    box_of = _group_children(graph, current)
    nodes = {node["id"]: node for node in graph["nodes"]}
    members: dict[tuple, list[int]] = defaultdict(list)
    for task_id, key in box_of.items():
        members[key].append(task_id)
    boxes: dict[tuple, Box] = {}
    for key, ids in members.items():
        if key[0] == "t":
            node = nodes[key[1]]
            boxes[key] = Box(key, _short(f"#{node['id']} {node['name']}"), node["status"],
                             node["status"], f"/tasks/{node['id']}", node["id"],
                             node["id"] == current, f"#{node['id']} {node['name']}")
        else:
            counts = Counter(nodes[i]["status"] for i in ids)
            text = ", ".join(f"{n:,} {s}" for s, n in sorted(counts.items()))
            worst = next((s for s in ("failed", "cancelled", "running", "blocked", "queued",
                                      "waiting") if s in counts), "succeeded")
            boxes[key] = Box(key, f"{len(ids):,} children of #{key[1]}", text, worst,
                             f"/tasks?parent_id={key[1]}", min(ids))
    edges: dict[tuple, str] = {}
    for edge in graph["edges"]:
        a, b = box_of[edge["from"]], box_of[edge["to"]]
        if a != b:
            edges.setdefault((a, b), edge["kind"])
            boxes[b].preds.add(a)
    ordered = sorted(boxes.values(), key=lambda box: box.sort)[:MAX_DRAWN]
    drawn = {box.key for box in ordered}
    layer: dict[tuple, int] = {}
    for box in ordered:  # ids are a topological order: a box comes after what it waits for
        layer[box.key] = 1 + max((layer[p] for p in box.preds if p in layer), default=-1)
    rows: dict[int, list[Box]] = defaultdict(list)
    for box in ordered:
        rows[layer[box.key]].append(box)
    for depth in sorted(rows):
        row = rows[depth]
        if depth:  # under the boxes they wait for (one barycentre pass)
            row.sort(key=lambda b: (_mean_x(b, boxes, drawn), b.sort))
        for index, box in enumerate(row):
            box.x = MARGIN + index * (NODE_W + GAP_X)
            box.y = MARGIN + depth * (NODE_H + GAP_Y)
    lines = [(boxes[a], boxes[b], kind) for (a, b), kind in edges.items()
             if a in drawn and b in drawn]
    return ordered, lines


def _mean_x(box: Box, boxes: dict, drawn: set) -> float:
    xs = [boxes[p].x for p in box.preds if p in drawn]
    return sum(xs) / len(xs) if xs else 0.0


def _short(label: str) -> str:
    """A label cut to fit its box; the full one is the node's title (a tooltip)."""
    return label if len(label) <= LABEL_CHARS else label[:LABEL_CHARS - 1] + "…"


def render_svg(graph: dict, current: int) -> Markup:
    """The graph as an inline ``<svg>``; empty for a task that stands alone."""
    if len(graph["nodes"]) < 2:
        return Markup("")
    boxes, lines = layout(graph, current)
    width = MARGIN * 2 + max(box.x for box in boxes) + NODE_W - MARGIN
    height = MARGIN * 2 + max(box.y for box in boxes) + NODE_H - MARGIN
    out = [f'<svg class="wf" id="workflow-graph" xmlns="http://www.w3.org/2000/svg"'
           f' width="{width:.0f}" height="{height:.0f}" viewBox="0 0 {width:.0f} {height:.0f}"'
           f' role="group" aria-label="workflow graph of {len(graph["nodes"])} tasks">']
    for a, b, kind in lines:
        x1, y1 = a.x + NODE_W / 2, a.y + NODE_H
        x2, y2 = b.x + NODE_W / 2, b.y
        mid = (y1 + y2) / 2
        out.append(f'<path class="edge {kind}" d="M{x1:.0f},{y1:.0f} C{x1:.0f},{mid:.0f}'
                   f' {x2:.0f},{mid:.0f} {x2:.0f},{y2 - 3:.0f}"><title>{kind}</title></path>')
    for box in boxes:
        current_attr = ' aria-current="page"' if box.current else ""
        label = escape(box.label)
        status = escape(box.status_text)
        out.append(
            f'<a href="{escape(box.href)}" class="node s-{escape(box.status)}'
            f'{" current" if box.current else ""}{" group" if box.key[0] == "g" else ""}"'
            f' data-status="{escape(box.status)}"{current_attr}>'
            f'<title>{escape(box.title or box.label)}: {status}</title>'
            f'<rect x="{box.x:.0f}" y="{box.y:.0f}" width="{NODE_W}" height="{NODE_H}" rx="5"/>'
            f'<text class="label" x="{box.x + 8:.0f}" y="{box.y + 18:.0f}">{label}</text>'
            f'<text class="status" x="{box.x + 8:.0f}" y="{box.y + 36:.0f}">'
            f'{_clip(box.status_text)}</text></a>')
    out.append("</svg>")
    return Markup("".join(out))


def _clip(text: str) -> Markup:
    """A group's counts may not fit its box: the full text is in its title."""
    return escape(text if len(text) <= 24 else text[:23] + "…")
