"""What the drawing knows about each op, in one table: `FIGURES[op] -> OpFigure`.

An entry says which family the op's box is coloured as in the network figure, which of its
parameters its box shows, which of its inputs carry data (the others only give a size), and,
for an op with kernel arithmetic, how the layer figure draws one spatial axis of it. Adding an
op's drawing is one entry here; an op without one is drawn as a shape-preserving op.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from planner import arithmetic as ar
from planner.plan import LayerPlan

VIEW = 16  # cells per axis drawn before the layer figure's view is clipped

Param = tuple[str, bool]  # a box's text for one parameter, and whether planner solved it


@dataclass(frozen=True)
class Axis:
    """One spatial axis of the layer figure: the padded (stretched) input cells and how the kernel steps."""

    kinds: tuple[str, ...]  # per cell: "pad", "input" or "zero"
    kernel: int
    dilation: int
    step: int
    outputs: int
    formula: tuple[str, ...]  # the arithmetic, one line each
    segments: tuple[tuple[str, int], ...] = ()  # (label, cells) along the axis, e.g. ("p=1", 1), ("i=6", 6)

    @property
    def span(self) -> int:
        return ar.effective_kernel(self.kernel, self.dilation)

    def view(self) -> int:
        """Cells drawn from the start: all of them, or a clipped view that still shows a few windows (and
        all of them when only the cells `tail` would show are left out)."""
        total = len(self.kinds)
        if total <= VIEW:
            return total
        head = min(total, max(VIEW, self.span + 2 * self.step))
        return total if head + self._end() >= total else head

    def tail(self) -> int:
        """Cells drawn at the end of a clipped axis that ends in padding, after a gap: the last window and
        what follows it (and a cell before the padding), so that the padding at both ends is seen (0: none)."""
        return self._end() if self.view() < len(self.kinds) else 0

    def _end(self) -> int:
        """From the start of the last window, and at least one cell more than the end padding."""
        padding = next((n for n, kind in enumerate(reversed(self.kinds)) if kind != "pad"), len(self.kinds))
        if not padding:
            return 0
        return max(len(self.kinds) - (self.outputs - 1) * self.step, padding + 1)

    def outputs_in_view(self) -> int:
        return min(self.outputs, ar.conv_output(self.view(), self.kernel, self.step, 0, 0, self.dilation))

    def outputs_in_tail(self) -> int:
        """Outputs drawn at the end of the output grid: the last one, when the input shows its tail."""
        return 1 if self.tail() and self.outputs > self.outputs_in_view() else 0


def _no_notes(layer: LayerPlan) -> list[str]:
    return []


@dataclass(frozen=True)
class Kernel:
    """How the layer figure draws an op with kernel arithmetic."""

    title: str  # what the figure's title calls the layer
    axis: Callable[[LayerPlan, int], Axis]  # the picture of spatial axis `a`
    grid: str = "padded"  # what the input grid's caption calls it
    padding: str = "padding"  # the legend's text for padding cells
    notes: Callable[[LayerPlan], list[str]] = _no_notes  # what else the figure says about the layer


def _no_params(layer: LayerPlan) -> list[Param]:
    return []


@dataclass(frozen=True)
class OpFigure:
    """Everything the drawing needs to know about one op."""

    family: str  # its box's colour and legend entry in the network figure (see FAMILIES)
    params: Callable[[LayerPlan], list[Param]] = field(default=_no_params)  # the parameters worth its box
    data_inputs: int | None = None  # inputs that carry data, if not all: the others only give a size
    kernel: Kernel | None = None  # None: no kernel arithmetic to draw


# the network figure's legend, in order: family -> its text
FAMILIES = {
    "conv": "convolution",
    "transpose": "transposed convolution",
    "pool": "pooling",
    "resize": "pad / crop / slice / resize",
    "merge": "concat / add / mul",
    "dense": "flatten / linear",
    "pointwise": "activation, norm, dropout",
}


# ===================================================================== box labels


def shape_text(shape: tuple[int, ...]) -> str:
    return "×".join(str(n) for n in shape)


def per_axis(values: Iterable[object]) -> str:
    values = tuple(values)
    return str(values[0]) if len(set(values)) == 1 else "×".join(map(str, values))


def pads(pairs: Iterable[Iterable[int]]) -> str:
    sides = tuple(tuple(pair) for pair in pairs)
    if all(b == e for b, e in sides):
        return per_axis(b for b, _ in sides)
    if len(set(sides)) == 1:
        return f"({sides[0][0]},{sides[0][1]})"
    return "".join(f"({b},{e})" for b, e in sides)


def _window_params(layer: LayerPlan, usual_stride: tuple[int, ...]) -> list[Param]:
    """A sliding window's parameters: the kernel always, the others when not the usual or when solved."""
    p, solved = layer.params, layer.solved
    out = []

    def add(key: str, short: str, value: str, show: bool) -> None:
        if show or key in solved:
            out.append((f"{short}={value}", key in solved))

    add("kernel", "k", per_axis(p["kernel"]), True)
    add("stride", "s", per_axis(p["stride"]), tuple(p["stride"]) != usual_stride)
    add("padding", "p", pads(p["padding"]), any(b or e for b, e in p["padding"]))
    if "dilation" in p:
        add("dilation", "d", per_axis(p["dilation"]), any(d != 1 for d in p["dilation"]))
    if "output_padding" in p:
        add("output_padding", "a", per_axis(p["output_padding"]), any(p["output_padding"]))
    if p.get("groups", 1) != 1:
        out.append((f"g={p['groups']}", False))
    if p.get("ceil_mode"):
        out.append(("ceil", False))
    return out


