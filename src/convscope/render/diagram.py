"""Drawing a :class:`~convscope.probe.graph.ModelGraph`: layout, SVG, matplotlib and DOT.

The layout is a small layered (Sugiyama-style) one written here so that no system
binary is needed: longest-path layering from the inputs, dummy points on edges that
skip layers (residual shortcuts), barycenter ordering sweeps to cut crossings, and
x positions that pull each box under its neighbours while keeping the order (an
isotonic fit with minimum gaps). The one layout is written as SVG directly and drawn
with matplotlib for PNG/PDF; Graphviz DOT text is offered for people who have ``dot``.
"""

from __future__ import annotations

import html
import textwrap
from dataclasses import dataclass, field
from itertools import pairwise
from typing import TYPE_CHECKING

from matplotlib.figure import Figure

from convscope.models.provenance import model_title
from convscope.probe.graph import ROOT_ID

if TYPE_CHECKING:
    from convscope.probe.graph import GraphNode, ModelGraph

FONT_PX = 11.0
"""Font size of the box text, in SVG pixels (1/96 inch)."""
LINE_PX = 14.0
BOX_PAD = 10.0
LAYER_GAP = 30.0
NODE_GAP = 22.0
MARGIN = 20.0
HEADER_LINE = 18.0
PX_PER_INCH = 96.0
FONT_FAMILY = "DejaVu Sans, Verdana, Helvetica, Arial, sans-serif"
EDGE_COLOR = "#5f6368"
CENTRE_WEIGHT = 0.5
"""Weight of keeping a fork or merge centred on its branches, against an edge's 1-8."""

#: (fill, stroke) per kind of layer.
PALETTE: dict[str, tuple[str, str]] = {
    "io": ("#eceff1", "#607d8b"),
    "conv": ("#dbe9f6", "#2f6ea8"),
    "pool": ("#dcf0dc", "#388e3c"),
    "norm": ("#fff3c4", "#b08900"),
    "act": ("#fde3d3", "#d0661e"),
    "dense": ("#e8ddf5", "#6a4c9c"),
    "merge": ("#f9d6e4", "#c2185b"),
    "dropout": ("#f3f3f3", "#9e9e9e"),
    "reshape": ("#e3f2f1", "#3e8a84"),
    "block": ("#e4e7f6", "#3949ab"),
    "other": ("#ffffff", "#616161"),
}

_ACTIVATIONS = {
    "relu", "relu6", "leakyrelu", "prelu", "elu", "selu", "celu", "gelu", "silu", "mish",
    "tanh", "sigmoid", "softmax", "logsoftmax", "hardswish", "hardsigmoid", "hardtanh",
    "softplus", "tanhshrink", "relu_", "sigmoid_", "tanh_",
}  # fmt: skip
_MERGES = {"add", "iadd", "sub", "mul", "imul", "cat", "concat", "concatenate", "stack", "matmul"}
_RESHAPES = {"flatten", "view", "reshape", "permute", "squeeze", "unsqueeze", "transpose",
             "contiguous", "getitem", "getattr", "size", "chunk", "split"}  # fmt: skip


def node_kind(node: GraphNode) -> str:
    """The colour group of a node: conv, pool, norm, act, dense, merge, ... (see PALETTE)."""
    kind = node.type.lower().rpartition(".")[2]
    if node.op in ("placeholder", "output"):
        return "io"
    if node.collapsed:
        return "block"
    if "conv" in kind:
        return "conv"
    if "pool" in kind or "subsampl" in kind:
        return "pool"
    if "norm" in kind:
        return "norm"
    if kind in _ACTIVATIONS:
        return "act"
    if "linear" in kind or "dense" in kind or "rbf" in kind:
        return "dense"
    if "dropout" in kind:
        return "dropout"
    if kind in _MERGES:
        return "merge"
    if kind in _RESHAPES:
        return "reshape"
    return "other"


