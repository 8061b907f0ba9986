"""`planner.draw`: the SVGs are well-formed, have one element per layer / per grid cell as the
guide's arithmetic says, and render in a real headless browser (Debian's chromium) to a PNG
that is not blank; the layer figure's animation moves."""

from __future__ import annotations

import math
import struct
import subprocess
import tempfile
import xml.etree.ElementTree as ET
import zlib
from collections import Counter
from pathlib import Path

import pytest

import planner
from planner.draw import KERNEL_OPS, draw_layer, draw_network
from planner.errors import UsageError
from planner.graph import Network
from planner.plan import Plan
from tests.conftest import ROOT, solved

SPECS = sorted((ROOT / "specs").glob("*.yaml"))
VALID = sorted((ROOT / "tests" / "specs" / "valid").glob("*.yaml"))
SVG = "{http://www.w3.org/2000/svg}"
CHROMIUM = Path("/usr/bin/chromium")


def spec(name: str) -> tuple[Network, Plan]:
    return solved(ROOT / "specs" / f"{name}.yaml")


def example(path: Path) -> str:
    return path.stem if path.parent.name == "specs" else f"valid/{path.stem}"


def classes(element: ET.Element) -> set[str]:
    return set(element.get("class", "").split())


def elements(svg: str, tag: str, *wanted: str) -> list[ET.Element]:
    """Every `tag` element of the document whose class list holds all of `wanted`."""
    return [e for e in ET.fromstring(svg).iter(SVG + tag) if set(wanted) <= classes(e)]


def cells(svg: str) -> Counter:
    return Counter(kind for e in elements(svg, "rect", "cell") for kind in classes(e) - {"cell"})


# ------------------------------------------------------------------------------ the network


@pytest.mark.parametrize("path", SPECS + VALID, ids=example)
def test_network_has_one_group_per_layer(path: Path) -> None:
    network, plan = solved(path)
    svg = draw_network(network, plan)
    groups = elements(svg, "g", "layer")
    assert [g.get("id") for g in groups] == [f"layer-{layer.name}" for layer in plan.layers]
    assert all(len([r for r in g.iter(SVG + "rect") if "box" in classes(r)]) == 1 for g in groups)
    assert len(elements(svg, "path", "edge")) == sum(len(layer.inputs) for layer in plan.layers)


def test_unet_boxes_show_the_contraction_and_the_skips() -> None:
    svg = draw_network(*spec("unet_original"))
    height = {
        g.get("id")[6:]: float(next(r for r in g.iter(SVG + "rect")).get("height")) for g in elements(svg, "g", "layer")
    }
    assert height["enc1a"] > height["enc2a"] > height["enc3a"] > height["bottom"]  # 570 > 282 > 138 > 28
    assert height["up4"] < height["up3"] < height["up2"] < height["up1"]  # 56 < 104 < 200 < 392
    kinds = Counter(next(iter(classes(e) - {"edge"})) for e in elements(svg, "path", "edge"))
    assert kinds == {"flow": 49, "skip": 8, "like": 4}  # skips: encoder -> crop, up -> concat
    up4 = next(g for g in elements(svg, "g", "layer") if g.get("id") == "layer-up4")
    assert "k=2* s=2*" in "".join(up4.itertext())  # the solved unknowns, marked


def test_text_is_escaped() -> None:
    text = 'name: "a <b> & \\"c\\""\ninput: {shape: [1, 1, 8]}\nlayers:\n  - {op: conv, out_channels: 1, kernel: 3}\n'
    network = planner.loads(text, "odd & <name>.yaml")
    svg = draw_network(network, planner.solve(network, verify=False).plans[0])
    title = next(ET.fromstring(svg).iter(SVG + "text")).text
    assert title == 'a <b> & "c" — odd & <name>.yaml'


# ------------------------------------------------------------------------------ one layer

# (spec, layer): {cell kind: count} and the drawn output grid, hand-checked against the guide.
HAND_CHECKED = {
    # Fig 2.7: i=6, k=3, s=2, p=1: an 8x8 padded input (28 padding cells), a 3x3 output
    ("guide_transposed", "direct"): ({"input": 36, "pad": 28, "output": 9}, (3, 3)),
    # Fig 4.7: i'=3 stretched by s=2 to 5x5 (16 zeros), p'=1 on each side and a=1 at the end: 8x8, output 6x6
    ("guide_transposed", "transposed"): ({"input": 9, "zero": 16, "pad": 39, "output": 36}, (6, 6)),
    # i'=7 stretched to 13, p'=1 and a=1: 16x16 cells, 14x14 output
    ("autoencoder", "dec2"): ({"input": 49, "zero": 120, "pad": 87, "output": 196}, (14, 14)),
    # 1-D, clipped to 16 of 4097 cells: 1 padding cell (causal), 15 inputs, 15 of the 4096 outputs
    ("wavenet_causal", "causal0"): ({"pad": 1, "input": 15, "output": 15}, (1, 15)),
    # clipped to 16 of 57 per axis: the first row and column are p', then input, zero, input, ...
    ("unet_original", "up4"): ({"pad": 31, "input": 64, "zero": 161, "output": 225}, (15, 15)),
}