def _conv_params(layer: LayerPlan) -> list[Param]:
    return _window_params(layer, (1,) * len(layer.params["stride"]))


def _pool_params(layer: LayerPlan) -> list[Param]:
    return _window_params(layer, tuple(layer.params["kernel"]))


def _adaptive_params(layer: LayerPlan) -> list[Param]:
    return [(f"out={per_axis(layer.params['output_size'])}", False)]


def _upsample_params(layer: LayerPlan) -> list[Param]:
    p = layer.params
    factors = p.get("scale_factor")
    shown = [(f"×{per_axis(factors) if isinstance(factors, tuple) else factors}", False)] if factors else []
    shown = shown or [(f"to {per_axis(p['size'])}", "size" in layer.solved)]
    if p.get("mode", "nearest") != "nearest":
        shown.append((p["mode"] + (" aligned" if p.get("align_corners") else ""), False))
    return shown


def _slice_params(layer: LayerPlan) -> list[Param]:
    p = layer.params
    step = f":{p['step']}" if p["step"] != 1 else ""
    return [(f"axis {p['axis']} [{p['start']}:{p['end']}{step}]", False)]


def _split_params(layer: LayerPlan) -> list[Param]:
    p = layer.params
    return [(f"axis {p['axis']} into {' + '.join(str(n) for n in p['sizes'])}", "sizes" in layer.solved)]


def _permute_params(layer: LayerPlan) -> list[Param]:
    return [("→" + ",".join(map(str, layer.params["dims"])), False)]


def _mean_params(layer: LayerPlan) -> list[Param]:
    return [(f"mean {per_axis(layer.params['axes'])}", False)]


def _shuffle_params(layer: LayerPlan) -> list[Param]:
    return [(f"×{layer.params['upscale_factor']}", False)]


def _unshuffle_params(layer: LayerPlan) -> list[Param]:
    return [(f"÷{layer.params['downscale_factor']}", False)]


def _groupnorm_params(layer: LayerPlan) -> list[Param]:
    return [(f"g={layer.params['num_groups']}", False)]


def _pad_params(layer: LayerPlan) -> list[Param]:
    return [(f"p={pads(layer.params['padding'])}", "padding" in layer.solved)]


def _crop_params(layer: LayerPlan) -> list[Param]:
    return [(f"offset {per_axis(layer.params['offset'])}", False)]


def _linear_params(layer: LayerPlan) -> list[Param]:
    return [(f"{layer.params['in_features']}→{layer.params['out_features']}", False)]


