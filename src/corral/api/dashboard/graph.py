"""A workflow's graph laid out for a server-drawn SVG: layers left to right.

Each job sits one layer right of its deepest dependency (the longest path from a
root), so every edge points rightwards; inside a layer, jobs keep the order they
were submitted in. Pure geometry: no HTTP, no store.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

NODE_W = 150
NODE_H = 34
GAP_X = 60
GAP_Y = 16
PAD = 10


@dataclass(frozen=True, slots=True)
class Node:
    key: str
    x: float
    y: float

    @property
    def right(self) -> float:
        return self.x + NODE_W

    @property
    def middle(self) -> float:
        return self.y + NODE_H / 2


@dataclass(frozen=True, slots=True)
class Edge:
    parent: str
    child: str
    path: str  # an SVG path: a cubic curve from the parent's right to the child's left


@dataclass(frozen=True, slots=True)
class Layout:
    nodes: dict[str, Node]
    edges: list[Edge]
    width: float
    height: float


def layers(keys: Sequence[str], parents: Mapping[str, Sequence[str]]) -> dict[str, int]:
    """Each key's layer: 0 for roots, else one more than its deepest parent in ``keys``
    (the graph is acyclic: the API refused cycles)."""
    depth: dict[str, int] = {}
    inside = set(keys)
    for key in keys:
        stack = [key]
        while stack:
            top = stack[-1]
            pending = [p for p in parents.get(top, ()) if p in inside and p not in depth]
            if pending:
                stack.extend(pending)
                continue
            stack.pop()
            ups = [depth[p] + 1 for p in parents.get(top, ()) if p in inside]
            depth[top] = max(ups, default=0)
    return depth


def layout(keys: Sequence[str], edges: Sequence[tuple[str, str]]) -> Layout:
    """Positions for ``keys`` and curves for ``edges`` ((child, parent) pairs; parents
    outside the workflow are left out of the drawing)."""
    parents: dict[str, list[str]] = {}
    for child, parent in edges:
        parents.setdefault(child, []).append(parent)
    depth = layers(keys, parents)
    rows: dict[int, int] = {}
    nodes: dict[str, Node] = {}
    for key in keys:
        layer = depth[key]
        row = rows.get(layer, 0)
        rows[layer] = row + 1
        nodes[key] = Node(key, PAD + layer * (NODE_W + GAP_X), PAD + row * (NODE_H + GAP_Y))
    curves = [
        Edge(parent, child, _curve(nodes[parent], nodes[child]))
        for child, parent in edges
        if parent in nodes and child in nodes
    ]
    width = 2 * PAD + (max(depth.values(), default=0) + 1) * (NODE_W + GAP_X) - GAP_X
    height = 2 * PAD + max(rows.values(), default=1) * (NODE_H + GAP_Y) - GAP_Y
    return Layout(nodes, curves, width, height)


def _curve(start: Node, end: Node) -> str:
    x1, y1, x2, y2 = start.right, start.middle, end.x, end.middle
    bend = (x2 - x1) / 2
    return f"M{x1:g},{y1:g} C{x1 + bend:g},{y1:g} {x2 - bend:g},{y2:g} {x2:g},{y2:g}"
