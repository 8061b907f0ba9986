"""SVG pictures of a plan (`planner draw`): the network's shapes, and one layer's arithmetic.

`draw_network` puts one box per layer in data-flow order, left to right in rows, each box as
tall as its output is large (as U-Net figures do), with the data flow as edges. `draw_layer`
draws one convolution or pooling layer in the style of Dumoulin & Visin's figures: the input
grid with its padding dashed, the kernel's footprint, the output grid, and a SMIL animation
stepping the kernel over the output positions. A transposed convolution is drawn as the guide
draws it: the equivalent direct convolution over the stretched, padded input.

Plain SVG 1.1 with a <style> element and SMIL; no dependency beyond the standard library.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from xml.sax.saxutils import escape, quoteattr

from planner.graph import Network
from planner.plan import LayerPlan, Plan

FONT = "DejaVu Sans, Helvetica, Arial, sans-serif"


def _attrs(attrs: dict) -> str:
    return "".join(f" {key.rstrip('_').replace('_', '-')}={quoteattr(_num(value))}"
                   for key, value in attrs.items() if value is not None)


def _num(value) -> str:
    if isinstance(value, float):
        return f"{value:.1f}".rstrip("0").rstrip(".")
    return str(value)


def _el(tag: str, text: str | None = None, *, children: str = "", **attrs) -> str:
    """One element; `text` is escaped, `children` is markup."""
    if text is None and not children:
        return f"<{tag}{_attrs(attrs)}/>"
    return f"<{tag}{_attrs(attrs)}>{escape(text or '')}{children}</{tag}>"


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
.edge { fill: none; stroke: #666; stroke-width: 1.3; }
.edge.skip { stroke: #4f9a45; stroke-width: 1.8; stroke-opacity: 0.8; }
.edge.like { stroke: #9467a8; stroke-width: 1.3; stroke-dasharray: 5 3; stroke-opacity: 0.9; }
.legend { font-size: 11px; fill: #333; }
#arrow path { fill: #666; } #arrow-skip path { fill: #4f9a45; } #arrow-like path { fill: #9467a8; }
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
    if columns is None:
        columns = max(6, min(12, math.ceil(math.sqrt(len(keys) * 3))))
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
    widths = {key: POINTWISE_W if _family(ops[key]) == "pointwise" else BOX_W for key in keys}

    header = _network_header(network, plan, biggest)
    top = MARGIN + 24 + 18 * (len(header) - 1) + 34  # below the legend
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
    width = max(right + GAP_X / 2 + LANE * len(routed) + MARGIN + 8, 760)
    height = top - row_gap + MARGIN + 8

    paths = [_edge(boxes[src], boxes[dst], kind, row_bottom, right, lanes.get((src, dst, kind)))
             for src, dst, kind in edges]
    body = [*_network_legend(header, width, {_family(op) for op in ops.values()})]
    body += ['<g class="edges">', *paths, "</g>"]
    for key in keys:
        body.append(_layer_box(key, boxes[key], ops[key], labels[key], key != "input", plan))
    defs = ["<defs>"]
    for marker, colour in (("arrow", "#666"), ("arrow-skip", "#4f9a45"), ("arrow-like", "#9467a8")):
        defs.append(f'<marker id="{marker}" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" '
                    f'orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z" fill="{colour}"/></marker>')
    defs.append("</defs>")
    return _document(width, height, _NETWORK_STYLE, [*defs, *body], f"{network.name}: network plan")


def _family(op: str) -> str:
    return "input" if op == "input" else _FAMILY.get(op, "pointwise")


def _spatial(shape: tuple[int, ...]) -> float:
    """The size a box's height shows: the largest spatial extent (0 for [N, features])."""
    return max(shape[2:], default=0)


def _text_height(label: list[tuple[str, list[tuple[str, bool]]]]) -> float:
    return 10 + LINE_H * len(label)


def _input_label(plan: Plan) -> list[tuple[str, list[tuple[str, bool]]]]:
    label = [("name", [("input", False)]), ("shape", [(_shape(plan.input_shape), False)])]
    if plan.for_all:
        label.append(("param", [("for_all sizes", False)]))
    return label


def _layer_label(layer: LayerPlan) -> list[tuple[str, list[tuple[str, bool]]]]:
    """Lines of (class, [(text, solved)]) for a layer's box."""
    name = layer.name if len(layer.name) <= 18 else layer.name[:17] + "…"
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
        out.append((f"at {_per_axis(p['offset'])}", False))
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
    solved = ", ".join(f"{name} = {value}" for name, value in plan.assignment.items())
    lines = [f"{network.name} — {network.file}"]
    lines.append(f"solved by planner: {solved}" if solved else "nothing to solve: every value was given")
    if plan.for_all:
        lines.append("one plan for every input size of the spec's for_all axes; drawn at "
                     + _shape(plan.input_shape))
    lines.append(f"box height grows with the largest spatial size (up to {biggest:g}); * marks a value planner solved")
    return lines