def shape_text(shape: object) -> str:
    """``[1, 32, 28, 28]`` -> ``32×28×28`` (batch dropped); tuples joined with commas."""
    if not shape:
        return ""
    if isinstance(shape[0], list):  # type: ignore[index]
        return ", ".join(shape_text(s) for s in shape)  # type: ignore[union-attr]
    dims = list(shape)[1:] or list(shape)  # type: ignore[call-overload]
    return "×".join(str(d) for d in dims)


def node_lines(node: GraphNode) -> tuple[str, str, str]:
    """The three lines of a box: name, type, and output shape with parameters."""
    kind = f"{node.type} (collapsed)" if node.collapsed else node.type
    if node.activation and node.activation != "linear":
        kind = f"{kind} · {node.activation}"
    shape = shape_text(node.output_shape)
    params = f"{node.params:,} params" if node.params else ""
    detail = " · ".join(part for part in (shape, params) if part)
    return node.name, kind, detail


def _text_width(text: str, bold: bool = False, size: float = FONT_PX) -> float:
    """Estimated width in pixels of ``text`` at ``size`` px (DejaVu Sans metrics, generous)."""
    return len(text) * size * (0.68 if bold else 0.62)


@dataclass
class Box:
    """A placed node: centre, size and its three text lines."""

    id: str
    x: float
    y: float
    width: float
    height: float
    lines: tuple[str, str, str]
    kind: str
    collapsed: bool = False
    tooltip: str = ""


@dataclass
class Layout:
    """Boxes, edge polylines (source port -> dummy points -> target port) and canvas size."""

    width: float
    height: float
    boxes: dict[str, Box]
    edges: list[list[tuple[float, float]]]
    title: str
    subtitle: str = ""
    notes: list[str] = field(default_factory=list)


def layout_graph(graph: ModelGraph, *, max_note_chars: int = 110) -> Layout:
    """Place the graph's nodes in layers top to bottom (inputs at the top)."""
    ids = [node.id for node in graph.nodes]
    nodes = {node.id: node for node in graph.nodes}
    edges = [(a, b) for a, b in graph.edges if a in nodes and b in nodes and a != b]
    layer = _layers(ids, edges)
    chains, virtual = _split_long_edges(edges, layer)
    order = _order(ids, virtual, layer, chains)

    box_width = max(
        [
            max(_text_width(node_lines(n)[0], bold=True), _text_width(" ".join(node_lines(n)[1:2])),
                _text_width(node_lines(n)[2])) + 2 * BOX_PAD
            for n in graph.nodes
        ]
        + [110.0]
    )  # fmt: skip
    box_width = min(box_width, 320.0)
    box_height = 3 * LINE_PX + 2 * 6.0
    widths = {i: box_width for i in ids} | {v: 8.0 for v in virtual}

    title, subtitle = _title(graph)
    notes = textwrap.wrap(graph.note or "", max_note_chars) if graph.note else []
    header = [title, subtitle, *notes]
    top = MARGIN + HEADER_LINE * (1 + bool(subtitle) + len(notes)) + 12.0
    x = _x_positions(order, widths, chains, set(virtual))
    left = min(x[v] - widths[v] / 2 for v in x)
    right = max(x[v] + widths[v] / 2 for v in x)
    text_width = max(_text_width(line, bold=True, size=14.0) for line in header if line)
    width = max(right - left, text_width) + 2 * MARGIN
    shift = (width - (right - left)) / 2 - left  # the diagram centred under the title
    x = {v: value + shift for v, value in x.items()}
    y = {v: top + layer_index * (box_height + LAYER_GAP) + box_height / 2
         for layer_index, row in enumerate(order) for v in row}  # fmt: skip

    boxes = {
        i: Box(
            id=i,
            x=x[i],
            y=y[i],
            width=box_width,
            height=box_height,
            lines=node_lines(nodes[i]),
            kind=node_kind(nodes[i]),
            collapsed=nodes[i].collapsed,
            tooltip=_tooltip(nodes[i]),
        )
        for i in ids
    }
    polylines = _edge_polylines(chains, boxes, x, y)
    height = (max(y.values()) + box_height / 2 if y else top) + MARGIN
    return Layout(width, height, boxes, polylines, title, subtitle, notes)


