"""SVG pictures of a plan (`planner draw`): the network's shapes, and one layer's arithmetic.

`draw_network` puts one box per layer in data-flow order, left to right in rows, each box as
tall as its output is large (as U-Net figures do), with the data flow as edges. `draw_layer`
draws one convolution or pooling layer in the style of Dumoulin & Visin's figures: the input
grid with its padding dashed, the kernel's footprint, the output grid, and a SMIL animation
stepping the kernel over the output positions. A transposed convolution is drawn as the guide
draws it: the equivalent direct convolution over the stretched, padded input.

Plain SVG 1.1 with a <style> element and SMIL; no dependency beyond the standard library.

Every text and attribute value is XML-escaped, after `escape.visible` has shown each character
XML 1.0 forbids or that is unsafe to show (NUL, ESC, lone surrogates from a file name that is not
UTF-8, U+FFFE, bidirectional overrides, ...) as an escape (`\\x1b`, `\\xff`, `\\ufffe`): the file is
always well-formed, whatever the spec's names and file name hold.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from xml.sax.saxutils import escape, quoteattr

from planner import arithmetic as ar
from planner.errors import UsageError
from planner.graph import Network
from planner.plan import LayerPlan, Plan
from planner.report.escape import visible

FONT = "DejaVu Sans, Helvetica, Arial, sans-serif"


def _attrs(attrs: dict) -> str:
    return "".join(f" {key.rstrip('_').replace('_', '-')}={quoteattr(visible(_num(value)))}"
                   for key, value in attrs.items() if value is not None)


def _xml(text: str, *, lines: bool = False) -> str:
    """Character data: shown (`visible`) and XML-escaped; with `lines`, its newlines are kept as line breaks."""
    if lines:
        return "\n".join(escape(visible(line)) for line in text.split("\n"))
    return escape(visible(text))


def _xml_id(key: str) -> str:
    """`key` in ASCII letters, digits, `_` and `-` (a valid id after a prefix): any other character as
    `-hex-`, so distinct keys keep distinct ids."""
    return re.sub(r"[^A-Za-z0-9_]", lambda m: f"-{ord(m.group()):x}-", key)


def _num(value) -> str:
    if isinstance(value, float):
        return f"{value:.1f}".rstrip("0").rstrip(".")
    return str(value)


def _el(tag: str, text: str | None = None, *, children: str = "", lines: bool = False, **attrs) -> str:
    """One element; `text` is shown and escaped (see `_xml`), `children` is markup."""
    if text is None and not children:
        return f"<{tag}{_attrs(attrs)}/>"
    return f"<{tag}{_attrs(attrs)}>{_xml(text or '', lines=lines)}{children}</{tag}>"


def _document(width: float, height: float, style: str, body: list[str], title: str) -> str:
    head = (f'<?xml version="1.0" encoding="UTF-8"?>\n'
            f'<svg xmlns="http://www.w3.org/2000/svg" version="1.1" width="{math.ceil(width)}" '
            f'height="{math.ceil(height)}" viewBox="0 0 {math.ceil(width)} {math.ceil(height)}" '
            f'font-family={quoteattr(FONT)}>')
    return "\n".join([head, _el("title", title), f"<style>{style}</style>",
                      _el("rect", class_="background", x=0, y=0, width=math.ceil(width), height=math.ceil(height)),
                      *body, "</svg>"]) + "\n"


# ===================================================================== the network

_FAMILY = {
    "conv": "conv", "conv_transpose": "transpose", "maxpool": "pool", "avgpool": "pool",
    "adaptive_avgpool": "pool", "upsample": "resize", "pad": "resize", "crop": "resize", "concat": "merge",
    "add": "merge", "flatten": "dense", "linear": "dense",
}
_FAMILY_LABEL = {"conv": "convolution", "transpose": "transposed convolution", "pool": "pooling",
                 "resize": "pad / crop / upsample", "merge": "concat / add", "dense": "flatten / linear",
                 "pointwise": "activation, norm, dropout"}
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
    ops = {"input": "input", **{ly.name: ly.op for ly in layers}}
    place = {key: divmod(n, columns) for n, key in enumerate(keys)}  # (row, column)

    edges = []  # (source, target, kind)
    for layer in layers:
        data = layer.inputs[:1] if layer.op == "crop" else layer.inputs
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
    widths = {key: max(POINTWISE_W if _family(ops[key]) == "pointwise" else BOX_W, _text_width(labels[key]))
              for key in keys}

    header = _network_header(network, plan, biggest)
    top = MARGIN + 24 + 18 * (len(header) - 1) + 34  # below the legend; header lines are wrapped below
    boxes: dict[str, _Box] = {}
    rows = [keys[i:i + columns] for i in range(0, len(keys), columns)]
    right = 0.0
    row_bottom = []
    for r, row in enumerate(rows):
        tallest = max(heights[k] for k in row)
        centre = top + ARC_ROOM + tallest / 2
        x = MARGIN
        for c, key in enumerate(row):
            boxes[key] = _Box(key, x, centre - heights[key] / 2, widths[key], heights[key], r, c)
            x += widths[key] + GAP_X
        right = max(right, x - GAP_X)
        row_bottom.append(centre + tallest / 2)
        top = centre + tallest / 2 + row_gap
    lanes = {edge: n for n, edge in enumerate(routed)}
    width = max(right + GAP_X / 2 + LANE * len(routed) + MARGIN + 8, 2 * MARGIN + 6.7 * max(map(len, header[1:])),
                640)
    height = top - row_gap + MARGIN + 8

    paths = [_edge(boxes[src], boxes[dst], kind, row_bottom, right, lanes.get((src, dst, kind)))
             for src, dst, kind in edges]
    body = [*_network_legend(header, {_family(op) for op in ops.values()}, {kind for *_, kind in edges})]
    body += ['<g class="edges">', *paths, "</g>"]
    for key in keys:
        body.append(_layer_box(key, boxes[key], ops[key], labels[key], key != "input", plan))
    defs = ["<defs>"]
    for marker, colour in (("arrow", "#666"), ("arrow-skip", "#4f9a45"), ("arrow-like", "#9467a8")):
        defs.append(f'<marker id="{marker}" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" '
                    f'orient="auto"><path d="M 0 0 L 10 5 L 0 10 z" fill="{colour}"/></marker>')
    defs.append("</defs>")
    return _document(width, height, _NETWORK_STYLE, [*defs, *body], f"{network.name}: network plan")


def _family(op: str) -> str:
    return "input" if op == "input" else _FAMILY.get(op, "pointwise")


def _spatial(shape: tuple[int, ...]) -> float:
    """The size a box's height shows: the largest spatial extent (0 for [N, features])."""
    return max(shape[2:], default=0)