def _network_legend(header: list[str], width: float, families: set[str]) -> list[str]:
    out = [_el("text", header[0], class_="title", x=MARGIN, y=MARGIN + 14)]
    for n, line in enumerate(header[1:]):
        out.append(_el("text", _fit(line, width), class_="subtitle", x=MARGIN, y=MARGIN + 36 + 18 * n))
    y = MARGIN + 36 + 18 * (len(header) - 1) + 4
    x = MARGIN
    for family, text in _FAMILY_LABEL.items():
        if family not in families:
            continue
        out.append(f'<g class="{family}">' + _el("rect", class_="box", x=x, y=y, width=14, height=11, rx=2)
                   + _el("text", text, class_="legend", x=x + 19, y=y + 10) + "</g>")
        x += 19 + 6.6 * len(text) + 18
    for kind, text in (("skip", "skip / concat input"), ("like", "crop to the size of")):
        out.append(f'<path class="edge {kind}" d="M {x} {y + 6} L {x + 26} {y + 6}"/>')
        out.append(_el("text", text, class_="legend", x=x + 32, y=y + 10))
        x += 32 + 6.6 * len(text) + 18
    return out


def _fit(text: str, width: float, char: float = 6.6) -> str:
    most = int((width - 2 * MARGIN) / char)
    return text if len(text) <= most else text[:most - 1] + "…"