# ===================================================================== kernel arithmetic, one axis


def _direct_axis(layer: LayerPlan, a: int) -> Axis:
    """A convolution's or a pooling's axis: the padded input, and in ceil mode the cells its last window
    reaches past the end padding."""
    p = layer.params
    k, s = p["kernel"][a], p["stride"][a]
    d = p.get("dilation", (1,) * len(p["kernel"]))[a]
    pb, pe = p["padding"][a]
    i, o = layer.input_shape[2 + a], layer.output_shape[2 + a]
    reach = ar.effective_kernel(k, d) - 1
    ceil = bool(p.get("ceil_mode"))
    size = ar.padded_size(i, pb, pe)
    extra = ar.ceil_mode_extra_padding(i, k, s, pb, pe, d) if ceil else 0  # ceil mode's partial last window
    kinds = ("pad",) * pb + ("input",) * i + ("pad",) * (pe + extra)
    lo, hi = ("⌈", "⌉") if ceil else ("⌊", "⌋")
    natural = ar.conv_output(i, k, s, pb, pe + extra, d)  # before PyTorch drops a window
    padded = f"{pb} + {i} + {pe} = {size} cells" + (
        f", and {extra} past the end padding that ceil mode's last window reaches" if extra else ""
    )
    lines = [
        f"i = {i}, k = {k}, s = {s}, p = {_pair(pb, pe)}, d = {d}" + (", ceil mode" if ceil else ""),
        f"padded: {padded}",
        f"o = {lo}(i + {_p_sum(pb, pe)} - d(k-1) - 1)/s{hi} + 1 = {lo}({i} + {pb + pe} - {reach} - 1)/{s}{hi} + 1"
        f" = {natural}",
    ]
    if natural != o:
        lines.append(f"the last window would start in the end padding, so PyTorch drops it: o = {o}")
    segments = ((f"p={pb}", pb), (f"i={i}", i), (f"p={pe}", pe), ("ceil", extra))
    return Axis(kinds, k, d, s, o, tuple(lines), segments)


def _transposed_axis(layer: LayerPlan, a: int) -> Axis:
    """A transposed convolution's axis as the guide draws it: the equivalent direct convolution, unit
    stride, over the stretched input padded by p' on each side and by a at the end."""
    p = layer.params
    k, s = p["kernel"][a], p["stride"][a]
    d = p.get("dilation", (1,) * len(p["kernel"]))[a]
    pb, pe = p["padding"][a]
    i, o = layer.input_shape[2 + a], layer.output_shape[2 + a]
    reach = ar.effective_kernel(k, d) - 1
    out_pad = p["output_padding"][a]
    stretched = ar.stretched_size(i, s)
    cells = ("input",) + (("zero",) * (s - 1) + ("input",)) * (i - 1)  # s-1 zeros between the units
    begin, end = ar.transpose_equivalent_padding(k, pb, d), ar.transpose_equivalent_padding(k, pe, d)
    right = end + out_pad  # a negative p' (padding beyond d(k-1)) crops the stretched input instead
    body = cells[max(0, -begin) : len(cells) - max(0, -right)]
    kinds = ("pad",) * max(0, begin) + body + ("pad",) * max(0, right)
    sides = (
        f"p' = d(k-1) - p = {begin} on each side"
        if begin == end
        else f"p' = d(k-1) - p = {begin} at the start and {end} at the end"
    )
    if begin < 0 or end < 0:
        sides += " (a negative p' crops that many cells)"
    lines = (
        f"i' = {i}, k = {k}, s = {s}, p = {_pair(pb, pe)}, d = {d}, a = {out_pad}",
        f"stretched: ĩ' = i' + (s-1)(i'-1) = {i} + {s - 1}·{i - 1} = {stretched} cells",
        f"padded: {sides}, plus a = {out_pad} at the end (bottom/right): {len(kinds)} cells",
        f"o' = s(i'-1) + d(k-1) + 1 - {_p_sum(pb, pe)} + a = {s}·{i - 1} + {reach} + 1 - {pb + pe} + "
        f"{out_pad} = {o}: the direct convolution of the {len(kinds)} cells with k = {k}, d = {d} and "
        f"unit stride",
    )
    shown = len(body)
    segments = (
        (f"p'={begin}", max(0, begin)),
        (f"ĩ'={stretched}" if shown == stretched else f"ĩ'={stretched}, {shown} kept", shown),
        (f"p'={end}", max(0, end)),
        (f"a={out_pad}", max(0, out_pad + min(0, end))),
    )
    return Axis(kinds, k, d, 1, o, lines, segments)