def _text_width(label: list[tuple[str, list[tuple[str, bool]]]]) -> float:
    return 14 + 7 * max(sum(len(text) + 1 for text, _ in pieces) for _, pieces in label)


def _text_height(label: list[tuple[str, list[tuple[str, bool]]]]) -> float:
    return 10 + LINE_H * len(label)


def _input_label(plan: Plan) -> list[tuple[str, list[tuple[str, bool]]]]:
    label = [("name", [("input", False)]), ("shape", [(_shape(plan.input_shape), False)])]
    if plan.for_all:
        label.append(("param", [("for_all sizes", False)]))
    return label


def _layer_label(layer: LayerPlan) -> list[tuple[str, list[tuple[str, bool]]]]:
    """Lines of (class, [(text, solved)]) for a layer's box."""
    name = visible(layer.name)  # measured as it is shown
    name = name if len(name) <= 18 else name[:17] + "…"
    lines = [("name", [(name, False)]), ("op", [(layer.op, False)]), ("shape", [(_shape(layer.output_shape), False)])]
    line: list[tuple[str, bool]] = []
    used = 0
    for text, solved in _key_params(layer):
        size = len(text) + solved + 1
        if line and used + size > 21:
            lines.append(("param", line))
            line, used = [], 0
        line.append((text, solved))
        used += size
    if line:
        lines.append(("param", line))
    return lines


def _shape(shape: tuple[int, ...]) -> str:
    return "×".join(str(n) for n in shape)


