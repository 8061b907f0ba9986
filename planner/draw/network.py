"""The network figure (`planner draw`): one box per layer in data-flow order, left to right in rows,
each box as tall as its output is large (as U-Net figures do), with the data flow as edges."""

from __future__ import annotations

import math
from dataclasses import dataclass

from planner.draw.figures import FAMILIES, Param, figure, shape_text
from planner.draw.svg import attrs, document, el, num, xml, xml_id
from planner.graph import Network
from planner.plan import LayerPlan, Plan
from planner.report.escape import visible

Label = list[tuple[str, list[Param]]]  # a box's lines: (class, [(text, solved)])

_NETWORK_STYLE = """
.background { fill: #ffffff; }
.title { font-size: 17px; font-weight: bold; fill: #222; }
.subtitle { font-size: 12px; fill: #444; }
.box { stroke-width: 1.4; }
.conv .box { fill: #dbe7f5; stroke: #4e79a7; }
.transpose .box { fill: #fde3c8; stroke: #e07b1a; }
.pool .box { fill: #f9d6d6; stroke: #d1484b; }
.resize .box { fill: #eadff0; stroke: #9467a8; }
.merge .box { fill: #dcefd8; stroke: #4f9a45; }
.dense .box { fill: #d8eeec; stroke: #3f9890; }
.pointwise .box { fill: #f1f0ee; stroke: #a39c96; }
.input .box { fill: #ffffff; stroke: #555; stroke-dasharray: 4 2; }
.name { font-size: 12px; font-weight: bold; fill: #1a1a1a; }
.op { font-size: 10.5px; fill: #555; font-style: italic; }
.shape { font-size: 11px; fill: #1a1a1a; }
.param { font-size: 10.5px; fill: #333; }
.solved { fill: #b3261e; font-weight: bold; }
.edge, .key { fill: none; stroke: #666; stroke-width: 1.3; }
.edge.skip, .key.skip { stroke: #4f9a45; stroke-width: 1.8; stroke-opacity: 0.8; }
.edge.like, .key.like { stroke: #9467a8; stroke-width: 1.3; stroke-dasharray: 5 3; stroke-opacity: 0.9; }
.legend { font-size: 11px; fill: #333; }
"""

BOX_W, POINTWISE_W, GAP_X = 132, 104, 30
H_MIN, H_MAX = 64, 220
LINE_H = 13.5
ARC_ROOM = 56  # above each row, for the arcs of skip connections within the row
ROW_GAP = 34
CARRIAGE = 10  # the carriage-return line, below each row
LANE_TOP, LANE = 20, 7  # lanes of the edges between rows, below the carriage return
MARGIN = 24


@dataclass
class _Box:
    key: str  # layer name, or "input"
    x: float
    y: float  # top
    w: float
    h: float
    row: int
    col: int

    @property
    def cx(self) -> float:
        return self.x + self.w / 2

    @property
    def cy(self) -> float:
        return self.y + self.h / 2


