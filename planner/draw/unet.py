"""The U-Net layout of the network figure, as U-Net figures draw it (Ronneberger et al. 2015, Fig. 1).

One row per resolution level, the input's at the top: the encoder goes down the left, the decoder
comes up the right, and each skip connection runs straight across its row, from the encoder layer
to the decoder layer that joins it (a concat, an add, or the crop that feeds one). The layers that
change the level (poolings, strided convolutions, up-convolutions, upsamplings) sit in the gap
between two rows, next to the layer they feed, and shape-preserving layers (activations, norms,
dropout) are drawn small.

`u_shape` finds that shape in a plan, or says there is none: the spatial size goes down level by
level and comes back up, and at least one skip joins a decoder layer with an encoder layer of
the same level. Any other network keeps the row layout (`network.py`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from planner.draw.boxes import (
    BOX_W,
    MARGIN,
    SMALL_H,
    Box,
    Label,
    compose,
    edge_kinds,
    header_height,
    heights,
    input_label,
    layer_label,
    network_header,
    path_element,
    rounded,
    small_label,
    small_width,
    spatial,
    text_width,
)
from planner.draw.figures import figure
from planner.draw.svg import num
from planner.graph import Network
from planner.plan import Plan
from planner.receptive import plan_fields

GAP_X = 24  # between the boxes of a row
INDENT = 36  # each level's rows start this much further in than the level above
MIDDLE = 64  # the least room between the encoder's end and the decoder's start on a row
LANE = 22  # above and below the layers in a gap between rows, for the edges to and from them
ROW_GAP = 40  # between two rows with nothing in the gap
SKIP_CLEAR = 7  # a skip line runs this far above the small boxes it passes


@dataclass(frozen=True)
class UShape:
    """Where each box of a U-Net goes: its level (0 at the input's resolution, one more for each halving),
    its side (`encoder`, `bottom` or `decoder`), and whether it changes the level (a transition)."""

    level: dict[str, int]
    side: dict[str, str]
    transitions: frozenset[str]

    def row(self, key: str) -> int:
        return self.level[key]


def u_shape(plan: Plan) -> UShape | None:
    """The plan's U shape, or None when it has none: every layer keeps its spatial axes, the levels (see
    `_level`) rise (never fall) up to the deepest and then fall (never rise), each level has layers of its
    own on both sides, every join's inputs share a level, and at least one decoder layer reads an encoder
    layer of its own level (a skip connection)."""
    keys = ["input", *(ly.name for ly in plan.layers)]
    level = {key: _level(field[1]) for key, field in plan_fields(plan).items() if field is not None}
    if len(level) < len(keys):
        return None
    if any(level[source] != level[ly.name] for ly in plan.layers if len(ly.inputs) > 1 for source in ly.inputs):
        return None  # a join of two levels: not the U's
    deepest = max(level.values())
    if deepest < 1:
        return None
    first = next(n for n, key in enumerate(keys) if level[key] == deepest)
    last = first
    while last + 1 < len(keys) and level[keys[last + 1]] == deepest:
        last += 1
    down, up = [level[k] for k in keys[: last + 1]], [level[k] for k in keys[first:]]
    if any(b < a for a, b in zip(down, down[1:], strict=False)) or any(b > a for a, b in zip(up, up[1:], strict=False)):
        return None
    side = {key: "encoder" if n < first else "bottom" if n <= last else "decoder" for n, key in enumerate(keys)}
    if side[keys[-1]] != "decoder":
        return None
    skips = [
        (source, ly.name)
        for ly in plan.layers
        if side[ly.name] == "decoder"
        for source in ly.inputs
        if side[source] == "encoder"
    ]
    if not skips or any(level[a] != level[b] for a, b in skips):
        return None
    transitions = frozenset(ly.name for ly in plan.layers if level[ly.name] != level[ly.inputs[0]])
    kept = [key for key in keys if key not in transitions]  # the layers that stay on their level's row
    lowest = min(level[key] for key in keys if side[key] == "decoder")
    encoder_rows = {level[key] for key in kept if side[key] != "decoder"}
    decoder_rows = {level[key] for key in kept if side[key] == "decoder"}
    if encoder_rows != set(range(deepest + 1)) or decoder_rows != set(range(lowest, deepest)):
        return None  # a level passed in one step (ASPP's pooling to 1x1 and back): no U to draw
    return UShape(level, side, transitions)


def _level(jumps: tuple) -> int:
    """A layer's level: how many times its resolution halves from the input's, from its jump (the distance,
    in input cells, between neighbouring outputs: the product of the strides, divided by the up-steps'),
    rounded; a crop or a valid convolution changes the size but not the level."""
    logs = [math.log2(j) for j in jumps if j > 0]
    return round(sum(logs) / len(logs)) if logs else 0


def draw_unet(network: Network, plan: Plan, shape: UShape) -> str:
    """The U-Net figure of a plan that has a U shape (see `u_shape`): same boxes, labels and legend as the
    row layout (`<g class="layer">` per layer, `edge flow|skip|like` paths), placed as U-Net figures do."""
    layers = {ly.name: ly for ly in plan.layers}
    keys = ["input", *layers]
    families = {"input": "input", **{name: figure(ly.op).family for name, ly in layers.items()}}
    small = {key for key in keys if families[key] == "pointwise" and key not in shape.transitions}
    labels: dict[str, Label] = {"input": input_label(plan)}
    for name, ly in layers.items():
        labels[name] = small_label(ly) if name in small else layer_label(ly)
    shapes = {"input": plan.input_shape, **{name: ly.output_shape for name, ly in layers.items()}}
    tall = heights(keys, shapes, labels)
    widths = {key: small_width(labels[key]) if key in small else max(BOX_W, text_width(labels[key])) for key in keys}
    tall.update({key: SMALL_H for key in small})

    deepest = max(shape.level.values())
    levels = range(deepest + 1)
    # each row: its encoder part (the bottom row's whole) on the left, its decoder part on the right
    left = {lv: [k for k in keys if shape.level[k] == lv and shape.side[k] != "decoder"] for lv in levels}
    right = {lv: [k for k in keys if shape.level[k] == lv and shape.side[k] == "decoder"] for lv in levels}
    for lv in levels:
        left[lv] = [k for k in left[lv] if k not in shape.transitions]
        right[lv] = [k for k in right[lv] if k not in shape.transitions]
    gaps: dict[int, list[str]] = {lv: [] for lv in levels}  # gap lv lies between row lv and row lv + 1
    for key in (k for k in keys if k in shape.transitions):
        source = layers[key].inputs[0]
        going_down = shape.level[key] > shape.level[source]
        gaps[shape.level[key] - 1 if going_down else shape.level[key]].append(key)

    def run(row: list[str]) -> float:
        return sum(widths[k] for k in row) + GAP_X * max(0, len(row) - 1)

    needed = [2 * MARGIN + 2 * lv * INDENT + run(left[lv]) + MIDDLE + run(right[lv]) for lv in levels]
    if deepest >= 1:  # the bottom row ends before the decoder's first up-step, in the row above
        needed.append(2 * MARGIN + (2 * deepest - 1) * INDENT + run(left[deepest]) + MIDDLE + run(right[deepest - 1]))
    header = network_header(network, plan, max((spatial(s) for s in shapes.values()), default=1) or 1)
    header[-1] += "; a U-Net: encoder down the left, decoder up the right, skip connections across"
    width = max(*needed, 2 * MARGIN + 6.7 * max(map(len, header[1:])), 640)

    boxes: dict[str, Box] = {}
    top = header_height(header) + 20
    row_top, row_bottom = {}, {}
    for lv in levels:
        members = left[lv] + right[lv]
        tallest = max((tall[k] for k in members), default=SMALL_H)
        centre = top + tallest / 2
        x: float = MARGIN + lv * INDENT
        if lv == deepest and deepest >= 1:  # the bottom row: in the middle, between the sides of the U
            end = width - MARGIN - (deepest - 1) * INDENT - run(right[deepest - 1]) - MIDDLE
            x += max(0.0, (end - x - run(left[lv])) / 2)
        for n, key in enumerate(left[lv]):
            boxes[key] = Box(key, x, centre - tall[key] / 2, widths[key], tall[key], lv, n)
            x += widths[key] + GAP_X
        x = width - MARGIN - lv * INDENT - run(right[lv])
        for n, key in enumerate(right[lv], len(left[lv])):
            boxes[key] = Box(key, x, centre - tall[key] / 2, widths[key], tall[key], lv, n)
            x += widths[key] + GAP_X
        row_top[lv], row_bottom[lv] = centre - tallest / 2, centre + tallest / 2
        in_gap = max((tall[k] for k in gaps[lv]), default=0)
        top = row_bottom[lv] + (in_gap + 2 * LANE if in_gap else ROW_GAP)
    for lv, members in gaps.items():  # each transition next to the layer it feeds, midway between the rows
        centre = (row_bottom[lv] + row_top.get(lv + 1, row_bottom[lv] + 2 * LANE)) / 2
        for key in members:
            consumer = _consumer(plan, key, boxes)
            if consumer is not None:
                cx = boxes[consumer].cx
            else:
                target = shape.level[key]
                row = left[target] if shape.side[key] != "decoder" else right[target]
                cx = boxes[row[0]].cx if row else MARGIN + target * INDENT + widths[key] / 2
            boxes[key] = Box(key, cx - widths[key] / 2, centre - tall[key] / 2, widths[key], tall[key], lv, -1)
    height = max(b.bottom for b in boxes.values()) + MARGIN + 8

    edges = edge_kinds(plan)
    router = _Router(shape, boxes, row_top, row_bottom, small, left, right)
    paths = [path_element(router.path(src, dst, kind), kind) for src, dst, kind in edges]
    return compose(network, plan, header, (width, height), boxes, labels, families, paths, {k for *_, k in edges})


def _consumer(plan: Plan, key: str, boxes: dict[str, Box]) -> str | None:
    """The first layer placed in a row that reads `key` as data."""
    for ly in plan.layers:
        if key in ly.inputs[: figure(ly.op).data_inputs] and ly.name in boxes:
            return ly.name
    return None


class _Router:
    """The path of each edge of the U-Net figure, never through a box: straight along a row, straight
    across it for a skip, and through the lanes above and below the layers in the gaps between rows."""

    def __init__(
        self,
        shape: UShape,
        boxes: dict[str, Box],
        row_top: dict[int, float],
        row_bottom: dict[int, float],
        small: set[str],
        left: dict[int, list[str]],
        right: dict[int, list[str]],
    ):
        self.shape, self.boxes, self.small = shape, boxes, small
        self.row_top, self.row_bottom = row_top, row_bottom
        self.rows = {lv: left[lv] + right[lv] for lv in left}
        self.skip_lines: dict[int, list[float]] = {}
        self.leaving: dict[str, int] = {}  # edges that left a transition so far

    def path(self, src: str, dst: str, kind: str) -> str:
        a, b = self.boxes[src], self.boxes[dst]
        in_gap = src in self.shape.transitions, dst in self.shape.transitions
        if not any(in_gap) and a.row == b.row:
            return self._along_row(a, b)
        if in_gap[1] and not in_gap[0]:
            return self._into_gap(a, b)
        if in_gap[0]:
            return self._out_of_gap(a, b)
        return rounded([(a.right, a.cy), ((a.right + b.x) / 2, a.cy), ((a.right + b.x) / 2, b.cy), (b.x - 1, b.cy)])

    def _along_row(self, a: Box, b: Box) -> str:
        row = self.rows[a.row]
        between = [self.boxes[k] for k in row if a.right <= self.boxes[k].x and self.boxes[k].right <= b.x]
        if not between:  # neighbours, or a skip with nothing in its way: straight along the row's middle
            return f"M {num(a.right)} {num(a.cy)} L {num(b.x - 1)} {num(a.cy)}"
        if all(box.key in self.small for box in between) and self.shape.side[b.key] != self.shape.side[a.key]:
            # a skip across the row: straight, just above the small boxes it passes
            y = min(box.y for box in between) - SKIP_CLEAR
            taken = self.skip_lines.setdefault(a.row, [])
            while any(abs(y - t) < 5 for t in taken):
                y -= 6
            taken.append(y)
            if max(a.y, b.y) + 3 < y:
                return f"M {num(a.right)} {num(y)} L {num(b.x - 1)} {num(y)}"
        lift = 18 + (b.cx - a.cx) * 0.03  # an arc above the row, like the row layout's
        top = min(a.y, b.y) - lift
        return f"M {num(a.cx)} {num(a.y)} C {num(a.cx)} {num(top)}, {num(b.cx)} {num(top)}, {num(b.cx)} {num(b.y - 1)}"

    def _into_gap(self, a: Box, b: Box) -> str:
        """From a row's box to a transition in the gap below it (or above it, in the decoder): out of the
        box's bottom (top), along the lane on that side of the transition, into its top (bottom)."""
        if b.cy > a.cy:  # down
            lane = self.row_bottom[a.row] + LANE / 2 if a.row in self.row_bottom else b.y - LANE / 2
            lane = min(lane, b.y - LANE / 2)
            points = [(a.cx, a.bottom), (a.cx, lane), (b.cx, lane), (b.cx, b.y - 1)]
        else:
            lane = self.row_top[a.row] - LANE / 2
            lane = max(lane, b.bottom + LANE / 2)
            points = [(a.cx, a.y), (a.cx, lane), (b.cx, lane), (b.cx, b.bottom + 1)]
        return rounded(_straightened(points))

    def _out_of_gap(self, a: Box, b: Box) -> str:
        """From a transition to the layer it feeds: straight into it when it is right above or below, else
        along the lane between the transition and the row."""
        if abs(b.cx - a.cx) < 1:
            x = a.cx
        else:  # beside the straight one, each further edge a little further out
            n = self.leaving[a.key] = self.leaving.get(a.key, 0) + 1
            x = a.cx + (12 * n if b.cx > a.cx else -12 * n)
        if b.cy > a.cy:
            lane = (a.bottom + b.y) / 2 if b.key not in self.shape.transitions else a.bottom + LANE / 2
            points = [(x, a.bottom), (x, lane), (b.cx, lane), (b.cx, b.y - 1)]
        else:
            lane = (a.y + b.bottom) / 2 if b.key not in self.shape.transitions else a.y - LANE / 2
            points = [(x, a.y), (x, lane), (b.cx, lane), (b.cx, b.bottom + 1)]
        return rounded(_straightened(points))


def _straightened(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """An L-shaped path's points, with a sideways step too small to see dropped (a straight line)."""
    (x0, y0), (x1, y1), (x2, y2), (x3, y3) = points
    if abs(x0 - x3) < 1:
        return [(x0, y0), (x0, y3)]
    return points