def _key_params(layer: LayerPlan) -> list[tuple[str, bool]]:
    """The parameters worth a box: (text, whether planner solved it)."""
    p, solved, op = layer.params, layer.solved, layer.op
    out = []

    def add(key: str, short: str, value: str, show: bool) -> None:
        if show or key in solved:
            out.append((f"{short}={value}", key in solved))

    if op in ("conv", "conv_transpose", "maxpool", "avgpool"):
        add("kernel", "k", _per_axis(p["kernel"]), True)
        add("stride", "s", _per_axis(p["stride"]), tuple(p["stride"]) != (1,) * len(p["stride"])
            if op.startswith("conv") else tuple(p["stride"]) != tuple(p["kernel"]))
        add("padding", "p", _pads(p["padding"]), any(b or e for b, e in p["padding"]))
        if "dilation" in p:
            add("dilation", "d", _per_axis(p["dilation"]), any(d != 1 for d in p["dilation"]))
        if "output_padding" in p:
            add("output_padding", "a", _per_axis(p["output_padding"]), any(p["output_padding"]))
        if p.get("groups", 1) != 1:
            out.append((f"g={p['groups']}", False))
        if p.get("ceil_mode"):
            out.append(("ceil", False))
    elif op == "adaptive_avgpool":
        out.append((f"out={_per_axis(p['output_size'])}", False))
    elif op == "upsample":
        out.append((f"×{p['scale_factor']}" if p.get("scale_factor") else f"to {_per_axis(p['size'])}", False))
    elif op == "pad":
        out.append((f"p={_pads(p['padding'])}", "padding" in solved))
    elif op == "crop":
        out.append((f"offset {_per_axis(p['offset'])}", False))
    elif op == "linear":
        out.append((f"{p['in_features']}→{p['out_features']}", False))
    return out


def _per_axis(values) -> str:
    values = tuple(values)
    return str(values[0]) if len(set(values)) == 1 else "×".join(map(str, values))


def _pads(pairs) -> str:
    pairs = tuple(tuple(pair) for pair in pairs)
    if all(b == e for b, e in pairs):
        return _per_axis(b for b, _ in pairs)
    if len(set(pairs)) == 1:
        return f"({pairs[0][0]},{pairs[0][1]})"
    return "".join(f"({b},{e})" for b, e in pairs)


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
        lines.append("one plan for every input size of the spec's for_all axes; drawn at " + _shape(plan.input_shape))
    lines.append(f"box height grows with the largest spatial size (up to {biggest:g}); * marks a value planner solved")
    return lines


def _network_legend(header: list[str], families: set[str], edges: set[str]) -> list[str]:
    out = [_el("text", header[0], class_="title", x=MARGIN, y=MARGIN + 14)]
    for n, line in enumerate(header[1:]):
        out.append(_el("text", line, class_="subtitle", x=MARGIN, y=MARGIN + 36 + 18 * n))
    y = MARGIN + 36 + 18 * (len(header) - 1) + 4
    x = MARGIN
    for family, text in _FAMILY_LABEL.items():
        if family not in families:
            continue
        out.append(f'<g class="{family}">' + _el("rect", class_="box", x=x, y=y, width=14, height=11, rx=2)
                   + _el("text", text, class_="legend", x=x + 19, y=y + 10) + "</g>")
        x += 19 + 6.6 * len(text) + 18
    for kind, text in (("skip", "skip connection / concat input"), ("like", "crop to the size of")):
        if kind in edges:
            out.append(f'<path class="key {kind}" d="M {x} {y + 6} L {x + 26} {y + 6}"/>')
            out.append(_el("text", text, class_="legend", x=x + 32, y=y + 10))
            x += 32 + 6.6 * len(text) + 18
    return out


def _layer_box(key: str, box: _Box, op: str, label, is_layer: bool, plan: Plan) -> str:
    family = _family(op)
    attrs = {"class": f"layer {family}" if is_layer else "input",
             "id": f"layer-{_xml_id(key)}" if is_layer else "input"}
    parts = [f"<g{_attrs(attrs)}>"]
    if is_layer:
        layer = plan.layer(key)
        tip = visible(f"{key}: {op} {_shape(layer.input_shape)} → {_shape(layer.output_shape)}")
        if layer.params:
            tip += "\n" + visible(", ".join(f"{k}={_plain(v)}{'*' if k in layer.solved else ''}"
                                            for k, v in layer.params.items()))
        parts.append(_el("title", tip, lines=True))  # the tooltip's two lines
    parts.append(_el("rect", class_="box", x=box.x, y=box.y, width=box.w, height=box.h, rx=5))
    y = box.cy - LINE_H * len(label) / 2 + 10
    for cls, pieces in label:
        spans = []
        for n, (text, solved) in enumerate(pieces):
            sep = " " if n else ""
            spans.append(_xml(sep + text) + ('<tspan class="solved">*</tspan>' if solved else ""))
        parts.append(f'<text class="{cls}" x="{_num(box.cx)}" y="{_num(y)}" text-anchor="middle">'
                     f'{"".join(spans)}</text>')
        y += LINE_H
    parts.append("</g>")
    return "".join(parts)