def draw_network(network: Network, plan: Plan, *, columns: int | None = None) -> str:
    """An SVG of the whole plan: one `<g class="layer">` box per layer in data-flow order, left to right
    in rows of `columns` boxes, each as tall as its output is large, with the data flow as edges
    (skip connections and crop sizes as curved edges routed between the rows)."""
    layers = plan.layers
    keys = ["input", *(ly.name for ly in layers)]
    if columns is None:  # rows about three times as wide as they are many, and evenly filled
        widest = max(6, min(12, math.ceil(math.sqrt(len(keys) * 3))))
        columns = math.ceil(len(keys) / math.ceil(len(keys) / widest))
    columns = max(1, min(columns, len(keys)))
    labels = {"input": _input_label(plan), **{ly.name: _layer_label(ly) for ly in layers}}
    shapes = {"input": plan.input_shape, **{ly.name: ly.output_shape for ly in layers}}
    families = {"input": "input", **{ly.name: figure(ly.op).family for ly in layers}}
    place = {key: divmod(n, columns) for n, key in enumerate(keys)}  # (row, column)

    edges = []  # (source, target, kind)
    for layer in layers:
        data = layer.inputs[: figure(layer.op).data_inputs]
        for source in layer.inputs:
            adjacent = keys.index(source) == keys.index(layer.name) - 1
            edges.append((source, layer.name, "like" if source not in data else "flow" if adjacent else "skip"))
    routed = [e for e in edges if place[e[0]][0] != place[e[1]][0] and not (e[2] == "flow" and place[e[1]][1] == 0)]
    row_gap = max(ROW_GAP, LANE_TOP + LANE * len(routed) + 8)

    biggest = max((_spatial(s) for s in shapes.values()), default=1) or 1
    heights = {}
    for key in keys:
        size = _spatial(shapes[key])
        scaled = H_MIN + (H_MAX - H_MIN) * size / biggest if size else H_MIN * 0.8
        heights[key] = max(scaled, _text_height(labels[key]))
    widths = {
        key: max(POINTWISE_W if families[key] == "pointwise" else BOX_W, _text_width(labels[key])) for key in keys
    }

    header = _network_header(network, plan, biggest)
    top: float = MARGIN + 24 + 18 * (len(header) - 1) + 34  # below the legend; header lines are wrapped below
    boxes: dict[str, _Box] = {}
    rows = [keys[i : i + columns] for i in range(0, len(keys), columns)]
    right = 0.0
    row_bottom = []
    for r, row in enumerate(rows):
        tallest = max(heights[k] for k in row)
        centre = top + ARC_ROOM + tallest / 2
        x: float = MARGIN
        for c, key in enumerate(row):
            boxes[key] = _Box(key, x, centre - heights[key] / 2, widths[key], heights[key], r, c)
            x += widths[key] + GAP_X
        right = max(right, x - GAP_X)
        row_bottom.append(centre + tallest / 2)
        top = centre + tallest / 2 + row_gap
    lanes = {edge: n for n, edge in enumerate(routed)}
    width = max(right + GAP_X / 2 + LANE * len(routed) + MARGIN + 8, 2 * MARGIN + 6.7 * max(map(len, header[1:])), 640)
    height = top - row_gap + MARGIN + 8

    paths = [
        _edge(boxes[src], boxes[dst], kind, row_bottom, right, lanes.get((src, dst, kind))) for src, dst, kind in edges
    ]
    body = [*_network_legend(header, set(families.values()), {kind for *_, kind in edges})]
    body += ['<g class="edges">', *paths, "</g>"]
    body.append(_input_box(boxes["input"], labels["input"]))
    for layer in layers:
        body.append(_layer_box(layer, boxes[layer.name], families[layer.name], labels[layer.name]))
    defs = ["<defs>"]
    for marker, colour in (("arrow", "#666"), ("arrow-skip", "#4f9a45"), ("arrow-like", "#9467a8")):
        defs.append(
            f'<marker id="{marker}" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" '
            f'orient="auto"><path d="M 0 0 L 10 5 L 0 10 z" fill="{colour}"/></marker>'
        )
    defs.append("</defs>")
    return document(width, height, _NETWORK_STYLE, [*defs, *body], f"{network.name}: network plan")


def _spatial(shape: tuple[int, ...]) -> float:
    """The size a box's height shows: the largest spatial extent (0 for [N, features])."""
    return max(shape[2:], default=0)


def _text_width(label: Label) -> float:
    return 14 + 7 * max(sum(len(text) + 1 for text, _ in pieces) for _, pieces in label)


def _text_height(label: Label) -> float:
    return 10 + LINE_H * len(label)


def _input_label(plan: Plan) -> Label:
    label: Label = [("name", [("input", False)]), ("shape", [(shape_text(plan.input_shape), False)])]
    if plan.for_all:
        label.append(("param", [("for_all sizes", False)]))
    return label