def _title(graph: ModelGraph) -> tuple[str, str]:
    """The heading (model, layer count, parameters) and a line on what was collapsed."""
    layers = sum(
        node.op not in ("placeholder", "output") and node.id != ROOT_ID for node in graph.nodes
    )
    what = "layers" if graph.traced else "modules"
    title = f"{model_title(graph.model, graph.model_weights)} · {layers} {what} · {graph.total_params:,} parameters"
    subtitle = ""
    if graph.depth and graph.traced and any(node.collapsed for node in graph.nodes):
        subtitle = f"stacked boxes hold deeper layers (drawn to depth {graph.depth})"
    return title, subtitle


def _tooltip(node: GraphNode) -> str:
    shape = node.output_shape if node.output_shape is not None else "?"
    return f"{node.name} ({node.type}, {node.op})\noutput {shape}\n{node.params:,} parameters"


def _layers(ids: list[str], edges: list[tuple[str, str]]) -> dict[str, int]:
    """Longest-path layering: each node one layer below its deepest predecessor."""
    preds: dict[str, list[str]] = {i: [] for i in ids}
    succs: dict[str, list[str]] = {i: [] for i in ids}
    for a, b in edges:
        preds[b].append(a)
        succs[a].append(b)
    indegree = {i: len(preds[i]) for i in ids}
    ready = [i for i in ids if indegree[i] == 0]
    layer: dict[str, int] = {}
    position = {i: n for n, i in enumerate(ids)}
    while ready:
        ready.sort(key=position.__getitem__)
        node = ready.pop(0)
        layer[node] = max((layer[p] + 1 for p in preds[node] if p in layer), default=0)
        for nxt in succs[node]:
            indegree[nxt] -= 1
            if indegree[nxt] == 0:
                ready.append(nxt)
    for i in ids:  # a cycle (never from fx): put what is left below everything
        layer.setdefault(i, max(layer.values(), default=-1) + 1)
    return layer


def _split_long_edges(
    edges: list[tuple[str, str]], layer: dict[str, int]
) -> tuple[list[list[str]], dict[str, int]]:
    """Each edge as a chain of ids, with dummy points in the layers it skips."""
    chains: list[list[str]] = []
    virtual: dict[str, int] = {}
    for n, (a, b) in enumerate(edges):
        chain = [a]
        for step in range(layer[a] + 1, layer[b]):
            dummy = f"\0{n}:{step}"
            virtual[dummy] = step
            chain.append(dummy)
        chain.append(b)
        chains.append(chain)
    return chains, virtual


def _order(
    ids: list[str], virtual: dict[str, int], layer: dict[str, int], chains: list[list[str]]
) -> list[list[str]]:
    """Order within layers by barycenter sweeps, keeping the ordering with fewest crossings."""
    levels = layer | virtual
    count = max(levels.values(), default=-1) + 1
    rank = {i: float(n) for n, i in enumerate(ids)}
    for chain in chains:
        for k, v in enumerate(chain[1:-1], start=1):
            rank[v] = rank[chain[0]] + k * 1e-3
    order: list[list[str]] = [[] for _ in range(count)]
    for v in sorted(levels, key=rank.__getitem__):
        order[levels[v]].append(v)
    up: dict[str, list[str]] = {v: [] for v in levels}
    down: dict[str, list[str]] = {v: [] for v in levels}
    for chain in chains:
        for a, b in pairwise(chain):
            down[a].append(b)
            up[b].append(a)

    best, best_crossings = [row[:] for row in order], _crossings(order, down)
    for sweep in range(12):
        rows = range(1, count) if sweep % 2 == 0 else range(count - 2, -1, -1)
        neighbours = up if sweep % 2 == 0 else down
        for r in rows:
            other = order[r - 1] if sweep % 2 == 0 else order[r + 1]
            pos = {v: n for n, v in enumerate(other)}
            keys = {}
            for n, v in enumerate(order[r]):
                linked = [pos[u] for u in neighbours[v] if u in pos]
                keys[v] = (sum(linked) / len(linked) if linked else float(n), n)
            order[r] = sorted(order[r], key=keys.__getitem__)
        crossings = _crossings(order, down)
        if crossings < best_crossings:
            best, best_crossings = [row[:] for row in order], crossings
    return best


