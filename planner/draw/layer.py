"""The layer figure (`planner draw --layer`): one layer's arithmetic in the style of Dumoulin & Visin's
figures: the input grid with its padding dashed, the kernel's footprint, the output grid, and a SMIL
animation stepping the kernel over the output positions. How each op's axes are drawn is its
`Kernel` entry in `figures.FIGURES`."""

from __future__ import annotations

from dataclasses import dataclass

from planner.draw.figures import KERNEL_OPS, Axis, Kernel, figure, shape_text
from planner.draw.svg import document, el, num
from planner.errors import UsageError
from planner.graph import Network
from planner.plan import LayerPlan, Plan

_LAYER_STYLE = """
.background { fill: #ffffff; }
.title { font-size: 16px; font-weight: bold; fill: #222; }
.formula { font-size: 12.5px; fill: #333; }
.note { font-size: 11.5px; fill: #666; font-style: italic; }
.caption { font-size: 12.5px; fill: #222; font-weight: bold; }
.cell, .end, .swatch { stroke-width: 1; }
.cell.input, .end.input, .swatch.input { fill: #8fb9e3; stroke: #2f5f8f; }
.cell.pad, .end.pad, .swatch.pad { fill: #ffffff; stroke: #8a8a8a; stroke-dasharray: 3 2; }
.cell.zero, .end.zero, .swatch.zero { fill: #f4f4f4; stroke: #9a9a9a; stroke-dasharray: 1 2; }
.cell.output, .end.output, .swatch.output { fill: #aee3dc; stroke: #24877b; }
.end.output.last { stroke: #0d4740; stroke-width: 2; }
.tap, .swatch.kernel-tap { fill: #163d66; fill-opacity: 0.55; stroke: #0b2540; stroke-width: 1.4; }
.footprint { fill: none; stroke: #0b2540; stroke-width: 1.4; stroke-dasharray: 4 3; }
.footprint.last { stroke: #0d4740; stroke-width: 2; }
.current, .swatch.current-cell { fill: #1f7a6f; fill-opacity: 0.8; stroke: #0d4740; stroke-width: 1.5; }
.ellipsis { font-size: 18px; fill: #666; }
.legend { font-size: 11.5px; fill: #333; }
.arrow { fill: none; stroke: #777; stroke-width: 1.6; }
.bracket { fill: none; stroke: #888; stroke-width: 1; }
.segment { font-size: 11px; fill: #444; }
"""


def draw_layer(network: Network, plan: Plan, name: str) -> str:
    """An SVG of one conv, conv_transpose or pooling layer's arithmetic in the guide's figure style,
    animated with SMIL; raises UsageError for a layer without kernel arithmetic or an unknown name."""
    layer = plan.layer(name)  # UnknownLayer, a UsageError, names the layers
    kernel = figure(layer.op).kernel
    if kernel is None:
        raise UsageError(
            f"layer {name!r} is a {layer.op} layer, which has no kernel arithmetic to draw; "
            f"draw a {', '.join(KERNEL_OPS[:-1])} or {KERNEL_OPS[-1]} layer"
        )
    rank = len(layer.input_shape) - 2
    axes = [kernel.axis(layer, a) for a in range(min(rank, 2))]
    if rank == 1:
        axes.insert(0, Axis(("input",), 1, 1, 1, 1, ()))
    rows, cols = axes
    return _LayerFigure(network, layer, kernel, rows, cols, rank).svg()