def _layer_label(layer: LayerPlan) -> Label:
    """Lines of (class, [(text, solved)]) for a layer's box."""
    name = visible(layer.name)  # measured as it is shown
    name = name if len(name) <= 18 else name[:17] + "…"
    lines: Label = [
        ("name", [(name, False)]),
        ("op", [(layer.op, False)]),
        ("shape", [(shape_text(layer.output_shape), False)]),
    ]
    line: list[Param] = []
    used = 0
    for text, solved in figure(layer.op).params(layer):
        size = len(text) + solved + 1
        if line and used + size > 21:
            lines.append(("param", line))
            line, used = [], 0
        line.append((text, solved))
        used += size
    if line:
        lines.append(("param", line))
    return lines


def _network_header(network: Network, plan: Plan, biggest: float) -> list[str]:
    """The title and the lines under it (wrapped to about 150 characters)."""
    lines = [visible(f"{network.name} — {network.file}")]  # shown before measured
    solved = [visible(f"{name} = {value}") for name, value in plan.assignment.items()]
    line = "solved by planner: " if solved else "nothing to solve: every value was given"
    for n, item in enumerate(solved):
        if len(line) + len(item) > 150:
            lines.append(line.rstrip())
            line = "    "
        line += item + (", " if n < len(solved) - 1 else "")
    lines.append(line)
    if plan.for_all:
        lines.append(
            "one plan for every input size of the spec's for_all axes; drawn at " + shape_text(plan.input_shape)
        )
    lines.append(f"box height grows with the largest spatial size (up to {biggest:g}); * marks a value planner solved")
    return lines


def _network_legend(header: list[str], families: set[str], edges: set[str]) -> list[str]:
    out = [el("text", header[0], class_="title", x=MARGIN, y=MARGIN + 14)]
    for n, line in enumerate(header[1:]):
        out.append(el("text", line, class_="subtitle", x=MARGIN, y=MARGIN + 36 + 18 * n))
    y = MARGIN + 36 + 18 * (len(header) - 1) + 4
    x: float = MARGIN
    for family, text in FAMILIES.items():
        if family not in families:
            continue
        out.append(
            f'<g class="{family}">'
            + el("rect", class_="box", x=x, y=y, width=14, height=11, rx=2)
            + el("text", text, class_="legend", x=x + 19, y=y + 10)
            + "</g>"
        )
        x += 19 + 6.6 * len(text) + 18
    for kind, text in (("skip", "skip connection / concat input"), ("like", "crop to the size of")):
        if kind in edges:
            out.append(f'<path class="key {kind}" d="M {x} {y + 6} L {x + 26} {y + 6}"/>')
            out.append(el("text", text, class_="legend", x=x + 32, y=y + 10))
            x += 32 + 6.6 * len(text) + 18
    return out


def _input_box(box: _Box, label: Label) -> str:
    return f"<g{attrs({'class': 'input', 'id': 'input'})}>" + _box_body(box, label) + "</g>"


def _layer_box(layer: LayerPlan, box: _Box, family: str, label: Label) -> str:
    """A layer's `<g class="layer">`: its tooltip (the shapes and every parameter), its box and its label."""
    tip = visible(f"{layer.name}: {layer.op} {shape_text(layer.input_shape)} → {shape_text(layer.output_shape)}")
    if layer.params:
        tip += "\n" + visible(
            ", ".join(f"{k}={_plain(v)}{'*' if k in layer.solved else ''}" for k, v in layer.params.items())
        )
    return (
        f"<g{attrs({'class': f'layer {family}', 'id': f'layer-{xml_id(layer.name)}'})}>"
        + el("title", tip, lines=True)  # the tooltip's two lines
        + _box_body(box, label)
        + "</g>"
    )