def _plain(value) -> str:
    if isinstance(value, (tuple, list)):
        return "(" + ",".join(_plain(v) for v in value) + ")"
    return str(value)


def _edge(a: _Box, b: _Box, kind: str, row_bottom: list[float], right: float, lane: int | None) -> str:
    """A path from box a to box b: straight between neighbours, a carriage return across a row break,
    an arc above the row within a row; between rows, a rounded path along its own lane in the gaps
    between the rows (and the gutter on the right), so that it never crosses a box."""
    marker = {"flow": "arrow", "skip": "arrow-skip", "like": "arrow-like"}[kind]
    if a.row == b.row and b.col == a.col + 1:
        d = f"M {_num(a.x + a.w)} {_num(b.cy)} L {_num(b.x - 1)} {_num(b.cy)}"
    elif a.row == b.row:
        lift = min(ARC_ROOM - 6, 18 + (b.cx - a.cx) * 0.05)
        top = min(a.y, b.y) - lift
        d = (f"M {_num(a.cx)} {_num(a.y)} C {_num(a.cx)} {_num(top)}, {_num(b.cx)} {_num(top)}, "
             f"{_num(b.cx)} {_num(b.y - 1)}")
    elif lane is None:  # the flow's carriage return to the start of the next row
        mid = row_bottom[a.row] + CARRIAGE
        d = _rounded([(a.x + a.w, a.cy), (a.x + a.w + GAP_X / 2, a.cy), (a.x + a.w + GAP_X / 2, mid),
                      (b.x - GAP_X / 2 + 4, mid), (b.x - GAP_X / 2 + 4, b.cy), (b.x - 1, b.cy)])
    else:
        exit_y = row_bottom[a.row] + LANE_TOP + LANE * lane
        entry_y = row_bottom[b.row - 1] + LANE_TOP + LANE * lane
        x_out, x_in = a.cx + 8 - (lane % 3) * 8, b.cx + 8 - (lane % 3) * 8
        if b.row == a.row + 1:
            points = [(x_out, a.y + a.h), (x_out, exit_y), (x_in, exit_y), (x_in, b.y - 1)]
        else:
            gutter = right + GAP_X / 2 + 6 + LANE * lane
            points = [(x_out, a.y + a.h), (x_out, exit_y), (gutter, exit_y), (gutter, entry_y), (x_in, entry_y),
                      (x_in, b.y - 1)]
        d = _rounded(points)
    return f'<path class="edge {kind}" d="{d}" marker-end="url(#{marker})"/>'


def _rounded(points: list[tuple[float, float]], radius: float = 9) -> str:
    """An orthogonal polyline with its corners rounded."""
    d = [f"M {_num(points[0][0])} {_num(points[0][1])}"]
    for (x0, y0), (x1, y1), (x2, y2) in zip(points, points[1:], points[2:], strict=False):
        r = min(radius, math.dist((x0, y0), (x1, y1)) / 2, math.dist((x1, y1), (x2, y2)) / 2)
        ax, ay = _towards(x1, y1, x0, y0, r)
        bx, by = _towards(x1, y1, x2, y2, r)
        d.append(f"L {_num(ax)} {_num(ay)} Q {_num(x1)} {_num(y1)} {_num(bx)} {_num(by)}")
    d.append(f"L {_num(points[-1][0])} {_num(points[-1][1])}")
    return " ".join(d)


def _towards(x: float, y: float, tx: float, ty: float, r: float) -> tuple[float, float]:
    length = math.dist((x, y), (tx, ty)) or 1
    return x + (tx - x) * r / length, y + (ty - y) * r / length


# ===================================================================== one layer

