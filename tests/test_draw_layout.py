"""Where `planner draw` puts things, read back from the SVG (xml.etree): a U-Net as U-Net figures draw it
(encoder down the left, decoder up the right, skips straight across, levels ordered by size, shape-
preserving layers small), other networks in rows as before; the layer figure shows both ends of a
clipped padded axis; `draw` writes `.svg` files only."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

import planner
from planner.draw import draw_layer, draw_network
from planner.draw.network import draw_rows
from planner.draw.unet import u_shape
from tests.conftest import EXAMPLES, ROOT, SPECS, run, solved

SVG = "{http://www.w3.org/2000/svg}"
UNETS = ["unet_same", "unet_original"]
SMALL_OPS = {"relu", "sigmoid", "tanh", "silu", "batchnorm", "dropout", "identity"}


def classes(element: ET.Element) -> set[str]:
    return set(element.get("class", "").split())


def boxes(svg: str) -> dict[str, tuple[float, float, float, float]]:
    """Each layer's box (and the input's) as (x, y, width, height)."""
    out = {}
    for group in ET.fromstring(svg).iter(SVG + "g"):
        key = "input" if group.get("id") == "input" else (group.get("id") or "")[6:]
        if group.get("id") == "input" or "layer" in classes(group):
            rect = next(r for r in group.iter(SVG + "rect") if "box" in classes(r))
            out[key] = tuple(float(rect.get(a)) for a in ("x", "y", "width", "height"))
    return out


def edges(svg: str, plan: planner.Plan) -> dict[tuple[str, str], tuple[set[str], list[tuple[float, float]]]]:
    """Each edge (source, target): its classes and its path's points, in the order the figure writes them
    (every input of every layer, in the plan's order)."""
    paths = [e for e in ET.fromstring(svg).iter(SVG + "path") if "edge" in classes(e)]
    pairs = [(source, layer.name) for layer in plan.layers for source in layer.inputs]
    assert len(paths) == len(pairs)
    out = {}
    for (source, target), path in zip(pairs, paths, strict=True):
        numbers = [float(n) for n in re.findall(r"-?\d+(?:\.\d+)?", path.get("d"))]
        out[source, target] = (classes(path), list(zip(numbers[::2], numbers[1::2], strict=True)))
    return out


def spatial(plan: planner.Plan, key: str) -> int:
    shape = plan.input_shape if key == "input" else plan.layer(key).output_shape
    return max(shape[2:])


@pytest.fixture(params=UNETS, ids=str)
def unet(request) -> tuple[planner.Network, planner.Plan, str]:
    network, plan = solved(SPECS / f"{request.param}.yaml")
    return network, plan, draw_network(network, plan)


def test_the_unets_are_found_and_nothing_else(unet) -> None:
    _, plan, _ = unet
    shape = u_shape(plan)
    assert shape is not None and max(shape.level.values()) == 4
    for path in EXAMPLES:
        if path.stem not in UNETS:
            assert u_shape(solved(path)[1]) is None, path.stem


def test_other_networks_keep_the_row_layout() -> None:
    for path in EXAMPLES:
        if path.stem not in UNETS:
            network, plan = solved(path)
            assert draw_network(network, plan) == draw_rows(network, plan), path.stem


def test_levels_are_rows_ordered_by_size(unet) -> None:
    """One row per level, the input's on top: every box of a lower row is smaller than every box above it."""
    _, plan, svg = unet
    shape, placed = u_shape(plan), boxes(svg)
    rows: dict[int, list[str]] = {}
    for key, level in shape.level.items():
        if key not in shape.transitions:
            rows.setdefault(level, []).append(key)
    centres = {level: [placed[k][1] + placed[k][3] / 2 for k in keys] for level, keys in rows.items()}
    assert all(max(c) - min(c) < 0.5 for c in centres.values()), centres  # each row on one line
    order = sorted(rows, key=lambda level: centres[level][0])
    assert order == sorted(rows)  # level 0 on top, the deepest at the bottom
    for upper, lower in zip(order, order[1:], strict=False):
        assert min(spatial(plan, k) for k in rows[upper]) > max(spatial(plan, k) for k in rows[lower])


def test_the_encoder_goes_down_the_left_and_the_decoder_up_the_right(unet) -> None:
    _, plan, svg = unet
    shape, placed = u_shape(plan), boxes(svg)
    keys = ["input", *(ly.name for ly in plan.layers)]
    centre_y = {k: placed[k][1] + placed[k][3] / 2 for k in keys}
    encoder = [k for k in keys if shape.side[k] == "encoder"]
    decoder = [k for k in keys if shape.side[k] == "decoder"]
    assert all(centre_y[b] > centre_y[a] - 0.5 for a, b in zip(encoder, encoder[1:], strict=False))  # down
    assert all(centre_y[b] < centre_y[a] + 0.5 for a, b in zip(decoder, decoder[1:], strict=False))  # up
    for level in set(shape.level.values()):
        left = [k for k in encoder if shape.level[k] == level]
        right = [k for k in decoder if shape.level[k] == level]
        if left and right:
            assert max(placed[k][0] + placed[k][2] for k in left) < min(placed[k][0] for k in right), level
    bottom = [k for k in keys if shape.side[k] == "bottom"]
    assert min(centre_y[k] for k in bottom) > max(centre_y[k] for k in encoder if k not in shape.transitions)


def test_skips_run_straight_across_their_row(unet) -> None:
    """Each skip from the encoder to the decoder layer that joins it (a concat, or the crop that feeds one)
    is one horizontal line, from the encoder box's right side to the decoder box's left, through no box."""
    _, plan, svg = unet
    shape, placed = u_shape(plan), boxes(svg)
    across = {
        pair: path
        for pair, path in edges(svg, plan).items()
        if shape.side[pair[0]] == "encoder" and shape.side[pair[1]] == "decoder"
    }
    assert len(across) == 4  # one per level above the bottom
    for (source, target), (kinds, points) in across.items():
        assert "skip" in kinds
        assert len(points) == 2 and points[0][1] == points[1][1], (source, target, points)
        (x0, y), (x1, _) = points
        sx, sy, sw, sh = placed[source]
        tx, ty, tw, th = placed[target]
        assert abs(x0 - (sx + sw)) < 1 and abs(x1 - tx) < 2 and x0 < x1
        assert sy < y < sy + sh and ty < y < ty + th  # it leaves and enters the boxes' sides
        for key, (bx, by, bw, bh) in placed.items():  # and crosses no other box
            if key not in (source, target):
                assert not (bx < x1 and x0 < bx + bw and by < y < by + bh), (source, target, key)


def test_shape_preserving_layers_are_drawn_small(unet) -> None:
    _, plan, svg = unet
    placed = boxes(svg)
    small = [ly.name for ly in plan.layers if ly.op in SMALL_OPS]
    convs = [ly.name for ly in plan.layers if ly.op == "conv"]
    assert small and convs
    assert max(placed[k][3] for k in small) < min(placed[k][3] for k in convs) / 2
    assert max(placed[k][2] for k in small) < min(placed[k][2] for k in convs) / 2


def test_transitions_sit_between_the_rows_next_to_the_layer_they_feed(unet) -> None:
    """A pooling right above the first layer of the row below it, an up-convolution right below the
    layer above that joins it: the edge between them is one vertical line."""
    _, plan, svg = unet
    shape, placed = u_shape(plan), boxes(svg)
    paths = edges(svg, plan)
    for key in shape.transitions:
        consumer = next(ly.name for ly in plan.layers if ly.inputs[0] == key)
        (x0, y0), (x1, y1) = paths[key, consumer][1]
        assert x0 == x1, (key, consumer)
        kx, ky, kw, kh = placed[key]
        assert abs(x0 - (kx + kw / 2)) < 1


def test_no_edge_goes_through_a_box(unet) -> None:
    """Every straight piece of every edge misses every box but its own two ends."""
    _, plan, svg = unet
    placed = boxes(svg)
    for (source, target), (_, points) in edges(svg, plan).items():
        if any(x0 != x1 and y0 != y1 for (x0, y0), (x1, y1) in zip(points, points[1:], strict=False)):
            continue  # an arc above a row (a cubic curve): not a polyline to check
        for (x0, y0), (x1, y1) in zip(points, points[1:], strict=False):
            for key, (bx, by, bw, bh) in placed.items():
                if key in (source, target):
                    continue
                inside_x = min(x0, x1) < bx + bw - 1 and bx + 1 < max(x0, x1)
                inside_y = min(y0, y1) < by + bh - 1 and by + 1 < max(y0, y1)
                assert not (inside_x and inside_y), (source, target, key)


def test_the_unet_figure_keeps_one_group_per_layer_and_its_edge_kinds() -> None:
    network, plan = solved(SPECS / "unet_original.yaml")
    svg = draw_network(network, plan)
    groups = [g for g in ET.fromstring(svg).iter(SVG + "g") if "layer" in classes(g)]
    assert [g.get("id") for g in groups] == [f"layer-{ly.name}" for ly in plan.layers]
    kinds = [next(iter(k - {"edge"})) for k, _ in edges(svg, plan).values()]
    assert (kinds.count("flow"), kinds.count("skip"), kinds.count("like")) == (49, 8, 4)


# ------------------------------------------------------------------------------ the layer figure


def grid(svg: str) -> list[tuple[str, float, float]]:
    """The input cells drawn, animated grid and tail alike: (kind, x, y)."""
    out = []
    for group in ET.fromstring(svg).iter(SVG + "g"):
        for r in group.iter(SVG + "rect"):
            kind = classes(r) & {"pad", "input", "zero"}
            if kind and classes(r) & {"cell", "end"}:
                out.append((kind.pop(), float(r.get("x")), float(r.get("y"))))
    return sorted(set(out), key=lambda c: (c[2], c[1]))


def layer_svg(text: str, name: str) -> str:
    network = planner.loads(text, "clipped.yaml")
    return draw_layer(network, planner.solve(network, verify=False).plans[0], name)


@pytest.mark.parametrize("padding,ends", [(2, (2, 2)), ("[[1, 3]]", (1, 3)), ("[[3, 0]]", (3, 0))], ids=str)
def test_a_clipped_padded_axis_shows_the_padding_at_both_ends(padding, ends: tuple[int, int]) -> None:
    layer = f"{{name: c, op: conv, out_channels: 1, kernel: 3, padding: {padding}}}"
    svg = layer_svg(f"input: {{shape: [1, 1, 60]}}\nlayers:\n  - {layer}\n", "c")
    cells = grid(svg)
    columns = sorted({x for _, x, _ in cells})
    kinds = [next(k for k, x, _ in cells if x == column) for column in columns]
    begin, end = ends
    assert kinds[:begin] == ["pad"] * begin and kinds[begin] == "input"
    assert kinds[len(kinds) - end :] == ["pad"] * end and kinds[len(kinds) - end - 1] == "input"
    root = ET.fromstring(svg)
    ellipses = [e for e in root.iter(SVG + "text") if {"ellipsis", "input"} <= classes(e)]
    assert len(ellipses) == 1  # one gap, with ⋯, between the first cells and the last ones
    tail = [float(r.get("x")) for r in root.iter(SVG + "rect") if "end" in classes(r) and "output" not in classes(r)]
    assert bool(tail) == bool(end)  # a tail exactly when the axis ends in padding
    assert all(x > float(ellipses[0].get("x")) for x in tail)  # past the ⋯
    if end:
        last = next(r for r in root.iter(SVG + "rect") if {"footprint", "last"} <= classes(r))
        assert float(last.get("x")) + float(last.get("width")) == pytest.approx(columns[-1] + (columns[1] - columns[0]))
        assert any({"end", "output", "last"} <= classes(r) for r in root.iter(SVG + "rect"))
        notes = " ".join(t.text or "" for t in root.iter(SVG + "text"))
        tail = max(3, end + 1)  # the last window (k = 3 cells), and an input cell before the end padding
        assert f"the first 16 and the last {tail} of {60 + begin + end} cells" in notes


def test_both_axes_of_a_2d_layer_show_their_end_padding() -> None:
    svg = layer_svg(
        "input: {shape: [1, 1, 40, 40]}\nlayers:\n  - {name: c, op: conv, out_channels: 1, kernel: 3, padding: 1}\n",
        "c",
    )
    cells = grid(svg)
    xs, ys = sorted({x for _, x, _ in cells}), sorted({y for _, _, y in cells})
    corner = {(x, y): k for k, x, y in cells}
    assert corner[xs[-1], ys[-1]] == corner[xs[0], ys[0]] == "pad"  # both corners of the padded input
    assert corner[xs[-2], ys[-2]] == "input"
    assert "both axes: the first 16 and the last 3 of 42 cells" in svg


def test_an_unclipped_axis_has_no_tail() -> None:
    svg = layer_svg(
        "input: {shape: [1, 1, 8, 8]}\nlayers:\n  - {name: c, op: conv, out_channels: 1, kernel: 3, padding: 1}\n", "c"
    )
    assert not [r for r in ET.fromstring(svg).iter(SVG + "rect") if "end" in classes(r)]
    assert not [t for t in ET.fromstring(svg).iter(SVG + "text") if "ellipsis" in classes(t)]


# ------------------------------------------------------------------------------ the file name


@pytest.mark.parametrize("name", ["net.png", "net", "net.svg.txt", "svg"])
def test_draw_refuses_a_file_that_is_not_svg(tmp_path: Path, name: str) -> None:
    target = tmp_path / name
    code, out, err = run("draw", ROOT / "specs" / "guide_transposed.yaml", "--output", target)
    assert code == 2 and out == ""
    assert "argument --output: draw writes SVG, so the file name must end in .svg" in err and name in err
    assert not target.exists()


def test_draw_leaves_an_existing_file_of_another_kind_alone(tmp_path: Path) -> None:
    target = tmp_path / "net.png"
    target.write_bytes(b"\x89PNG old")
    code, _, _ = run("draw", ROOT / "specs" / "guide_transposed.yaml", "--output", target)
    assert code == 2 and target.read_bytes() == b"\x89PNG old"


@pytest.mark.parametrize("name", ["net.svg", "NET.SVG"])
def test_draw_writes_an_svg_name(tmp_path: Path, name: str) -> None:
    code, _, err = run("draw", ROOT / "specs" / "guide_transposed.yaml", "--output", tmp_path / name)
    assert code == 0, err
    assert ET.parse(tmp_path / name).getroot().tag == SVG + "svg"