def _crossings(order: list[list[str]], down: dict[str, list[str]]) -> int:
    """Number of edge crossings between adjacent layers."""
    total = 0
    for r in range(len(order) - 1):
        pos = {v: n for n, v in enumerate(order[r + 1])}
        pairs = [(i, pos[w]) for i, v in enumerate(order[r]) for w in down[v] if w in pos]
        for n, (a1, b1) in enumerate(pairs):
            for a2, b2 in pairs[n + 1 :]:
                if (a1 - a2) * (b1 - b2) < 0:
                    total += 1
    return total


def _x_positions(
    order: list[list[str]], widths: dict[str, float], chains: list[list[str]], virtual: set[str]
) -> dict[str, float]:
    """Centres that keep edges vertical, in order and without overlaps.

    As Graphviz ``dot`` does (Gansner et al. 1993), minimise the weighted sum of the
    edges' horizontal spans subject to the minimum gaps within each layer, as a linear
    program. Edges between two boxes weigh more than the ends of long edges, so the
    main path stays straight and shortcuts bend around it; the inner parts of long
    edges weigh most, so a shortcut runs as one straight line.
    """
    import numpy as np
    from scipy.optimize import linprog

    nodes = [v for row in order for v in row]
    index = {v: n for n, v in enumerate(nodes)}
    pairs: dict[tuple[str, str], float] = {}
    for chain in chains:
        for a, b in pairwise(chain):
            dummies = (a in virtual) + (b in virtual)
            weight = (4.0, 1.0, 8.0)[dummies]
            pairs[(a, b)] = pairs.get((a, b), 0.0) + weight
    # A fork or merge of real boxes sits centred over / under them (ties otherwise).
    centre: list[tuple[str, list[str]]] = []
    for v in nodes:
        if v in virtual:
            continue
        for side in (0, 1):
            linked = sorted({b if side else a for a, b in pairs if (a if side else b) == v})
            linked = [u for u in linked if u not in virtual]
            if len(linked) > 1:
                centre.append((v, linked))
    n, m = len(nodes), len(pairs) + len(centre)
    cost = np.concatenate(
        [np.zeros(n), np.array(list(pairs.values())), np.full(len(centre), CENTRE_WEIGHT)]
    )
    rows, bounds = [], []
    for k, (a, b) in enumerate(pairs):  # t_k >= |x_a - x_b|
        for sign in (1.0, -1.0):
            row = np.zeros(n + m)
            row[index[a]], row[index[b]], row[n + k] = sign, -sign, -1.0
            rows.append(row)
            bounds.append(0.0)
    for k, (v, linked) in enumerate(centre, start=len(pairs)):  # t_k >= |x_v - mean(linked)|
        for sign in (1.0, -1.0):
            row = np.zeros(n + m)
            row[index[v]] = sign
            for u in linked:
                row[index[u]] -= sign / len(linked)
            row[n + k] = -1.0
            rows.append(row)
            bounds.append(0.0)
    for row_ids in order:  # x_next - x_v >= gap
        for a, b in pairwise(row_ids):
            row = np.zeros(n + m)
            row[index[a]], row[index[b]] = 1.0, -1.0
            rows.append(row)
            bounds.append(-((widths[a] + widths[b]) / 2 + NODE_GAP))
    x: dict[str, float] = {}
    if rows:
        result = linprog(cost, A_ub=np.array(rows), b_ub=np.array(bounds), bounds=(0, None),
                         method="highs")  # fmt: skip
        if result.success:
            x = {v: float(result.x[index[v]]) for v in nodes}
    if not x:  # no edges, or the solver failed: rows packed from the left
        for row_ids in order:
            cursor = 0.0
            for v in row_ids:
                x[v] = cursor + widths[v] / 2
                cursor += widths[v] + NODE_GAP
    _balance(order, widths, pairs, x)
    return x