KERNEL_OPS = ("conv", "conv_transpose", "maxpool", "avgpool")
VIEW = 16  # cells per axis drawn before the view is clipped
_LAYER_STYLE = """
.background { fill: #ffffff; }
.title { font-size: 16px; font-weight: bold; fill: #222; }
.formula { font-size: 12.5px; fill: #333; }
.note { font-size: 11.5px; fill: #666; font-style: italic; }
.caption { font-size: 12.5px; fill: #222; font-weight: bold; }
.cell, .swatch { stroke-width: 1; }
.cell.input, .swatch.input { fill: #8fb9e3; stroke: #2f5f8f; }
.cell.pad, .swatch.pad { fill: #ffffff; stroke: #8a8a8a; stroke-dasharray: 3 2; }
.cell.zero, .swatch.zero { fill: #f4f4f4; stroke: #9a9a9a; stroke-dasharray: 1 2; }
.cell.output, .swatch.output { fill: #aee3dc; stroke: #24877b; }
.tap, .swatch.kernel-tap { fill: #163d66; fill-opacity: 0.55; stroke: #0b2540; stroke-width: 1.4; }
.footprint { fill: none; stroke: #0b2540; stroke-width: 1.4; stroke-dasharray: 4 3; }
.current, .swatch.current-cell { fill: #1f7a6f; fill-opacity: 0.8; stroke: #0d4740; stroke-width: 1.5; }
.ellipsis { font-size: 18px; fill: #666; }
.legend { font-size: 11.5px; fill: #333; }
.arrow { fill: none; stroke: #777; stroke-width: 1.6; }
.bracket { fill: none; stroke: #888; stroke-width: 1; }
.segment { font-size: 11px; fill: #444; }
"""