def _layer_box(key: str, box: _Box, op: str, label, is_layer: bool, plan: Plan) -> str:
    family = _family(op)
    attrs = {"class": f"layer {family}" if is_layer else "input", "id": f"layer-{key}" if is_layer else "input"}
    parts = [f"<g{_attrs(attrs)}>"]
    if is_layer:
        layer = plan.layer(key)
        tip = f"{key}: {op} {_shape(layer.input_shape)} → {_shape(layer.output_shape)}"
        if layer.params:
            tip += "\n" + ", ".join(f"{k}={_plain(v)}{'*' if k in layer.solved else ''}" for k, v in layer.params.items())
        parts.append(_el("title", tip))
    parts.append(_el("rect", class_="box", x=box.x, y=box.y, width=box.w, height=box.h, rx=5))
    y = box.cy - LINE_H * len(label) / 2 + 10
    for cls, pieces in label:
        spans = []
        for n, (text, solved) in enumerate(pieces):
            sep = " " if n else ""
            spans.append(escape(sep + text) + ('<tspan class="solved">*</tspan>' if solved else ""))
        parts.append(f'<text class="{cls}" x="{_num(box.cx)}" y="{_num(y)}" text-anchor="middle">{"".join(spans)}</text>')
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
    for (x0, y0), (x1, y1), (x2, y2) in zip(points, points[1:], points[2:]):
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
.tap { fill: #163d66; fill-opacity: 0.55; stroke: #0b2540; stroke-width: 1.4; }
.footprint { fill: none; stroke: #0b2540; stroke-width: 1.4; stroke-dasharray: 4 3; }
.current { fill: #1f7a6f; fill-opacity: 0.8; stroke: #0d4740; stroke-width: 1.5; }
.ellipsis { font-size: 18px; fill: #666; }
.legend { font-size: 11.5px; fill: #333; }
.arrow { fill: none; stroke: #777; stroke-width: 1.6; }
"""


@dataclass(frozen=True)
class _Axis:
    """One spatial axis of the picture: the padded (stretched) input cells and how the kernel steps."""

    kinds: tuple[str, ...]  # per cell: "pad", "input" or "zero"
    kernel: int
    dilation: int
    step: int
    outputs: int
    formula: str

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
    animated with SMIL; raises ValueError for a layer without kernel arithmetic or an unknown name."""
    try:
        layer = plan.layer(name)
    except StopIteration:
        raise ValueError(f"no layer named {name!r}; layers: {', '.join(ly.name for ly in plan.layers)}") from None
    if layer.op not in KERNEL_OPS:
        raise ValueError(f"layer {name!r} is a {layer.op} layer, which has no kernel arithmetic to draw; "
                         f"draw a {', '.join(KERNEL_OPS[:-1])} or {KERNEL_OPS[-1]} layer")
    rank = len(layer.input_shape) - 2
    axes = [_axis(layer, a) for a in range(min(rank, 2))]
    if rank == 1:
        axes.insert(0, _Axis(("input",), 1, 1, 1, 1, ""))
    rows, cols = axes
    return _LayerFigure(network, layer, rows, cols, rank).svg()


def _axis(layer: LayerPlan, a: int) -> _Axis:
    p = layer.params
    k, s = p["kernel"][a], p["stride"][a]
    d = p.get("dilation", (1,) * len(p["kernel"]))[a]
    pb, pe = p["padding"][a]
    i, o = layer.input_shape[2 + a], layer.output_shape[2 + a]
    if layer.op == "conv_transpose":
        out_pad = p["output_padding"][a]
        stretched = ("input",) + ("zero",) * (s - 1) + ("input",)
        inner = ("input",) + stretched[1:] * (i - 1)
        begin, end = d * (k - 1) - pb, d * (k - 1) - pe
        kinds = ("pad",) * begin + inner + ("pad",) * (end + out_pad)
        formula = (f"i'={i}, k={k}, s={s}, p={_pair(pb, pe)}, d={d}, a={out_pad}: stretched ĩ' = i' + (s-1)(i'-1) = "
                   f"{len(inner)}, padded by p' = d(k-1) - p = {_pair(begin, end)} and a = {out_pad} at the end; "
                   f"o' = s(i'-1) + d(k-1) + 1 - {_p_sum(pb, pe)} + a = {s}·{i - 1} + {d * (k - 1)} + 1 - "
                   f"{pb + pe} + {out_pad} = {o}")
        return _Axis(kinds, k, d, 1, o, formula)
    extra = 0
    ceil = bool(p.get("ceil_mode"))
    span = d * (k - 1) + 1
    if ceil:  # the partial last window of ceil mode runs past the end padding
        size = i + pb + pe
        extra = (-(size - span)) % s if size >= span else 0
    kinds = ("pad",) * pb + ("input",) * i + ("pad",) * (pe + extra)
    bracket = ("⌈", "⌉") if ceil else ("⌊", "⌋")
    formula = (f"i={i}, k={k}, s={s}, p={_pair(pb, pe)}, d={d}: o = {bracket[0]}(i + {_p_sum(pb, pe)} - d(k-1) - 1)/s"
               f"{bracket[1]} + 1 = {bracket[0]}({i} + {pb + pe} - {d * (k - 1)} - 1)/{s}{bracket[1]} + 1")
    natural = -(-(i + pb + pe - span) // s) + 1 if ceil else (i + pb + pe - span) // s + 1
    formula += f" = {natural}"
    if natural != o:
        formula += f", minus the last window, which would start in the end padding: {o}"
    return _Axis(kinds, k, d, s, o, formula)


def _pair(b: int, e: int) -> str:
    return str(b) if b == e else f"({b},{e})"


def _p_sum(b: int, e: int) -> str:
    return "2p" if b == e else "p_begin + p_end"


class _LayerFigure:
    def __init__(self, network: Network, layer: LayerPlan, rows: _Axis, cols: _Axis, rank: int):
        self.network, self.layer, self.rows, self.cols, self.rank = network, layer, rows, cols, rank
        vr, vc = rows.view(), cols.view()
        self.cell = max(5, min(30, 440 // max(vr, vc, 1)))

    def svg(self) -> str:
        layer, rows, cols, cs = self.layer, self.rows, self.cols, self.cell
        vr, vc = rows.view(), cols.view()
        nr, nc = rows.outputs_in_view(), cols.outputs_in_view()
        transposed = layer.op == "conv_transpose"
        kind = {"conv": "convolution", "conv_transpose": "transposed convolution", "maxpool": "max pooling",
                "avgpool": "average pooling"}[layer.op]
        title = f"{layer.name}: {kind}, {_shape(layer.input_shape)} → {_shape(layer.output_shape)}"
        lines = []
        axis_names = ["axis 0 (rows)", "axis 1 (columns)"] if self.rank >= 2 else ["axis 0"]
        drawn = [rows, cols] if self.rank >= 2 else [cols]
        if self.rank >= 2 and rows.formula == cols.formula:
            lines.append(f"both axes: {rows.formula}")
        else:
            lines += [f"{n}: {ax.formula}" for n, ax in zip(axis_names, drawn)]
        notes = []
        if transposed:
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
                   f"{ax.outputs} outputs" for name, ax in zip(axis_names, drawn) if ax.view() < len(ax.kinds)]
        if clipped:
            notes.append("clipped view (⋯): " + "; ".join(clipped))
        notes.append(f"{layer.name} from {self.network.file}; the kernel steps over the output positions shown")

        width_text = 980
        wrapped_lines = [w for line in lines for w in _wrap_text(line, width_text, 7.2)]
        wrapped_notes = [w for note in notes for w in _wrap_text(note, width_text, 6.6)]
        top = 24 + 22 + 18 * len(wrapped_lines) + 16 * len(wrapped_notes) + 30
        gx, gy = 40, top + 22
        grid_w, grid_h = vc * cs, vr * cs
        ox = gx + grid_w + 110
        oy = gy + max(0, (grid_h - nr * cs) / 2)
        width = max(width_text + 48, ox + nc * cs + 60)
        height = gy + grid_h + 100

        body = [_el("text", title, class_="title", x=24, y=30)]
        y = 52
        for line in wrapped_lines:
            body.append(_el("text", line, class_="formula", x=24, y=y))
            y += 18
        for note in wrapped_notes:
            body.append(_el("text", note, class_="note", x=24, y=y))
            y += 16

        in_caption = ("stretched, padded input" if transposed else "padded input") + \
            f" ({'×'.join(str(len(ax.kinds)) for ax in drawn)} cells)"
        body.append(_el("text", in_caption, class_="caption", x=gx, y=gy - 10))
        body.append('<g class="input-grid">')
        for r in range(vr):
            for c in range(vc):
                kind = _combine(rows.kinds[r], cols.kinds[c])
                body.append(_el("rect", class_=f"cell {kind}", x=gx + c * cs, y=gy + r * cs, width=cs, height=cs))
        body.append("</g>")
        if vc < len(cols.kinds):
            body.append(_el("text", "⋯", class_="ellipsis", x=gx + grid_w + 6, y=gy + grid_h / 2 + 6))
        if vr < len(rows.kinds):
            body.append(_el("text", "⋮", class_="ellipsis", x=gx + grid_w / 2, y=gy + grid_h + 20))

        out_caption = f"output ({'×'.join(str(ax.outputs) for ax in drawn)})"
        body.append(_el("text", out_caption, class_="caption", x=ox, y=oy - 10))
        body.append('<g class="output-grid">')
        for r in range(nr):
            for c in range(nc):
                body.append(_el("rect", class_="cell output", x=ox + c * cs, y=oy + r * cs, width=cs, height=cs))
        body.append("</g>")
        if nc < cols.outputs:
            body.append(_el("text", "⋯", class_="ellipsis", x=ox + nc * cs + 6, y=oy + nr * cs / 2 + 6))
        if nr < rows.outputs:
            body.append(_el("text", "⋮", class_="ellipsis", x=ox + nc * cs / 2, y=oy + nr * cs + 20))

        ay = gy + grid_h / 2
        body.append(f'<path class="arrow" d="M {_num(gx + grid_w + 30)} {_num(ay)} L {_num(ox - 22)} {_num(ay)} '
                    f'M {_num(ox - 30)} {_num(ay - 6)} L {_num(ox - 22)} {_num(ay)} L {_num(ox - 30)} {_num(ay + 6)}"/>')

        positions = [(r, c) for r in range(nr) for c in range(nc)]
        dur = f"{max(1.0, 0.7 * len(positions)):g}s"
        moves = ";".join(f"{c * cols.step * cs} {r * rows.step * cs}" for r, c in positions)
        steps = ";".join(f"{c * cs} {r * cs}" for r, c in positions)
        body.append('<g class="kernel">')
        body.append(_el("rect", class_="footprint", x=gx, y=gy, width=cols.span * cs,
                        height=rows.span * cs))
        for tr in range(rows.kernel):
            for tc in range(cols.kernel):
                body.append(_el("rect", class_="tap", x=gx + tc * cols.dilation * cs + 1.5,
                                y=gy + tr * rows.dilation * cs + 1.5, width=cs - 3, height=cs - 3))
        body.append(_animation(moves, dur))
        body.append("</g>")
        body.append(_el("rect", class_="current", x=ox + 1.5, y=oy + 1.5, width=cs - 3, height=cs - 3,
                        children=_animation(steps, dur)))

        body += self.legend(24, height - 36, transposed)
        return _document(width, height, _LAYER_STYLE, body, title)

    def legend(self, x: float, y: float, transposed: bool) -> list[str]:
        items = [("cell input", "input"), ("cell pad", "padding" + (" (p' and a)" if transposed else ""))]
        if transposed:
            items.append(("cell zero", "zeros inserted between units (s-1)"))
        items += [("tap", "kernel taps" + (" (dilation gaps between them)" if any(
            ax.dilation > 1 for ax in (self.rows, self.cols)) else "")), ("cell output", "output"),
                  ("current", "current output")]
        out = []
        for cls, text in items:
            out.append(_el("rect", class_=cls.replace("cell ", "swatch "), x=x, y=y, width=14, height=14))
            out.append(_el("text", text, class_="legend", x=x + 20, y=y + 11))
            x += 20 + 6.8 * len(text) + 22
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