@pytest.mark.parametrize("case", list(HAND_CHECKED), ids="/".join)
def test_layer_cells_follow_the_arithmetic(case: tuple[str, str]) -> None:
    svg = draw_layer(*spec(case[0]), case[1])
    counts, (rows, cols) = HAND_CHECKED[case]
    assert cells(svg) == counts
    steps = elements(svg, "animateTransform")
    assert len(steps) == 2  # the kernel and the current output cell step together
    assert all(len(s.get("values").split(";")) == rows * cols for s in steps)
    assert len({s.get("dur") for s in steps}) == 1 and all(s.get("calcMode") == "discrete" for s in steps)


def test_dilation_leaves_gaps_between_taps() -> None:
    text = """
input: {shape: [1, 1, 11, 11]}
layers:
  - {name: dilated, op: conv, out_channels: 1, kernel: [3, 2], dilation: [2, 1], stride: [1, 2]}
"""
    network = planner.loads(text, "dilated.yaml")
    svg = draw_layer(network, planner.solve(network, verify=False).plans[0], "dilated")
    assert cells(svg) == {"input": 121, "output": 7 * 5}  # o = (11 - 4 - 1) + 1 = 7 rows, (11 - 2)//2 + 1 = 5 columns
    taps = elements(svg, "rect", "tap")
    cell = float(elements(svg, "rect", "cell", "input")[0].get("width"))
    ys = sorted({round((float(t.get("y")) - float(taps[0].get("y"))) / cell) for t in taps})
    xs = sorted({round((float(t.get("x")) - float(taps[0].get("x"))) / cell) for t in taps})
    assert (len(taps), ys, xs) == (6, [0, 2, 4], [0, 1])
    kernel = elements(svg, "animateTransform")[0].get("values").split(";")
    assert kernel[:2] == ["0 0", f"{2 * cell:g} 0"]  # stride 2 along the columns


@pytest.mark.parametrize("path", SPECS + VALID, ids=example)
def test_every_kernel_layer_draws(path: Path) -> None:
    network, plan = solved(path)
    for layer in plan.layers:
        if layer.op in KERNEL_OPS:
            svg = draw_layer(network, plan, layer.name)
            assert cells(svg)["output"] >= 1 and elements(svg, "rect", "tap"), layer.name
            if not elements(svg, "text", "ellipsis", "input"):  # the whole input is drawn: so is the output
                assert cells(svg)["output"] == math.prod(layer.output_shape[2:4]), layer.name
            # the kernel's last position still lies on the input grid
            grid = elements(svg, "rect", "cell")
            right = max(float(r.get("x")) + float(r.get("width")) for r in grid if "output" not in classes(r))
            bottom = max(float(r.get("y")) + float(r.get("height")) for r in grid if "output" not in classes(r))
            footprint = elements(svg, "rect", "footprint")[0]
            dx, dy = map(float, elements(svg, "animateTransform")[0].get("values").split(";")[-1].split())
            assert float(footprint.get("x")) + float(footprint.get("width")) + dx <= right + 0.01, layer.name
            assert float(footprint.get("y")) + float(footprint.get("height")) + dy <= bottom + 0.01, layer.name
        else:
            with pytest.raises(UsageError, match="no kernel arithmetic"):
                draw_layer(network, plan, layer.name)


def test_unknown_layer_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="no layer named 'nope'"):
        draw_layer(*spec("guide_transposed"), "nope")


# ------------------------------------------------------------------------------ in a browser