def _balance(
    order: list[list[str]],
    widths: dict[str, float],
    pairs: dict[tuple[str, str], float],
    x: dict[str, float],
) -> None:
    """Centre boxes whose position does not matter to the cost (a fork above two branches).

    Each box moves towards the mean of its neighbours, but only within the interval
    where its weighted span cost is lowest and without overlapping its row neighbours,
    so the total cost never rises.
    """
    linked: dict[str, list[tuple[str, float]]] = {}
    for (a, b), weight in pairs.items():
        linked.setdefault(a, []).append((b, weight))
        linked.setdefault(b, []).append((a, weight))
    for _ in range(4):
        for row in order:
            for i, v in enumerate(row):
                neighbours = linked.get(v)
                if not neighbours:
                    continue
                low, high = _weighted_median_interval(neighbours, x)
                target = sum(x[u] for u, _ in neighbours) / len(neighbours)
                target = min(max(target, low), high)
                if i > 0:
                    target = max(
                        target, x[row[i - 1]] + (widths[row[i - 1]] + widths[v]) / 2 + NODE_GAP
                    )
                if i + 1 < len(row):
                    target = min(
                        target, x[row[i + 1]] - (widths[row[i + 1]] + widths[v]) / 2 - NODE_GAP
                    )
                if low - 1e-6 <= target <= high + 1e-6:
                    x[v] = target


def _weighted_median_interval(
    neighbours: list[tuple[str, float]], x: dict[str, float]
) -> tuple[float, float]:
    """The interval of positions minimising ``sum(weight * |pos - x[u]|)``."""
    points = sorted((x[u], w) for u, w in neighbours)
    total = sum(w for _, w in points)
    acc = 0.0
    for k, (value, weight) in enumerate(points):
        acc += weight
        if acc > total / 2 + 1e-9:
            return value, value
        if abs(acc - total / 2) <= 1e-9:
            return value, points[k + 1][0]
    return points[-1][0], points[-1][0]


def _edge_polylines(
    chains: list[list[str]], boxes: dict[str, Box], x: dict[str, float], y: dict[str, float]
) -> list[list[tuple[float, float]]]:
    """Points of each edge: out of the source's bottom, through dummies, into the target's top.

    Edges into (or out of) one box get ports spread along its top (bottom) edge, in
    left-to-right order of where they come from, so merges show every input.
    """
    incoming: dict[str, list[int]] = {}
    outgoing: dict[str, list[int]] = {}
    for n, chain in enumerate(chains):
        outgoing.setdefault(chain[0], []).append(n)
        incoming.setdefault(chain[-1], []).append(n)

    def ports(box: Box, members: list[int], towards: list[float]) -> dict[int, float]:
        ranked = [m for _, m in sorted(zip(towards, members, strict=True))]
        k = len(ranked)
        step = min(18.0, box.width / (k + 1))
        return {m: box.x + (i - (k - 1) / 2) * step for i, m in enumerate(ranked)}

    start_x: dict[int, float] = {}
    end_x: dict[int, float] = {}
    for node, members in outgoing.items():
        start_x |= ports(boxes[node], members, [x[chains[m][1]] for m in members])
    for node, members in incoming.items():
        end_x |= ports(boxes[node], members, [x[chains[m][-2]] for m in members])
    polylines = []
    for n, chain in enumerate(chains):
        source, target = boxes[chain[0]], boxes[chain[-1]]
        points = [(start_x[n], source.y + source.height / 2)]
        for v in chain[1:-1]:  # a long edge runs straight down through each layer it skips
            points += [(x[v], y[v] - source.height / 2), (x[v], y[v] + source.height / 2)]
        points.append((end_x[n], target.y - target.height / 2))
        polylines.append(points)
    return polylines