def _box_body(box: _Box, label: Label) -> str:
    parts = [el("rect", class_="box", x=box.x, y=box.y, width=box.w, height=box.h, rx=5)]
    y = box.cy - LINE_H * len(label) / 2 + 10
    for cls, pieces in label:
        spans = []
        for n, (text, solved) in enumerate(pieces):
            sep = " " if n else ""
            spans.append(xml(sep + text) + ('<tspan class="solved">*</tspan>' if solved else ""))
        parts.append(f'<text class="{cls}" x="{num(box.cx)}" y="{num(y)}" text-anchor="middle">{"".join(spans)}</text>')
        y += LINE_H
    return "".join(parts)


def _plain(value: object) -> str:
    if isinstance(value, (tuple, list)):
        return "(" + ",".join(_plain(v) for v in value) + ")"
    return str(value)


def _edge(a: _Box, b: _Box, kind: str, row_bottom: list[float], right: float, lane: int | None) -> str:
    """A path from box a to box b: straight between neighbours, a carriage return across a row break,
    an arc above the row within a row; between rows, a rounded path along its own lane in the gaps
    between the rows (and the gutter on the right), so that it never crosses a box."""
    marker = {"flow": "arrow", "skip": "arrow-skip", "like": "arrow-like"}[kind]
    if a.row == b.row and b.col == a.col + 1:
        d = f"M {num(a.x + a.w)} {num(b.cy)} L {num(b.x - 1)} {num(b.cy)}"
    elif a.row == b.row:
        lift = min(ARC_ROOM - 6, 18 + (b.cx - a.cx) * 0.05)
        top = min(a.y, b.y) - lift
        d = f"M {num(a.cx)} {num(a.y)} C {num(a.cx)} {num(top)}, {num(b.cx)} {num(top)}, {num(b.cx)} {num(b.y - 1)}"
    elif lane is None:  # the flow's carriage return to the start of the next row
        mid = row_bottom[a.row] + CARRIAGE
        d = _rounded(
            [
                (a.x + a.w, a.cy),
                (a.x + a.w + GAP_X / 2, a.cy),
                (a.x + a.w + GAP_X / 2, mid),
                (b.x - GAP_X / 2 + 4, mid),
                (b.x - GAP_X / 2 + 4, b.cy),
                (b.x - 1, b.cy),
            ]
        )
    else:
        exit_y = row_bottom[a.row] + LANE_TOP + LANE * lane
        entry_y = row_bottom[b.row - 1] + LANE_TOP + LANE * lane
        x_out, x_in = a.cx + 8 - (lane % 3) * 8, b.cx + 8 - (lane % 3) * 8
        if b.row == a.row + 1:
            points = [(x_out, a.y + a.h), (x_out, exit_y), (x_in, exit_y), (x_in, b.y - 1)]
        else:
            gutter = right + GAP_X / 2 + 6 + LANE * lane
            points = [
                (x_out, a.y + a.h),
                (x_out, exit_y),
                (gutter, exit_y),
                (gutter, entry_y),
                (x_in, entry_y),
                (x_in, b.y - 1),
            ]
        d = _rounded(points)
    return f'<path class="edge {kind}" d="{d}" marker-end="url(#{marker})"/>'


def _rounded(points: list[tuple[float, float]], radius: float = 9) -> str:
    """An orthogonal polyline with its corners rounded."""
    d = [f"M {num(points[0][0])} {num(points[0][1])}"]
    for (x0, y0), (x1, y1), (x2, y2) in zip(points, points[1:], points[2:], strict=False):
        r = min(radius, math.dist((x0, y0), (x1, y1)) / 2, math.dist((x1, y1), (x2, y2)) / 2)
        ax, ay = _towards(x1, y1, x0, y0, r)
        bx, by = _towards(x1, y1, x2, y2, r)
        d.append(f"L {num(ax)} {num(ay)} Q {num(x1)} {num(y1)} {num(bx)} {num(by)}")
    d.append(f"L {num(points[-1][0])} {num(points[-1][1])}")
    return " ".join(d)


def _towards(x: float, y: float, tx: float, ty: float, r: float) -> tuple[float, float]:
    length = math.dist((x, y), (tx, ty)) or 1
    return x + (tx - x) * r / length, y + (ty - y) * r / length