class _LayerFigure:
    """The picture of one layer: text on top, the input grid, an arrow, the output grid, a legend.

    A 2-D (or 3-D) layer shows its first two spatial axes as rows and columns of square cells,
    the output to the right; a 1-D layer shows tall cells in one strip, the output below it.
    """

    def __init__(self, network: Network, layer: LayerPlan, kernel: Kernel, rows: Axis, cols: Axis, rank: int):
        self.network, self.layer, self.kernel = network, layer, kernel
        self.rows, self.cols, self.rank = rows, cols, rank
        vr, vc = (ax.view() + ax.tail() + (GAP_CELLS if ax.tail() else 0) for ax in (rows, cols))
        if rank == 1:
            self.cw, self.ch = max(6, min(30, int(900 // vc))), 30
        else:
            self.cw = self.ch = max(5, min(30, int(440 // max(vr, vc))))

    def text(self) -> tuple[str, list[str], list[str]]:
        layer, rows = self.layer, self.rows
        title = (
            f"{layer.name} — {self.kernel.title}, {shape_text(layer.input_shape)} → {shape_text(layer.output_shape)}"
        )
        lines = []
        if self.rank >= 2 and rows.formula == self.cols.formula:
            lines += ["both axes: " + rows.formula[0], *rows.formula[1:]]
        else:
            for name, ax in zip(self.axis_names(), self.drawn(), strict=True):
                lines += [f"{name}: {ax.formula[0]}", *("    " + line for line in ax.formula[1:])]
        notes = self.kernel.notes(layer)
        if self.rank == 3:
            notes.append("a 3-D layer: the first two spatial axes are drawn; axis 2 works the same way")
        clipped = {name: _clipped(ax) for name, ax in zip(self.axis_names(), self.drawn(), strict=True)}
        if self.rank >= 2 and len(set(clipped.values())) == 1:
            clipped = {"both axes": clipped[self.axis_names()[0]]}
        shown = [f"{name}: {text}" for name, text in clipped.items() if text]
        if shown:
            notes.append("clipped view (⋯): " + "; ".join(shown))
        notes.append(
            f"layer {layer.name} of {self.network.name} ({self.network.file}); the animation steps the "
            "kernel over the output positions"
        )
        return title, lines, notes

    def axis_names(self) -> list[str]:
        return ["axis 0 (rows)", "axis 1 (columns)"] if self.rank >= 2 else ["axis 0"]

    def drawn(self) -> list[Axis]:
        return [self.rows, self.cols] if self.rank >= 2 else [self.cols]

    def svg(self) -> str:
        rows, cols, cw, ch = self.rows, self.cols, self.cw, self.ch
        vr, vc = rows.view(), cols.view()
        nr, nc = rows.outputs_in_view(), cols.outputs_in_view()
        tracks = _Track.inputs(rows, ch), _Track.inputs(cols, cw)
        out_tracks = _Track.outputs(rows, ch), _Track.outputs(cols, cw)
        title, formulas, remarks = self.text()
        text_width = 980
        lines = [w for line in formulas for w in _wrap_text(line, text_width, 7.2)]
        notes = [w for note in remarks for w in _wrap_text(note, text_width, 6.6)]

        gx, gy = 40, 52 + 18 * len(lines) + 16 * len(notes) + 40
        grid_w, grid_h = tracks[1].length, tracks[0].length
        out_w, out_h = out_tracks[1].length, out_tracks[0].length
        ox: float
        oy: float
        arrow: tuple[float, float, float, float]
        if self.rank == 1:  # output strip below the input strip and its labels
            ox, oy = gx, gy + grid_h + 104
            arrow = (gx + 40, gy + grid_h + 40, gx + 40, oy - 26)
            bottom: float = oy + ch
        else:
            ox, oy = gx + grid_w + 110, gy + max(0, (grid_h - out_h) / 2)
            arrow = (gx + grid_w + 30, gy + grid_h / 2, ox - 22, gy + grid_h / 2)
            bottom = max(gy + grid_h, oy + out_h)
        width = max(text_width + 48, gx + grid_w + 60, ox + out_w + 60)
        height = bottom + 110

        body = [el("text", title, class_="title", x=24, y=30)]
        y: float = 52
        for line in lines:
            body.append(el("text", line, class_="formula", x=24, y=y))
            y += 18
        for note in notes:
            body.append(el("text", note, class_="note", x=24, y=y))
            y += 16

        sizes = "×".join(str(len(ax.kinds)) for ax in self.drawn())
        body.append(el("text", f"{self.kernel.grid} input ({sizes} cells)", class_="caption", x=gx, y=gy - 10))
        body.append('<g class="input-grid">')
        ends = []  # the cells of the axes' tails: after the animated grid, in a group of their own
        for r in tracks[0].indices():
            for c in tracks[1].indices():
                kind = _combine(rows.kinds[r], cols.kinds[c])
                x, y = gx + tracks[1].offset(c), gy + tracks[0].offset(r)
                if r < vr and c < vc:
                    body.append(el("rect", class_=f"cell {kind}", x=x, y=y, width=cw, height=ch))
                else:
                    ends.append(el("rect", class_=f"end {kind}", x=x, y=y, width=cw, height=ch))
        body.append("</g>")
        body += _ellipses("input", gx, gy, tracks[0], tracks[1])
        body += _segments(cols.segments, gx, gy + grid_h + 6, tracks[1])

        outputs = "×".join(str(ax.outputs) for ax in self.drawn())
        body.append(el("text", f"output ({outputs})", class_="caption", x=ox, y=oy - 10))
        body.append('<g class="output-grid">')
        last = (out_tracks[0].indices()[-1], out_tracks[1].indices()[-1])
        for r in out_tracks[0].indices():
            for c in out_tracks[1].indices():
                x, y = ox + out_tracks[1].offset(c), oy + out_tracks[0].offset(r)
                if r < nr and c < nc:
                    body.append(el("rect", class_="cell output", x=x, y=y, width=cw, height=ch))
                else:
                    kind = "end output last" if (r, c) == last else "end output"
                    ends.append(el("rect", class_=kind, x=x, y=y, width=cw, height=ch))
        body.append("</g>")
        body += _ellipses("output", ox, oy, out_tracks[0], out_tracks[1])
        if ends:  # the footprint of the window of the last output drawn, on the input's tail
            at = [t.offset(i * ax.step) for t, i, ax in zip(tracks, last, (rows, cols), strict=True)]
            ends.append(
                el(
                    "rect",
                    class_="footprint last",
                    x=gx + at[1],
                    y=gy + at[0],
                    width=cols.span * cw,
                    height=rows.span * ch,
                )
            )

        x0, y0, x1, y1 = arrow
        if y0 == y1:  # pointing right
            head = f"M {num(x1 - 8)} {num(y1 - 6)} L {num(x1)} {num(y1)} L {num(x1 - 8)} {num(y1 + 6)}"
        else:  # pointing down
            head = f"M {num(x1 - 6)} {num(y1 - 8)} L {num(x1)} {num(y1)} L {num(x1 + 6)} {num(y1 - 8)}"
        body.append(f'<path class="arrow" d="M {num(x0)} {num(y0)} L {num(x1)} {num(y1)} {head}"/>')

        positions = [(r, c) for r in range(nr) for c in range(nc)]
        dur = f"{max(1.0, 0.7 * len(positions)):g}s"
        moves = ";".join(f"{num(c * cols.step * cw)} {num(r * rows.step * ch)}" for r, c in positions)
        steps = ";".join(f"{num(c * cw)} {num(r * ch)}" for r, c in positions)
        inset = min(1.5, cw / 5)
        body.append('<g class="kernel">')
        body.append(el("rect", class_="footprint", x=gx, y=gy, width=cols.span * cw, height=rows.span * ch))
        for tr in range(rows.kernel):
            for tc in range(cols.kernel):
                body.append(
                    el(
                        "rect",
                        class_="tap",
                        x=gx + tc * cols.dilation * cw + inset,
                        y=gy + tr * rows.dilation * ch + inset,
                        width=cw - 2 * inset,
                        height=ch - 2 * inset,
                    )
                )
        body.append(_animation(moves, dur))
        body.append("</g>")
        body.append(
            el(
                "rect",
                class_="current",
                x=ox + inset,
                y=oy + inset,
                width=cw - 2 * inset,
                height=ch - 2 * inset,
                children=_animation(steps, dur),
            )
        )

        if ends:  # after the animated kernel, whose footprint comes first
            body += ['<g class="ends">', *ends, "</g>"]
        body += self.legend(24, height - 36)
        return document(width, height, _LAYER_STYLE, body, title)

    def legend(self, x: float, y: float) -> list[str]:
        kinds = {
            kind for ax in (self.rows, self.cols) for kind in (*ax.kinds[: ax.view()], *ax.kinds[-ax.tail() or 1 :])
        }
        items = [("swatch input", "input")]
        if "pad" in kinds:
            items.append(("swatch pad", self.kernel.padding))
        if "zero" in kinds:
            items.append(("swatch zero", "zeros inserted between units (s-1)"))
        gaps = any(ax.dilation > 1 for ax in (self.rows, self.cols))
        items += [
            ("swatch kernel-tap", "kernel taps" + (" (dilation gaps between them)" if gaps else "")),
            ("swatch output", "output"),
            ("swatch current-cell", "current output"),
        ]
        out = []
        for cls, text in items:
            out.append(el("rect", class_=cls, x=x, y=y, width=14, height=14))
            out.append(el("text", text, class_="legend", x=x + 20, y=y + 11))
            x += 20 + 6.8 * len(text) + 22
        return out


GAP_CELLS = 1.5  # the gap between a clipped axis's first cells and its tail, in cells (at least GAP_MIN)
GAP_MIN = 26.0


@dataclass(frozen=True)
class _Track:
    """Where one axis's drawn cells go: the first `head`, then after a gap (holding ⋯) the cells from
    `tail_from` to `total`; with nothing left out, no gap."""

    head: int
    tail_from: int
    total: int
    size: float  # of one cell

    @classmethod
    def inputs(cls, axis: Axis, size: float) -> _Track:
        return cls(axis.view(), len(axis.kinds) - axis.tail(), len(axis.kinds), size)

    @classmethod
    def outputs(cls, axis: Axis, size: float) -> _Track:
        return cls(axis.outputs_in_view(), axis.outputs - axis.outputs_in_tail(), axis.outputs, size)

    @property
    def clipped(self) -> bool:
        return self.head < self.tail_from

    @property
    def gap(self) -> float:
        return max(GAP_CELLS * self.size, GAP_MIN) if self.clipped and self.tail_from < self.total else 0.0

    def indices(self) -> list[int]:
        return [*range(self.head), *range(self.tail_from, self.total)]

    def offset(self, index: int) -> float:
        if index < self.head:
            return index * self.size
        return self.head * self.size + self.gap + (index - self.tail_from) * self.size

    @property
    def length(self) -> float:
        return (self.head + self.total - self.tail_from) * self.size + self.gap


def _segments(segments: tuple[tuple[str, int], ...], x: float, y: float, track: _Track) -> list[str]:
    """Brackets under the grid naming its parts along the columns (padding, input, a, ...), as far as drawn:
    in the first cells, and in the tail."""
    out, start = [], 0
    for label, length in segments:
        for lo, hi in ((0, track.head), (track.tail_from, track.total)):
            begin, end = max(start, lo), min(start + length, hi)
            if length and begin < end:
                x0, x1 = x + track.offset(begin) + 2, x + track.offset(end - 1) + track.size - 2
                out.append(f'<path class="bracket" d="M {num(x0)} {num(y)} V {num(y + 5)} H {num(x1)} V {num(y)}"/>')
                if end - begin >= 2 or track.size >= 24:
                    out.append(el("text", label, class_="segment", x=(x0 + x1) / 2, y=y + 19, text_anchor="middle"))
        start += length
    return out


def _ellipses(grid: str, x: float, y: float, rows: _Track, cols: _Track) -> list[str]:
    """⋯ right of a clipped grid's first columns (in the gap before its tail), ⋮ below its first rows;
    `grid` is "input" or "output"."""
    out = []
    if cols.clipped:
        out.append(
            el(
                "text",
                "⋯",
                class_=f"ellipsis {grid}",
                x=x + cols.head * cols.size + 6,
                y=y + rows.head * rows.size / 2 + 6,
            )
        )
    if rows.clipped:
        out.append(
            el(
                "text",
                "⋮",
                class_=f"ellipsis {grid}",
                x=x + cols.head * cols.size / 2,
                y=y + rows.head * rows.size + 20,
            )
        )
    return out


def _animation(values: str, dur: str) -> str:
    return (
        f'<animateTransform attributeName="transform" type="translate" calcMode="discrete" '
        f'values="{values}" dur="{dur}" repeatCount="indefinite"/>'
    )


def _clipped(ax: Axis) -> str:
    """What the figure leaves out of an axis ("" when nothing)."""
    total = len(ax.kinds)
    if ax.view() == total:
        return ""
    if not ax.tail():
        return f"the first {ax.view()} of {total} cells and {ax.outputs_in_view()} of {ax.outputs} outputs"
    return (
        f"the first {ax.view()} and the last {ax.tail()} of {total} cells (the last window and the end padding), "
        f"the first {ax.outputs_in_view()} and the last of {ax.outputs} outputs"
    )


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