def _bezier(points: list[tuple[float, float]]) -> list[tuple[tuple[float, float], ...]]:
    """Cubic segments with vertical tangents through ``points``: (p0, c1, c2, p1) each."""
    segments = []
    for (x0, y0), (x1, y1) in pairwise(points):
        dy = (y1 - y0) / 2
        segments.append(((x0, y0), (x0, y0 + dy), (x1, y1 - dy), (x1, y1)))
    return segments


# --------------------------------------------------------------------------- SVG


def _header(lay: Layout) -> list[tuple[str, tuple[float, str, str, str]]]:
    """Heading lines with (font px, weight, style, colour): title, subtitle, notes."""
    lines = [(lay.title, (14.0, "bold", "normal", "#212121"))]
    if lay.subtitle:
        lines.append((lay.subtitle, (12.0, "normal", "normal", "#616161")))
    lines += [(note, (12.0, "normal", "italic", "#b3261e")) for note in lay.notes]
    return lines


def diagram_svg(graph: ModelGraph) -> str:
    """The graph as a standalone SVG document (hover a box for its details)."""
    lay = layout_graph(graph)
    esc = html.escape
    out = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{lay.width:.0f}" '
        f'height="{lay.height:.0f}" viewBox="0 0 {lay.width:.1f} {lay.height:.1f}" '
        f'font-family="{FONT_FAMILY}" font-size="{FONT_PX:g}">',
        f"<title>{esc(lay.title)}</title>",
        "<defs>"
        '<marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" '
        f'markerHeight="7" orient="auto"><path d="M0,0 L10,5 L0,10 z" fill="{EDGE_COLOR}"/></marker>'
        "</defs>",
        f'<rect x="0" y="0" width="{lay.width:.1f}" height="{lay.height:.1f}" fill="white"/>',
    ]
    for n, (line, style) in enumerate(_header(lay)):
        size, weight, italic, color = style
        out.append(
            f'<text x="{lay.width / 2:.1f}" y="{MARGIN + 12 + HEADER_LINE * n:.1f}" '
            f'text-anchor="middle" font-size="{size:g}" font-weight="{weight}" '
            f'font-style="{italic}" fill="{color}">{esc(line)}</text>'
        )
    out.append(f'<g fill="none" stroke="{EDGE_COLOR}" stroke-width="1.3">')
    for points in lay.edges:
        segments = _bezier(points)
        d = f"M{segments[0][0][0]:.1f},{segments[0][0][1]:.1f}"
        for _, c1, c2, p1 in segments:
            d += f" C{c1[0]:.1f},{c1[1]:.1f} {c2[0]:.1f},{c2[1]:.1f} {p1[0]:.1f},{p1[1]:.1f}"
        out.append(f'<path d="{d}" marker-end="url(#arrow)"/>')
    out.append("</g>")
    for box in lay.boxes.values():
        fill, stroke = PALETTE[box.kind]
        left, top = box.x - box.width / 2, box.y - box.height / 2
        dash = ' stroke-dasharray="4,3"' if box.kind == "dropout" else ""
        out.append(f'<g class="node {box.kind}" id="node-{esc(box.id, quote=True)}">')
        out.append(f"<title>{esc(box.tooltip)}</title>")
        if box.collapsed:  # a stacked look: this box holds more layers
            out.append(
                f'<rect x="{left + 4:.1f}" y="{top + 4:.1f}" width="{box.width:.1f}" '
                f'height="{box.height:.1f}" rx="6" fill="{fill}" stroke="{stroke}"/>'
            )
        out.append(
            f'<rect x="{left:.1f}" y="{top:.1f}" width="{box.width:.1f}" height="{box.height:.1f}" '
            f'rx="6" fill="{fill}" stroke="{stroke}" stroke-width="1.4"{dash}/>'
        )
        name, kind, detail = box.lines
        base = box.y - LINE_PX + 4
        out.append(
            f'<text x="{box.x:.1f}" y="{base:.1f}" text-anchor="middle" font-weight="bold" '
            f'fill="#111">{esc(name)}</text>'
        )
        out.append(
            f'<text x="{box.x:.1f}" y="{base + LINE_PX:.1f}" text-anchor="middle" '
            f'fill="{stroke}">{esc(kind)}</text>'
        )
        out.append(
            f'<text x="{box.x:.1f}" y="{base + 2 * LINE_PX:.1f}" text-anchor="middle" '
            f'fill="#444">{esc(detail)}</text>'
        )
        out.append("</g>")
    out.append("</svg>")
    return "\n".join(out) + "\n"


