"""What both layouts of the network figure are built from: the style, one box per layer (its label,
its tooltip), the header and legend, rounded orthogonal paths, and the assembled document."""

from __future__ import annotations

import math
from dataclasses import dataclass

from planner.draw.figures import FAMILIES, Param, figure, shape_text
from planner.draw.svg import attrs, document, el, num, xml, xml_id
from planner.graph import Network
from planner.plan import LayerPlan, Plan
from planner.report.escape import visible

Label = list[tuple[str, list[Param]]]  # a box's lines: (class, [(text, solved)])

STYLE = """
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
.small .op { font-size: 10px; }
"""

BOX_W, POINTWISE_W = 132, 104
H_MIN, H_MAX = 64, 220
LINE_H = 13.5
MARGIN = 24
SMALL_H = 26  # a shape-preserving layer drawn small (the U-Net layout): one line, its op


@dataclass
class Box:
    key: str  # layer name, or "input"
    x: float
    y: float  # top
    w: float
    h: float
    row: int = 0
    col: int = 0

    @property
    def cx(self) -> float:
        return self.x + self.w / 2

    @property
    def cy(self) -> float:
        return self.y + self.h / 2

    @property
    def right(self) -> float:
        return self.x + self.w

    @property
    def bottom(self) -> float:
        return self.y + self.h


def spatial(shape: tuple[int, ...]) -> float:
    """The size a box's height shows: the largest spatial extent (0 for [N, features])."""
    return max(shape[2:], default=0)


def text_width(label: Label) -> float:
    return 14 + 7 * max(sum(len(text) + 1 for text, _ in pieces) for _, pieces in label)


def text_height(label: Label) -> float:
    return 10 + LINE_H * len(label)


def input_label(plan: Plan) -> Label:
    label: Label = [("name", [("input", False)]), ("shape", [(shape_text(plan.input_shape), False)])]
    if plan.for_all:
        label.append(("param", [("for_all sizes", False)]))
    return label


def layer_label(layer: LayerPlan) -> Label:
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


def network_header(network: Network, plan: Plan, biggest: float) -> list[str]:
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


def network_legend(header: list[str], families: set[str], edges: set[str]) -> list[str]:
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


def input_box(box: Box, label: Label) -> str:
    return f"<g{attrs({'class': 'input', 'id': 'input'})}>" + box_body(box, label) + "</g>"


def layer_box(layer: LayerPlan, box: Box, family: str, label: Label) -> str:
    """A layer's `<g class="layer">`: its tooltip (the shapes and every parameter), its box and its label."""
    tip = visible(f"{layer.name}: {layer.op} {shape_text(layer.input_shape)} → {shape_text(layer.output_shape)}")
    if layer.params:
        tip += "\n" + visible(
            ", ".join(f"{k}={_plain(v)}{'*' if k in layer.solved else ''}" for k, v in layer.params.items())
        )
    return (
        f"<g{attrs({'class': f'layer {family}', 'id': f'layer-{xml_id(layer.name)}'})}>"
        + el("title", tip, lines=True)  # the tooltip's two lines
        + box_body(box, label)
        + "</g>"
    )


def box_body(box: Box, label: Label) -> str:
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


def small_label(layer: LayerPlan) -> Label:
    """A shape-preserving layer drawn small: its op only (its name and shapes are in the tooltip)."""
    return [("op", [(layer.op, False)])]


def small_width(label: Label) -> float:
    return 12 + 6.2 * max(sum(len(text) + 1 for text, _ in pieces) for _, pieces in label)


def heights(keys: list[str], shapes: dict[str, tuple[int, ...]], labels: dict[str, Label]) -> dict[str, float]:
    """Each box's height: growing with its largest spatial size, from H_MIN to H_MAX, and tall enough for
    its label."""
    biggest = max((spatial(s) for s in shapes.values()), default=1) or 1
    out = {}
    for key in keys:
        size = spatial(shapes[key])
        scaled = H_MIN + (H_MAX - H_MIN) * size / biggest if size else H_MIN * 0.8
        out[key] = max(scaled, text_height(labels[key]))
    return out


def compose(
    network: Network,
    plan: Plan,
    header: list[str],
    size: tuple[float, float],
    boxes: dict[str, Box],
    labels: dict[str, Label],
    families: dict[str, str],
    paths: list[str],
    kinds: set[str],
) -> str:
    """The figure: the title, header and legend, the edges (`paths`) under the boxes, and the markers."""
    body = [*network_legend(header, set(families.values()), kinds)]
    body += ['<g class="edges">', *paths, "</g>"]
    body.append(input_box(boxes["input"], labels["input"]))
    for layer in plan.layers:
        body.append(layer_box(layer, boxes[layer.name], families[layer.name], labels[layer.name]))
    defs = ["<defs>"]
    for marker, colour in (("arrow", "#666"), ("arrow-skip", "#4f9a45"), ("arrow-like", "#9467a8")):
        defs.append(
            f'<marker id="{marker}" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" '
            f'orient="auto"><path d="M 0 0 L 10 5 L 0 10 z" fill="{colour}"/></marker>'
        )
    defs.append("</defs>")
    return document(size[0], size[1], STYLE, [*defs, *body], f"{network.name}: network plan")


def header_height(header: list[str]) -> float:
    """Where the layout starts: below the title, the header lines and the legend."""
    return MARGIN + 24 + 18 * (len(header) - 1) + 34


def path_element(d: str, kind: str) -> str:
    """One edge: `kind` is flow, skip or like (a crop's size), each with its own colour and arrow."""
    marker = {"flow": "arrow", "skip": "arrow-skip", "like": "arrow-like"}[kind]
    return f'<path class="edge {kind}" d="{d}" marker-end="url(#{marker})"/>'


def edge_kinds(plan: Plan) -> list[tuple[str, str, str]]:
    """(source, target, kind) for every input of every layer: `flow` from the layer just before, `skip` from
    further back, `like` for an input that only gives a size (a crop's `like`)."""
    keys = ["input", *(ly.name for ly in plan.layers)]
    position = {key: n for n, key in enumerate(keys)}
    edges = []
    for layer in plan.layers:
        data = layer.inputs[: figure(layer.op).data_inputs]
        for source in layer.inputs:
            adjacent = position[source] == position[layer.name] - 1
            edges.append((source, layer.name, "like" if source not in data else "flow" if adjacent else "skip"))
    return edges


def rounded(points: list[tuple[float, float]], radius: float = 9) -> str:
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
