"""The layer figure (`planner draw --layer`): one layer's arithmetic in the style of Dumoulin & Visin's
figures: the input grid with its padding dashed, the kernel's footprint, the output grid, and a SMIL
animation stepping the kernel over the output positions. How each op's axes are drawn is its
`Kernel` entry in `figures.FIGURES`."""

from __future__ import annotations

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
        vr, vc = rows.view(), cols.view()
        if rank == 1:
            self.cw, self.ch = max(6, min(30, 900 // vc)), 30
        else:
            self.cw = self.ch = max(5, min(30, 440 // max(vr, vc)))

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
        clipped = [
            f"{name}: the first {ax.view()} of {len(ax.kinds)} cells and {ax.outputs_in_view()} of {ax.outputs} outputs"
            for name, ax in zip(self.axis_names(), self.drawn(), strict=True)
            if ax.view() < len(ax.kinds)
        ]
        if clipped:
            notes.append("clipped view (⋯): " + "; ".join(clipped))
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
        title, formulas, remarks = self.text()
        text_width = 980
        lines = [w for line in formulas for w in _wrap_text(line, text_width, 7.2)]
        notes = [w for note in remarks for w in _wrap_text(note, text_width, 6.6)]

        gx, gy = 40, 52 + 18 * len(lines) + 16 * len(notes) + 40
        grid_w, grid_h = vc * cw, vr * ch
        oy: float
        arrow: tuple[float, float, float, float]
        if self.rank == 1:  # output strip below the input strip and its labels
            ox, oy = gx, gy + grid_h + 104
            arrow = (gx + 40, gy + grid_h + 40, gx + 40, oy - 26)
            bottom: float = oy + ch
        else:
            ox, oy = gx + grid_w + 110, gy + max(0, (grid_h - nr * ch) / 2)
            arrow = (gx + grid_w + 30, gy + grid_h / 2, ox - 22, gy + grid_h / 2)
            bottom = max(gy + grid_h, oy + nr * ch)
        width = max(text_width + 48, gx + grid_w + 60, ox + nc * cw + 60)
        height = bottom + 110

        body = [el("text", title, class_="title", x=24, y=30)]
        y = 52
        for line in lines:
            body.append(el("text", line, class_="formula", x=24, y=y))
            y += 18
        for note in notes:
            body.append(el("text", note, class_="note", x=24, y=y))
            y += 16

        sizes = "×".join(str(len(ax.kinds)) for ax in self.drawn())
        body.append(el("text", f"{self.kernel.grid} input ({sizes} cells)", class_="caption", x=gx, y=gy - 10))
        body.append('<g class="input-grid">')
        for r in range(vr):
            for c in range(vc):
                kind = _combine(rows.kinds[r], cols.kinds[c])
                body.append(el("rect", class_=f"cell {kind}", x=gx + c * cw, y=gy + r * ch, width=cw, height=ch))
        body.append("</g>")
        body += _ellipses("input", gx, gy, vr, vc, len(rows.kinds), len(cols.kinds), cw, ch)
        body += _segments(cols.segments, gx, gy + grid_h + 6, cw, vc)

        outputs = "×".join(str(ax.outputs) for ax in self.drawn())
        body.append(el("text", f"output ({outputs})", class_="caption", x=ox, y=oy - 10))
        body.append('<g class="output-grid">')
        for r in range(nr):
            for c in range(nc):
                body.append(el("rect", class_="cell output", x=ox + c * cw, y=oy + r * ch, width=cw, height=ch))
        body.append("</g>")
        body += _ellipses("output", ox, oy, nr, nc, rows.outputs, cols.outputs, cw, ch)

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

        body += self.legend(24, height - 36)
        return document(width, height, _LAYER_STYLE, body, title)

    def legend(self, x: float, y: float) -> list[str]:
        kinds = {kind for ax in (self.rows, self.cols) for kind in ax.kinds[: ax.view()]}
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


def _segments(segments: tuple[tuple[str, int], ...], x: float, y: float, cw: float, view: int) -> list[str]:
    """Brackets under the grid naming its parts along the columns (padding, input, a, ...), as far as drawn."""
    out, start = [], 0
    for label, length in segments:
        end = min(start + length, view)
        if length and start < view:
            x0, x1 = x + start * cw + 2, x + end * cw - 2
            out.append(f'<path class="bracket" d="M {num(x0)} {num(y)} V {num(y + 5)} H {num(x1)} V {num(y)}"/>')
            if end - start >= 2 or cw >= 24:
                out.append(el("text", label, class_="segment", x=(x0 + x1) / 2, y=y + 19, text_anchor="middle"))
        start += length
    return out


def _ellipses(
    grid: str, x: float, y: float, rows: int, cols: int, all_rows: int, all_cols: int, cw: float, ch: float
) -> list[str]:
    """⋯ right of a clipped grid, ⋮ below it; `grid` is "input" or "output"."""
    out = []
    if cols < all_cols:
        out.append(el("text", "⋯", class_=f"ellipsis {grid}", x=x + cols * cw + 6, y=y + rows * ch / 2 + 6))
    if rows < all_rows:
        out.append(el("text", "⋮", class_=f"ellipsis {grid}", x=x + cols * cw / 2, y=y + rows * ch + 20))
    return out


def _animation(values: str, dur: str) -> str:
    return (
        f'<animateTransform attributeName="transform" type="translate" calcMode="discrete" '
        f'values="{values}" dur="{dur}" repeatCount="indefinite"/>'
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