# --------------------------------------------------------------------------- matplotlib


def diagram_figure(graph: ModelGraph) -> Figure:
    """The same layout as :func:`diagram_svg`, drawn with matplotlib (PNG/PDF output)."""
    from matplotlib.patches import FancyArrowPatch, FancyBboxPatch
    from matplotlib.path import Path as MplPath

    lay = layout_graph(graph)
    fig = Figure(figsize=(lay.width / PX_PER_INCH, lay.height / PX_PER_INCH))
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(0, lay.width)
    ax.set_ylim(lay.height, 0)
    ax.set_axis_off()
    pt = 72.0 / PX_PER_INCH  # points per layout pixel
    for n, (line, (size, weight, italic, color)) in enumerate(_header(lay)):
        ax.text(lay.width / 2, MARGIN + 12 + HEADER_LINE * n, line, ha="center", va="baseline",
                fontsize=size * pt, weight=weight, style=italic, color=color)  # fmt: skip
    for points in lay.edges:
        segments = _bezier(points)
        verts = [segments[0][0]]
        codes = [MplPath.MOVETO]
        for _, c1, c2, p1 in segments:
            verts += [c1, c2, p1]
            codes += [MplPath.CURVE4] * 3
        ax.add_patch(
            FancyArrowPatch(
                path=MplPath(verts, codes),
                arrowstyle="-|>",
                mutation_scale=9,
                linewidth=1.3 * pt,
                color=EDGE_COLOR,
            )
        )
    for box in lay.boxes.values():
        fill, stroke = PALETTE[box.kind]
        left, top = box.x - box.width / 2, box.y - box.height / 2
        shifts = [4.0, 0.0] if box.collapsed else [0.0]
        for shift in shifts:
            ax.add_patch(
                FancyBboxPatch(
                    (left + shift, top + shift),
                    box.width,
                    box.height,
                    boxstyle="round,pad=0,rounding_size=6",
                    facecolor=fill,
                    edgecolor=stroke,
                    linewidth=1.4 * pt,
                    linestyle="--" if box.kind == "dropout" else "-",
                )
            )
        name, kind, detail = box.lines
        base = box.y - LINE_PX
        size = FONT_PX * pt
        ax.text(box.x, base, name, ha="center", va="center", fontsize=size, weight="bold",
                color="#111")  # fmt: skip
        ax.text(box.x, base + LINE_PX, kind, ha="center", va="center", fontsize=size, color=stroke)
        ax.text(box.x, base + 2 * LINE_PX, detail, ha="center", va="center", fontsize=size,
                color="#444")  # fmt: skip
    return fig


# --------------------------------------------------------------------------- DOT


def diagram_dot(graph: ModelGraph) -> str:
    """Graphviz DOT source of the graph, with the same colours and box text."""

    def quote(text: str) -> str:
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'

    lines = [
        f"digraph {quote(graph.model)} {{",
        "  rankdir=TB;",
        f"  label={quote(' — '.join(p for p in (*_title(graph), graph.note or '') if p))};",
        "  labelloc=t;",
        '  node [shape=box, style="rounded,filled", fontname="DejaVu Sans", fontsize=10];',
        f'  edge [color="{EDGE_COLOR}"];',
    ]
    for node in graph.nodes:
        fill, stroke = PALETTE[node_kind(node)]
        label = "\\n".join(
            part.replace("\\", "\\\\").replace('"', '\\"') for part in node_lines(node) if part
        )
        lines.append(f'  {quote(node.id)} [label="{label}", fillcolor="{fill}", color="{stroke}"];')
    lines += [f"  {quote(a)} -> {quote(b)};" for a, b in graph.edges]
    lines.append("}")
    return "\n".join(lines) + "\n"