@dataclass(frozen=True)
class _Axis:
    """One spatial axis of the picture: the padded (stretched) input cells and how the kernel steps."""

    kinds: tuple[str, ...]  # per cell: "pad", "input" or "zero"
    kernel: int
    dilation: int
    step: int
    outputs: int
    formula: tuple[str, ...]  # the arithmetic, one line each
    segments: tuple[tuple[str, int], ...] = ()  # (label, cells) along the axis, e.g. ("p=1", 1), ("i=6", 6)

    @property
    def span(self) -> int:
        return self.dilation * (self.kernel - 1) + 1

    def view(self) -> int:
        """Cells drawn: all of them, or a clipped view that still shows a few windows."""
        total = len(self.kinds)
        return total if total <= VIEW else min(total, max(VIEW, self.span + 2 * self.step))

    def outputs_in_view(self) -> int:
        return min(self.outputs, (self.view() - self.span) // self.step + 1)


def draw_layer(network: Network, plan: Plan, name: str) -> str:
    """An SVG of one conv, conv_transpose or pooling layer's arithmetic in the guide's figure style,
    animated with SMIL; raises UsageError for a layer without kernel arithmetic or an unknown name."""
    layer = plan.layer(name)  # UnknownLayer, a UsageError, names the layers
    if layer.op not in KERNEL_OPS:
        raise UsageError(f"layer {name!r} is a {layer.op} layer, which has no kernel arithmetic to draw; "
                         f"draw a {', '.join(KERNEL_OPS[:-1])} or {KERNEL_OPS[-1]} layer")
    rank = len(layer.input_shape) - 2
    axes = [_axis(layer, a) for a in range(min(rank, 2))]
    if rank == 1:
        axes.insert(0, _Axis(("input",), 1, 1, 1, 1, ()))
    rows, cols = axes
    return _LayerFigure(network, layer, rows, cols, rank).svg()


def _axis(layer: LayerPlan, a: int) -> _Axis:
    p = layer.params
    k, s = p["kernel"][a], p["stride"][a]
    d = p.get("dilation", (1,) * len(p["kernel"]))[a]
    pb, pe = p["padding"][a]
    i, o = layer.input_shape[2 + a], layer.output_shape[2 + a]
    reach = ar.effective_kernel(k, d) - 1
    if layer.op == "conv_transpose":
        out_pad = p["output_padding"][a]
        stretched = ("input",) + (("zero",) * (s - 1) + ("input",)) * (i - 1)
        begin, end = ar.transpose_equivalent_padding(k, pb, d), ar.transpose_equivalent_padding(k, pe, d)
        kinds = ("pad",) * begin + stretched + ("pad",) * (end + out_pad)
        sides = f"p' = d(k-1) - p = {begin} on each side" if begin == end else \
            f"p' = d(k-1) - p = {begin} at the start and {end} at the end"
        lines = (f"i' = {i}, k = {k}, s = {s}, p = {_pair(pb, pe)}, d = {d}, a = {out_pad}",
                 f"stretched: ĩ' = i' + (s-1)(i'-1) = {i} + {s - 1}·{i - 1} = {len(stretched)} cells",
                 f"padded: {sides}, plus a = {out_pad} at the end (bottom/right): {len(kinds)} cells",
                 f"o' = s(i'-1) + d(k-1) + 1 - {_p_sum(pb, pe)} + a = {s}·{i - 1} + {reach} + 1 - {pb + pe} + "
                 f"{out_pad} = {o}: the direct convolution of the {len(kinds)} cells with k = {k}, d = {d} and "
                 f"unit stride")
        segments = ((f"p'={begin}", begin), (f"ĩ'={len(stretched)}", len(stretched)), (f"p'={end}", end),
                    (f"a={out_pad}", out_pad))
        return _Axis(kinds, k, d, 1, o, lines, segments)
    ceil = bool(p.get("ceil_mode"))
    size = i + pb + pe
    extra = (-(size - reach - 1)) % s if ceil and size > reach else 0  # ceil mode's partial last window
    kinds = ("pad",) * pb + ("input",) * i + ("pad",) * (pe + extra)
    lo, hi = ("⌈", "⌉") if ceil else ("⌊", "⌋")
    natural = (size - reach - 1 + (s - 1 if ceil else 0)) // s + 1
    padded = f"{pb} + {i} + {pe} = {size} cells" + (f", and {extra} past the end padding that ceil mode's last "
                                                      "window reaches" if extra else "")
    lines = [f"i = {i}, k = {k}, s = {s}, p = {_pair(pb, pe)}, d = {d}" + (", ceil mode" if ceil else ""),
             f"padded: {padded}",
             f"o = {lo}(i + {_p_sum(pb, pe)} - d(k-1) - 1)/s{hi} + 1 = {lo}({i} + {pb + pe} - {reach} - 1)/{s}{hi} + 1"
             f" = {natural}"]
    if natural != o:
        lines.append(f"the last window would start in the end padding, so PyTorch drops it: o = {o}")
    segments = ((f"p={pb}", pb), (f"i={i}", i), (f"p={pe}", pe), ("ceil", extra))
    return _Axis(kinds, k, d, s, o, tuple(lines), segments)


def _pair(b: int, e: int) -> str:
    return str(b) if b == e else f"({b}, {e})"


def _p_sum(b: int, e: int) -> str:
    return "2p" if b == e else "p_begin + p_end"


class _LayerFigure:
    """The picture of one layer: text on top, the input grid, an arrow, the output grid, a legend.

    A 2-D (or 3-D) layer shows its first two spatial axes as rows and columns of square cells,
    the output to the right; a 1-D layer shows tall cells in one strip, the output below it.
    """

    def __init__(self, network: Network, layer: LayerPlan, rows: _Axis, cols: _Axis, rank: int):
        self.network, self.layer, self.rows, self.cols, self.rank = network, layer, rows, cols, rank
        vr, vc = rows.view(), cols.view()
        if rank == 1:
            self.cw, self.ch = max(6, min(30, 900 // vc)), 30
        else:
            self.cw = self.ch = max(5, min(30, 440 // max(vr, vc)))

    def text(self) -> tuple[str, list[str], list[str]]:
        layer, rows, cols = self.layer, self.rows, self.cols
        kind = {"conv": "convolution", "conv_transpose": "transposed convolution", "maxpool": "max pooling",
                "avgpool": "average pooling"}[layer.op]
        title = f"{layer.name} — {kind}, {_shape(layer.input_shape)} → {_shape(layer.output_shape)}"
        lines = []
        if self.rank >= 2 and rows.formula == cols.formula:
            lines += ["both axes: " + rows.formula[0], *rows.formula[1:]]
        else:
            for name, ax in zip(self.axis_names(), self.drawn(), strict=True):
                lines += [f"{name}: {ax.formula[0]}", *("    " + line for line in ax.formula[1:])]
        notes = []
        if layer.op == "conv_transpose":
            notes.append("drawn as the guide draws it: the equivalent direct convolution, unit stride, over the "
                         "stretched input (s-1 zeros between units), padded by p' on each side and by a extra zeros "
                         "at the end (bottom/right); its kernel is the transposed convolution's kernel rotated by 180°")
        if layer.op == "avgpool":
            notes.append("average pooling divides by the cells of the window "
                         + ("including padding" if layer.params["count_include_pad"] else "that are real inputs")
                         + (" (never the cells past the end padding)" if layer.params["ceil_mode"] else ""))
        if self.rank == 3:
            notes.append("a 3-D layer: the first two spatial axes are drawn; axis 2 works the same way")
        clipped = [f"{name}: the first {ax.view()} of {len(ax.kinds)} cells and {ax.outputs_in_view()} of "
                   f"{ax.outputs} outputs" for name, ax in zip(self.axis_names(), self.drawn(), strict=True)
                   if ax.view() < len(ax.kinds)]
        if clipped:
            notes.append("clipped view (⋯): " + "; ".join(clipped))
        notes.append(f"layer {layer.name} of {self.network.name} ({self.network.file}); the animation steps the "
                     "kernel over the output positions")
        return title, lines, notes

    def axis_names(self) -> list[str]:
        return ["axis 0 (rows)", "axis 1 (columns)"] if self.rank >= 2 else ["axis 0"]

    def drawn(self) -> list[_Axis]:
        return [self.rows, self.cols] if self.rank >= 2 else [self.cols]

    def svg(self) -> str:
        layer, rows, cols, cw, ch = self.layer, self.rows, self.cols, self.cw, self.ch
        vr, vc = rows.view(), cols.view()
        nr, nc = rows.outputs_in_view(), cols.outputs_in_view()
        transposed = layer.op == "conv_transpose"
        title, lines, notes = self.text()
        text_width = 980
        lines = [w for line in lines for w in _wrap_text(line, text_width, 7.2)]
        notes = [w for note in notes for w in _wrap_text(note, text_width, 6.6)]

        gx, gy = 40, 52 + 18 * len(lines) + 16 * len(notes) + 40
        grid_w, grid_h = vc * cw, vr * ch
        if self.rank == 1:  # output strip below the input strip and its labels
            ox, oy = gx, gy + grid_h + 104
            arrow = (gx + 40, gy + grid_h + 40, gx + 40, oy - 26)
            bottom = oy + ch
        else:
            ox, oy = gx + grid_w + 110, gy + max(0, (grid_h - nr * ch) / 2)
            arrow = (gx + grid_w + 30, gy + grid_h / 2, ox - 22, gy + grid_h / 2)
            bottom = max(gy + grid_h, oy + nr * ch)
        width = max(text_width + 48, gx + grid_w + 60, ox + nc * cw + 60)
        height = bottom + 110

        body = [_el("text", title, class_="title", x=24, y=30)]
        y = 52
        for line in lines:
            body.append(_el("text", line, class_="formula", x=24, y=y))
            y += 18
        for note in notes:
            body.append(_el("text", note, class_="note", x=24, y=y))
            y += 16

        sizes = "×".join(str(len(ax.kinds)) for ax in self.drawn())
        body.append(_el("text", f"{'stretched, padded' if transposed else 'padded'} input ({sizes} cells)",
                        class_="caption", x=gx, y=gy - 10))
        body.append('<g class="input-grid">')
        for r in range(vr):
            for c in range(vc):
                kind = _combine(rows.kinds[r], cols.kinds[c])
                body.append(_el("rect", class_=f"cell {kind}", x=gx + c * cw, y=gy + r * ch, width=cw, height=ch))
        body.append("</g>")
        body += _ellipses("input", gx, gy, vr, vc, len(rows.kinds), len(cols.kinds), cw, ch)
        body += _segments(cols.segments, gx, gy + grid_h + 6, cw, vc)

        outputs = "×".join(str(ax.outputs) for ax in self.drawn())
        body.append(_el("text", f"output ({outputs})", class_="caption", x=ox, y=oy - 10))
        body.append('<g class="output-grid">')
        for r in range(nr):
            for c in range(nc):
                body.append(_el("rect", class_="cell output", x=ox + c * cw, y=oy + r * ch, width=cw, height=ch))
        body.append("</g>")
        body += _ellipses("output", ox, oy, nr, nc, rows.outputs, cols.outputs, cw, ch)

        x0, y0, x1, y1 = arrow
        if y0 == y1:  # pointing right
            head = f"M {_num(x1 - 8)} {_num(y1 - 6)} L {_num(x1)} {_num(y1)} L {_num(x1 - 8)} {_num(y1 + 6)}"
        else:  # pointing down
            head = f"M {_num(x1 - 6)} {_num(y1 - 8)} L {_num(x1)} {_num(y1)} L {_num(x1 + 6)} {_num(y1 - 8)}"
        body.append(f'<path class="arrow" d="M {_num(x0)} {_num(y0)} L {_num(x1)} {_num(y1)} {head}"/>')

        positions = [(r, c) for r in range(nr) for c in range(nc)]
        dur = f"{max(1.0, 0.7 * len(positions)):g}s"
        moves = ";".join(f"{_num(c * cols.step * cw)} {_num(r * rows.step * ch)}" for r, c in positions)
        steps = ";".join(f"{_num(c * cw)} {_num(r * ch)}" for r, c in positions)
        inset = min(1.5, cw / 5)
        body.append('<g class="kernel">')
        body.append(_el("rect", class_="footprint", x=gx, y=gy, width=cols.span * cw, height=rows.span * ch))
        for tr in range(rows.kernel):
            for tc in range(cols.kernel):
                body.append(_el("rect", class_="tap", x=gx + tc * cols.dilation * cw + inset,
                                y=gy + tr * rows.dilation * ch + inset, width=cw - 2 * inset, height=ch - 2 * inset))
        body.append(_animation(moves, dur))
        body.append("</g>")
        body.append(_el("rect", class_="current", x=ox + inset, y=oy + inset, width=cw - 2 * inset,
                        height=ch - 2 * inset, children=_animation(steps, dur)))

        body += self.legend(24, height - 36)
        return _document(width, height, _LAYER_STYLE, body, title)

    def legend(self, x: float, y: float) -> list[str]:
        kinds = {kind for ax in (self.rows, self.cols) for kind in ax.kinds[:ax.view()]}
        transposed = self.layer.op == "conv_transpose"
        items = [("swatch input", "input")]
        if "pad" in kinds:
            items.append(("swatch pad", "padding" + (" (p' and a)" if transposed else "")))
        if "zero" in kinds:
            items.append(("swatch zero", "zeros inserted between units (s-1)"))
        gaps = any(ax.dilation > 1 for ax in (self.rows, self.cols))
        items += [("swatch kernel-tap", "kernel taps" + (" (dilation gaps between them)" if gaps else "")),
                  ("swatch output", "output"), ("swatch current-cell", "current output")]
        out = []
        for cls, text in items:
            out.append(_el("rect", class_=cls, x=x, y=y, width=14, height=14))
            out.append(_el("text", text, class_="legend", x=x + 20, y=y + 11))
            x += 20 + 6.8 * len(text) + 22
        return out


def _segments(segments: tuple[tuple[str, int], ...], x: float, y: float, cw: float, view: int) -> list[str]:
    """Brackets under the grid naming its parts along the columns (padding, input, a, ...), as far as drawn."""
    out, start = [], 0
    for label, length in segments:
        end = min(start + length, view)
        if length and start < view:
            x0, x1 = x + start * cw + 2, x + end * cw - 2
            out.append(f'<path class="bracket" d="M {_num(x0)} {_num(y)} V {_num(y + 5)} H {_num(x1)} V {_num(y)}"/>')
            if end - start >= 2 or cw >= 24:
                out.append(_el("text", label, class_="segment", x=(x0 + x1) / 2, y=y + 19, text_anchor="middle"))
        start += length
    return out


def _ellipses(grid: str, x: float, y: float, rows: int, cols: int, all_rows: int, all_cols: int, cw: float,
              ch: float) -> list[str]:
    """⋯ right of a clipped grid, ⋮ below it; `grid` is "input" or "output"."""
    out = []
    if cols < all_cols:
        out.append(_el("text", "⋯", class_=f"ellipsis {grid}", x=x + cols * cw + 6, y=y + rows * ch / 2 + 6))
    if rows < all_rows:
        out.append(_el("text", "⋮", class_=f"ellipsis {grid}", x=x + cols * cw / 2, y=y + rows * ch + 20))
    return out


def _animation(values: str, dur: str) -> str:
    return (f'<animateTransform attributeName="transform" type="translate" calcMode="discrete" '
            f'values="{values}" dur="{dur}" repeatCount="indefinite"/>')


def _combine(row: str, col: str) -> str:
    for kind in ("pad", "zero"):
        if kind in (row, col):
            return kind
    return "input"


def _wrap_text(text: str, width: float, char: float) -> list[str]:
    most = max(20, int(width / char))
    lines, line = [], ""
    for word in text.split(" "):
        if line and len(line) + 1 + len(word) > most:
            lines.append(line)
            line = "    " + word
        else:
            line = f"{line} {word}" if line else word
    return [*lines, line]