def png_pixels(path: Path) -> tuple[int, int, list[bytes]]:
    """A tiny PNG decoder (8-bit grey, RGB or RGBA, not interlaced): width, height, rows of pixels."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, header = 8, b"", None
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos : pos + 8])
        body = data[pos + 8 : pos + 8 + length]
        pos += 12 + length
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
    width, height, depth, colour, _, _, interlace = header
    assert depth == 8 and interlace == 0 and colour in (0, 2, 4, 6), header
    bpp = {0: 1, 2: 3, 4: 2, 6: 4}[colour]
    raw, stride = zlib.decompress(idat), width * bpp
    rows, previous = [], bytearray(stride)
    for r in range(height):
        kind, line = raw[r * (stride + 1)], bytearray(raw[r * (stride + 1) + 1 : (r + 1) * (stride + 1)])
        if kind == 2:
            line = bytearray((a + b) & 255 for a, b in zip(line, previous, strict=True))
        elif kind in (1, 3, 4):
            for i in range(stride):
                left = line[i - bpp] if i >= bpp else 0
                up, corner = previous[i], previous[i - bpp] if i >= bpp else 0
                if kind == 1:
                    pred = left
                elif kind == 3:
                    pred = (left + up) // 2
                else:
                    p = left + up - corner
                    pa, pb, pc = abs(p - left), abs(p - up), abs(p - corner)
                    pred = left if pa <= pb and pa <= pc else up if pb <= pc else corner
                line[i] = (line[i] + pred) & 255
        rows.append(bytes(line))
        previous = line
    return width, height, [bytes(row) for row in rows]


def colours(path: Path) -> Counter:
    width, _, rows = png_pixels(path)
    bpp = len(rows[0]) // width
    return Counter(row[i : i + 3] for row in rows for i in range(0, len(row), bpp))


def screenshot(svg: str, directory: Path, *, size: tuple[int, int] = (1200, 800), seconds: float = 0) -> Path:
    source, png = directory / "figure.svg", directory / f"figure-{seconds:g}.png"
    source.write_text(svg, encoding="utf-8")
    command = [
        str(CHROMIUM),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",  # containers' /dev/shm is often 64 MB; chromium then crashes
        f"--user-data-dir={tempfile.mkdtemp(dir=directory)}",
        "--hide-scrollbars",
        f"--screenshot={png}",
        f"--window-size={size[0]},{size[1]}",
    ]
    if seconds:
        command.append(f"--virtual-time-budget={int(seconds * 1000)}")
    subprocess.run([*command, str(source)], capture_output=True, timeout=90, check=True)
    assert png.exists(), "chromium wrote no screenshot"
    return png


needs_chromium = pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium")


@needs_chromium
def test_network_renders_in_chromium(tmp_path: Path) -> None:
    seen = colours(screenshot(draw_network(*spec("unet_original")), tmp_path))
    assert len(seen) > 50, "blank or nearly blank"
    assert sum(n for c, n in seen.items() if c != b"\xff\xff\xff") > 0.05 * sum(seen.values())
    assert seen[bytes((0xDB, 0xE7, 0xF5))] > 1000  # the fill of the convolution boxes: the style applied


@needs_chromium
def test_layer_renders_and_animates_in_chromium(tmp_path: Path) -> None:
    svg = draw_layer(*spec("guide_transposed"), "transposed")
    # virtual time pins the animation's clock: 0.7 s a step, so 0.35 s is the first output, 3.85 s the sixth
    start = screenshot(svg, tmp_path, size=(800, 520), seconds=0.35)
    seen = colours(start)
    assert len(seen) > 20, "blank or nearly blank"
    output = (0xAE, 0xE3, 0xDC)
    for fill in ((0x8F, 0xB9, 0xE3), output):  # input and output cells: the style applied
        assert seen[bytes(fill)] > 500, fill
    first, sixth = (elements(svg, "rect", "cell", "output")[n] for n in (0, 5))

    def pixel(png: Path, cell: ET.Element) -> bytes:
        width, _, rows = png_pixels(png)
        x = int(float(cell.get("x")) + float(cell.get("width")) / 2)
        y = int(float(cell.get("y")) + float(cell.get("height")) / 2)
        bpp = len(rows[0]) // width
        return rows[y][x * bpp : x * bpp + 3]

    assert pixel(start, first) != bytes(output) and pixel(start, sixth) == bytes(output)
    for _ in range(3):  # headless chromium's virtual time now and then renders SMIL a step behind on a busy machine
        later = screenshot(svg, tmp_path, size=(800, 520), seconds=3.85)
        if pixel(later, first) == bytes(output):
            break
    assert pixel(later, first) == bytes(output) and pixel(later, sixth) != bytes(output), "the kernel did not move"


@pytest.mark.parametrize("padding,kept", [(3, 3), ([[3, 2]], 4), (4, 3)], ids=["both-sides", "asymmetric", "wider"])
def test_transposed_padding_beyond_the_kernel_draws_the_cropped_stretched_input(padding, kept: int) -> None:
    """Padding past d(k-1) makes p' negative: the figure keeps only the stretched cells the crop leaves."""
    size = 5 if padding != 4 else 7
    network = planner.loads(
        f"input: {{shape: [1, 1, {size}]}}\nlayers:\n"
        f"  - {{name: t, op: conv_transpose, out_channels: 1, kernel: 3, padding: {padding}}}\n",
        "t.yaml",
    )
    plan = planner.solve(network, verify=False).plans[0]
    svg = draw_layer(network, plan, "t")
    drawn = cells(svg)
    assert drawn["pad"] == 0
    assert drawn["input"] + drawn["zero"] == kept
    assert drawn["output"] == plan.layer("t").output_shape[2] == kept - 2