def _pair(b: int, e: int) -> str:
    return str(b) if b == e else f"({b}, {e})"


def _p_sum(b: int, e: int) -> str:
    return "2p" if b == e else "p_begin + p_end"


def _transposed_notes(layer: LayerPlan) -> list[str]:
    return [
        "drawn as the guide draws it: the equivalent direct convolution, unit stride, over the "
        "stretched input (s-1 zeros between units), padded by p' on each side and by a extra zeros "
        "at the end (bottom/right); its kernel is the transposed convolution's kernel rotated by 180°"
    ]


def _avgpool_notes(layer: LayerPlan) -> list[str]:
    return [
        "average pooling divides by the cells of the window "
        + ("including padding" if layer.params["count_include_pad"] else "that are real inputs")
        + (" (never the cells past the end padding)" if layer.params["ceil_mode"] else "")
    ]


# ===================================================================== the table

POINTWISE = OpFigure("pointwise")

FIGURES: dict[str, OpFigure] = {
    "conv": OpFigure("conv", _conv_params, kernel=Kernel("convolution", _direct_axis)),
    "conv_transpose": OpFigure(
        "transpose",
        _conv_params,
        kernel=Kernel(
            "transposed convolution",
            _transposed_axis,
            grid="stretched, padded",
            padding="padding (p' and a)",
            notes=_transposed_notes,
        ),
    ),
    "maxpool": OpFigure("pool", _pool_params, kernel=Kernel("max pooling", _direct_axis)),
    "avgpool": OpFigure("pool", _pool_params, kernel=Kernel("average pooling", _direct_axis, notes=_avgpool_notes)),
    "adaptive_avgpool": OpFigure("pool", _adaptive_params),
    "adaptive_maxpool": OpFigure("pool", _adaptive_params),
    "mean": OpFigure("pool", _mean_params),
    "upsample": OpFigure("resize", _upsample_params, data_inputs=1),  # a `like` input gives the size only
    "slice": OpFigure("resize", _slice_params),
    "split": OpFigure("resize", _split_params),
    "reshape": OpFigure("resize", lambda layer: [(f"to {per_axis(layer.params['shape'])}", False)]),
    "permute": OpFigure("resize", _permute_params),
    "pixel_shuffle": OpFigure("resize", _shuffle_params),
    "pixel_unshuffle": OpFigure("resize", _unshuffle_params),
    "pad": OpFigure("resize", _pad_params),
    "crop": OpFigure("resize", _crop_params, data_inputs=1),  # its second input gives the size to crop to
    "concat": OpFigure("merge"),
    "add": OpFigure("merge"),
    "mul": OpFigure("merge"),
    "flatten": OpFigure("dense"),
    "linear": OpFigure("dense", _linear_params),
    "groupnorm": OpFigure("pointwise", _groupnorm_params),
    **{
        op: POINTWISE
        for op in (
            *("relu", "sigmoid", "tanh", "silu", "gelu", "hardswish", "hardsigmoid", "relu6", "leaky_relu", "elu"),
            *("softmax", "batchnorm", "layernorm", "instancenorm", "dropout", "identity"),
        )
    },
}

# the ops `draw_layer` draws, in the table's order
KERNEL_OPS = tuple(op for op, figure in FIGURES.items() if figure.kernel is not None)


def figure(op: str) -> OpFigure:
    """The op's entry; an op without one is drawn as a shape-preserving op."""
    return FIGURES.get(op, POINTWISE)
