"""The network figure (`planner draw`): one box per layer, each box as tall as its output is large (as
U-Net figures do), with the data flow as edges. A U-Net (`unet.u_shape`) is drawn as U-Net figures draw
it (`unet.py`); any other network in data-flow order, left to right in rows (here)."""

from __future__ import annotations

import dataclasses
import math

from planner.draw.boxes import (
    BOX_W,
    MARGIN,
    POINTWISE_W,
    Box,
    compose,
    edge_kinds,
    header_height,
    heights,
    input_label,
    layer_label,
    network_header,
    path_element,
    rounded,
    spatial,
    text_width,
)
from planner.draw.figures import figure
from planner.draw.svg import num
from planner.draw.unet import draw_unet, u_shape
from planner.graph import Network, layer_of
from planner.plan import Plan

GAP_X = 30
ARC_ROOM = 56  # above each row, for the arcs of skip connections within the row
ROW_GAP = 34
CARRIAGE = 10  # the carriage-return line, below each row
LANE_TOP, LANE = 20, 7  # lanes of the edges between rows, below the carriage return


def draw_network(network: Network, plan: Plan, *, columns: int | None = None) -> str:
    """An SVG of the whole plan, one `<g class="layer">` box per layer: a U-Net as U-Net figures draw it
    (see `unet.draw_unet`), unless `columns` asks for rows; any other network in rows (see `draw_rows`)."""
    plan = _edges_from_layers(plan)
    shape = u_shape(plan) if columns is None else None
    if shape is not None:
        return draw_unet(network, plan, shape)
    return draw_rows(network, plan, columns=columns)


def _edges_from_layers(plan: Plan) -> Plan:
    """The plan with a split's pieces `s[i]` read as the split `s`: the figure draws an edge from its box."""
    layers = tuple(dataclasses.replace(ly, inputs=tuple(map(layer_of, ly.inputs))) for ly in plan.layers)
    return dataclasses.replace(plan, layers=layers)


def draw_rows(network: Network, plan: Plan, *, columns: int | None = None) -> str:
    """The row layout: one `<g class="layer">` box per layer in data-flow order, left to right
    in rows of `columns` boxes, each as tall as its output is large, with the data flow as edges
    (skip connections and crop sizes as curved edges routed between the rows)."""
    layers = plan.layers
    keys = ["input", *(ly.name for ly in layers)]
    if columns is None:  # rows about three times as wide as they are many, and evenly filled
        widest = max(6, min(12, math.ceil(math.sqrt(len(keys) * 3))))
        columns = math.ceil(len(keys) / math.ceil(len(keys) / widest))
    columns = max(1, min(columns, len(keys)))
    labels = {"input": input_label(plan), **{ly.name: layer_label(ly) for ly in layers}}
    shapes = {"input": plan.input_shape, **{ly.name: ly.output_shape for ly in layers}}
    families = {"input": "input", **{ly.name: figure(ly.op).family for ly in layers}}
    place = {key: divmod(n, columns) for n, key in enumerate(keys)}  # (row, column)

    edges = edge_kinds(plan)
    routed = [e for e in edges if place[e[0]][0] != place[e[1]][0] and not (e[2] == "flow" and place[e[1]][1] == 0)]
    row_gap = max(ROW_GAP, LANE_TOP + LANE * len(routed) + 8)

    biggest = max((spatial(s) for s in shapes.values()), default=1) or 1
    tall = heights(keys, shapes, labels)
    widths = {key: max(POINTWISE_W if families[key] == "pointwise" else BOX_W, text_width(labels[key])) for key in keys}

    header = network_header(network, plan, biggest)
    top: float = header_height(header)
    boxes: dict[str, Box] = {}
    rows = [keys[i : i + columns] for i in range(0, len(keys), columns)]
    right = 0.0
    row_bottom = []
    for r, row in enumerate(rows):
        tallest = max(tall[k] for k in row)
        centre = top + ARC_ROOM + tallest / 2
        x: float = MARGIN
        for c, key in enumerate(row):
            boxes[key] = Box(key, x, centre - tall[key] / 2, widths[key], tall[key], r, c)
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
    return compose(network, plan, header, (width, height), boxes, labels, families, paths, {k for *_, k in edges})


def _edge(a: Box, b: Box, kind: str, row_bottom: list[float], right: float, lane: int | None) -> str:
    """A path from box a to box b: straight between neighbours, a carriage return across a row break,
    an arc above the row within a row; between rows, a rounded path along its own lane in the gaps
    between the rows (and the gutter on the right), so that it never crosses a box."""
    if a.row == b.row and b.col == a.col + 1:
        d = f"M {num(a.x + a.w)} {num(b.cy)} L {num(b.x - 1)} {num(b.cy)}"
    elif a.row == b.row:
        lift = min(ARC_ROOM - 6, 18 + (b.cx - a.cx) * 0.05)
        top = min(a.y, b.y) - lift
        d = f"M {num(a.cx)} {num(a.y)} C {num(a.cx)} {num(top)}, {num(b.cx)} {num(top)}, {num(b.cx)} {num(b.y - 1)}"
    elif lane is None:  # the flow's carriage return to the start of the next row
        mid = row_bottom[a.row] + CARRIAGE
        d = rounded(
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
        d = rounded(points)
    return path_element(d, kind)
