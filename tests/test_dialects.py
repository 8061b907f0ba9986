"""The dialects (`pytorch`, `onnx`, `tensorflow`) against the frameworks themselves.

1. PyTorch: random one-layer specs (conv, conv_transpose, maxpool, avgpool) solved in the
   `pytorch` dialect and run through torch.nn on small CPU tensors (the meta device skips
   some checks, e.g. output_padding). Torch raising <=> planner infeasible, and equal shapes
   when both accept, except where planner is documented to be stricter (`stricter`).
2. ONNX: single-node models through `onnx.shape_inference.infer_shapes(strict_mode=True)`,
   against the `onnx` dialect; onnxruntime (when installed) for ConvTranspose SAME_*, the
   case where onnx's shape inference and onnxruntime disagree (onnx/onnx#4299,
   microsoft/onnxruntime#9370, #11927).
3. TensorFlow's SAME split, `pad = max((ceil(i/s) - 1) s + k_eff - i, 0)`, extra at the end.
4. Each dialect's own validity rules, by their diagnostic codes.

docs/dialects.md sums up the rules and every disagreement pinned here. Without torch the
module skips (the onnx and onnxruntime checks also skip on their own when those are missing).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

import planner
from planner.solver.solve import Status

torch = pytest.importorskip("torch")
nn = torch.nn
F = torch.nn.functional

POOLS = ("maxpool", "avgpool")
# torch warns that an even kernel with padding='same' copies the input; harmless here
pytestmark = pytest.mark.filterwarnings("ignore:Using padding='same':UserWarning")


# --- planner -------------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    """What planner says about a one-layer spec: the output shape, or the codes of its refusal."""

    shape: tuple[int, ...] | None
    codes: frozenset[str] = frozenset()
    params: dict[str, Any] = field(default_factory=dict)
    text: str = ""

    @property
    def ok(self) -> bool:
        return self.shape is not None


def solve_layer(dialect: str, in_shape: list[int], layer: dict[str, Any]) -> Outcome:
    """Solve a one-layer spec (JSON is YAML) without NumPy verification."""
    text = json.dumps({"dialect": dialect, "input": {"shape": list(in_shape)}, "layers": [layer]})
    result = planner.solve(planner.loads(text, "dialect.yaml"), verify=False)
    assert result.status in (Status.SOLVED, Status.INFEASIBLE), (text, result.status, result.diagnostics)
    if result.status is Status.SOLVED:
        plan_layer = result.plans[0].layers[0]
        return Outcome(tuple(plan_layer.output_shape), frozenset(), dict(plan_layer.params), text)
    codes = frozenset(d.code for d in result.diagnostics) - {"sizes-that-work"}
    assert codes, (text, result.diagnostics)
    return Outcome(None, codes, {}, text)


def pairs(padding: Any, rank: int) -> list[tuple[int, int]]:
    """Explicit padding (one int, per-axis ints or per-axis pairs) as per-axis (begin, end)."""
    if isinstance(padding, int):
        return [(padding, padding)] * rank
    return [(p, p) if isinstance(p, int) else (p[0], p[1]) for p in padding]


def k_eff(k: int, d: int) -> int:
    return d * (k - 1) + 1


# --- random layers -------------------------------------------------------------------------


@dataclass
class Layer:
    """One random layer, written once for planner, torch and onnx."""

    op: str
    size: list[int]
    kernel: list[int]
    stride: list[int] | None  # None: the pool default (= kernel)
    dilation: list[int]
    padding: Any  # int, per-axis ints, per-axis pairs, or a mode string
    c_in: int = 2
    c_out: int = 2
    groups: int = 1
    output_padding: list[int] | None = None
    ceil_mode: bool = False

    @property
    def rank(self) -> int:
        return len(self.size)

    @property
    def strides(self) -> list[int]:
        return self.stride if self.stride is not None else self.kernel

    def spec(self) -> dict[str, Any]:
        layer: dict[str, Any] = {"op": self.op, "kernel": self.kernel, "padding": self.padding}
        if self.stride is not None:
            layer["stride"] = self.stride
        if self.op != "avgpool":
            layer["dilation"] = self.dilation
        if self.op in ("conv", "conv_transpose"):
            layer.update(out_channels=self.c_out, groups=self.groups)
        if self.op == "conv_transpose":
            layer["output_padding"] = self.output_padding
        if self.op in POOLS:
            layer["ceil_mode"] = self.ceil_mode
        return layer

    def in_shape(self) -> list[int]:
        return [1, self.c_in, *self.size]

    def planner(self, dialect: str = "pytorch") -> Outcome:
        return solve_layer(dialect, self.in_shape(), self.spec())


def axes(n: int, lo: int, hi: int) -> st.SearchStrategy[list[int]]:
    return st.lists(st.integers(lo, hi), min_size=n, max_size=n)


@st.composite
def channels(draw) -> tuple[int, int, int]:
    """(c_in, c_out, groups): mostly divisible by groups, sometimes not."""
    groups = draw(st.integers(1, 3))
    if draw(st.integers(0, 4)) == 0:
        return draw(st.integers(1, 6)), draw(st.integers(1, 6)), groups
    return groups * draw(st.integers(1, 2)), groups * draw(st.integers(1, 2)), groups


def pair_lists(n: int, hi: int) -> st.SearchStrategy[list[list[int]]]:
    return st.lists(st.lists(st.integers(0, hi), min_size=2, max_size=2), min_size=n, max_size=n)


@st.composite
def conv_layers(draw) -> Layer:
    rank = draw(st.integers(1, 2))
    kind = draw(st.sampled_from(["int", "axes", "pairs", "same", "same", "valid", "full"]))
    stride = draw(axes(rank, 1, 4))
    if kind == "same" and draw(st.booleans()):
        stride = [1] * rank  # torch accepts 'same' only here
    padding = {"int": draw(st.integers(0, 4)), "axes": draw(axes(rank, 0, 4)), "pairs": draw(pair_lists(rank, 4))}.get(
        kind, kind
    )
    c_in, c_out, groups = draw(channels())
    return Layer(
        "conv",
        draw(axes(rank, 1, 12)),
        draw(axes(rank, 1, 5)),
        stride,
        draw(axes(rank, 1, 3)),
        padding,
        c_in,
        c_out,
        groups,
    )


@st.composite
def conv_transpose_layers(draw) -> Layer:
    rank = draw(st.integers(1, 2))
    stride, dilation = draw(axes(rank, 1, 3)), draw(axes(rank, 1, 3))
    # output_padding around its bound: max(stride, dilation) - 1 is allowed, max(...) is not
    output_padding = [
        draw(st.sampled_from([0, 0, max(s, d) - 1, max(s, d) - 1, max(s, d), draw(st.integers(0, 3))]))
        for s, d in zip(stride, dilation, strict=True)
    ]
    kind = draw(st.sampled_from(["int", "axes", "pairs"]))
    padding = {"int": draw(st.integers(0, 5)), "axes": draw(axes(rank, 0, 5)), "pairs": draw(pair_lists(rank, 5))}[kind]
    c_in, c_out, groups = draw(channels())
    return Layer(
        "conv_transpose",
        draw(axes(rank, 1, 8)),
        draw(axes(rank, 1, 4)),
        stride,
        dilation,
        padding,
        c_in,
        c_out,
        groups,
        output_padding,
    )


@st.composite
def pool_layers(draw, op: str) -> Layer:
    rank = draw(st.integers(1, 2))
    kernel = draw(axes(rank, 1, 4))
    stride = draw(st.one_of(st.none(), axes(rank, 1, 4)))
    dilation = draw(axes(rank, 1, 3)) if op == "maxpool" else [1] * rank
    ceil_mode = draw(st.booleans())
    kinds = ["int", "int", "axes", "valid"] + ([] if ceil_mode else ["pairs"])  # see test_pool_pairs_in_ceil_mode
    kind = draw(st.sampled_from(kinds))
    top = max(kernel) // 2 + 1  # one past PyTorch's bound, now and then
    padding = {
        "int": draw(st.integers(0, top)),
        "axes": draw(axes(rank, 0, top)),
        "pairs": draw(pair_lists(rank, top)),
    }.get(kind, kind)
    return Layer(op, draw(axes(rank, 1, 12)), kernel, stride, dilation, padding, ceil_mode=ceil_mode)


# --- PyTorch -------------------------------------------------------------------------------

CONV = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}
CONV_T = {1: nn.ConvTranspose1d, 2: nn.ConvTranspose2d, 3: nn.ConvTranspose3d}
MAXPOOL = {1: nn.MaxPool1d, 2: nn.MaxPool2d, 3: nn.MaxPool3d}
AVGPOOL = {1: nn.AvgPool1d, 2: nn.AvgPool2d, 3: nn.AvgPool3d}


def flat_pads(per_axis: list[tuple[int, int]]) -> list[int]:
    """F.pad's order: last axis first, (begin, end) each."""
    return [n for pair in reversed(per_axis) for n in pair]


def torch_forward(layer: Layer) -> tuple[int, ...] | None:
    """The output shape torch gives, or None when torch refuses (raises, or gives an empty axis)."""
    x = torch.zeros(layer.in_shape())
    explicit = not isinstance(layer.padding, str)
    asymmetric = explicit and any(b != e for b, e in pairs(layer.padding, layer.rank))
    try:
        with torch.no_grad():
            if layer.op == "conv":
                if isinstance(layer.padding, str):
                    full = tuple(k_eff(k, d) - 1 for k, d in zip(layer.kernel, layer.dilation, strict=True))
                    padding: Any = full if layer.padding == "full" else layer.padding
                elif asymmetric:  # explicit pairs: F.pad, then the op unpadded
                    x, padding = F.pad(x, flat_pads(pairs(layer.padding, layer.rank))), 0
                else:
                    padding = tuple(b for b, _ in pairs(layer.padding, layer.rank))
                m = CONV[layer.rank](
                    layer.c_in,
                    layer.c_out,
                    tuple(layer.kernel),
                    tuple(layer.stride),
                    padding,
                    tuple(layer.dilation),
                    layer.groups,
                    bias=False,
                )
                y = m(x)
            elif layer.op == "conv_transpose":
                assert layer.padding not in ("same", "same_lower"), "torch's transposed convolutions have no 'same'"
                crop = [(0, 0)] * layer.rank if layer.padding == "valid" else pairs(layer.padding, layer.rank)
                padding = 0 if asymmetric else tuple(b for b, _ in crop)
                m = CONV_T[layer.rank](
                    layer.c_in,
                    layer.c_out,
                    tuple(layer.kernel),
                    tuple(layer.stride),
                    padding,
                    tuple(layer.output_padding),
                    layer.groups,
                    False,
                    tuple(layer.dilation),
                )
                y = m(x)
                if asymmetric:  # pairs: padding crops the output, begin cells at the start, end at the end
                    if any(n - b - e <= 0 for (b, e), n in zip(crop, y.shape[2:], strict=True)):
                        return None
                    y = y[(..., *(slice(b, n - e) for (b, e), n in zip(crop, y.shape[2:], strict=True)))]
            else:
                if layer.padding == "valid":
                    padding = 0
                elif asymmetric:
                    x, padding = F.pad(x, flat_pads(pairs(layer.padding, layer.rank))), 0
                else:
                    padding = tuple(b for b, _ in pairs(layer.padding, layer.rank))
                stride = None if layer.stride is None else tuple(layer.stride)
                if layer.op == "maxpool":
                    m = MAXPOOL[layer.rank](
                        tuple(layer.kernel), stride, padding, tuple(layer.dilation), ceil_mode=layer.ceil_mode
                    )
                else:
                    m = AVGPOOL[layer.rank](tuple(layer.kernel), stride, padding, ceil_mode=layer.ceil_mode)
                y = m(x)
    except (RuntimeError, ValueError):
        return None
    if any(n <= 0 for n in y.shape[2:]):
        return None
    return tuple(y.shape)


def stricter(layer: Layer) -> frozenset[str]:
    """Codes of planner's documented rules that are stricter than torch for this layer.

    - the PyTorch pooling rule 2p <= k holds per side of explicit [begin, end] pairs too
      (torch pools take no pairs; F.pad in front lifts the rule).
    - "kernel never larger than the padded input" (SPEC 1.3) also in ceil mode, where torch
      and onnx accept a first window that starts in the input and runs past its end.

    conv_transpose has none: planner, like torch, crops any padding that leaves at least one
    output cell, also beyond d(k-1) (test_conv_transpose_padding_beyond_the_kernel).
    """
    allowed = set()
    explicit = not isinstance(layer.padding, str)
    sides = pairs(layer.padding, layer.rank) if explicit else [(0, 0)] * layer.rank
    via_f_pad = any(b != e for b, e in sides)  # torch_forward pads every axis with F.pad then
    for (b, e), i, k, d in zip(sides, layer.size, layer.kernel, layer.dilation, strict=True):
        if layer.op in POOLS and via_f_pad and 2 * max(b, e) > k:
            allowed.add("pool-padding")
        if layer.op in POOLS and layer.ceil_mode and i + b + e < k_eff(k, d):
            allowed.add("kernel-size")
    return frozenset(allowed)


def outcome(ours: Outcome, theirs: Any, layer: Layer) -> str:
    """A label for hypothesis' statistics (pytest --hypothesis-show-statistics)."""
    kind = layer.padding if isinstance(layer.padding, str) else type(layer.padding).__name__
    both = {
        (True, True): "both accept",
        (False, False): "both refuse",
        (True, False): "framework refuses",
        (False, True): "planner refuses: " + ",".join(sorted(ours.codes)),
    }[(ours.ok, theirs is not None)]
    return f"{kind}, {both}"


def check_against_torch(layer: Layer) -> None:
    ours, theirs = layer.planner("pytorch"), torch_forward(layer)
    event(outcome(ours, theirs, layer))
    if theirs is None:
        assert not ours.ok, f"torch refuses, planner accepts {ours.shape}:\n{ours.text}"
    elif ours.ok:
        assert ours.shape == theirs, f"planner {ours.shape} != torch {theirs}:\n{ours.text}"
    else:
        allowed = stricter(layer)
        assert allowed and ours.codes <= allowed, (
            f"torch gives {theirs}, planner refuses with {sorted(ours.codes)} (documented: {sorted(allowed)}):\n"
            f"{ours.text}"
        )


@settings(max_examples=90)
@given(conv_layers())
def test_conv_against_torch(layer: Layer) -> None:
    check_against_torch(layer)


@settings(max_examples=90)
@given(conv_transpose_layers())
def test_conv_transpose_against_torch(layer: Layer) -> None:
    check_against_torch(layer)


@settings(max_examples=70)
@given(pool_layers("maxpool"))
def test_maxpool_against_torch(layer: Layer) -> None:
    check_against_torch(layer)


@settings(max_examples=60)
@given(pool_layers("avgpool"))
def test_avgpool_against_torch(layer: Layer) -> None:
    check_against_torch(layer)


@pytest.mark.parametrize("stride,dilation", [(1, 1), (2, 1), (3, 1), (1, 2), (1, 3), (2, 3), (3, 2)])
def test_output_padding_bound(stride: int, dilation: int) -> None:
    """output_padding = max(stride, dilation) - 1 is the largest both accept; max(...) both refuse."""
    bound = max(stride, dilation)
    for a, accepted in ((bound - 1, True), (bound, False)):
        layer = Layer("conv_transpose", [4, 5], [3, 2], [stride, 1], [dilation, 1], 0, output_padding=[a, 0])
        ours, theirs = layer.planner("pytorch"), torch_forward(layer)
        assert (theirs is not None) == accepted
        if accepted:
            assert ours.shape == theirs
        else:
            assert ours.codes == {"output-padding"}
        for dialect in ("onnx", "tensorflow"):  # the rule is the same in every dialect
            if dilation == 1 or stride == 1:
                assert layer.planner(dialect).ok == accepted


@settings(max_examples=30)
@given(st.integers(1, 2).flatmap(lambda r: st.tuples(axes(r, 1, 9), axes(r, 1, 5), axes(r, 1, 3))))
def test_same_split_is_torchs(args: tuple[list[int], list[int], list[int]]) -> None:
    """padding='same' (stride 1): planner's shape and its [begin, end] split are torch's, value for value."""
    size, kernel, dilation = args
    layer = Layer("conv", size, kernel, [1] * len(size), dilation, "same", c_in=2, c_out=3)
    ours = layer.planner("pytorch")
    assert ours.shape == (1, 3, *size)
    split = [tuple(p) for p in ours.params["padding"]]
    for (b, e), k, d in zip(split, kernel, dilation, strict=True):
        assert b + e == k_eff(k, d) - 1 and e - b in (0, 1)  # the odd pixel at the end
    torch.manual_seed(0)
    x = torch.randn(1, 2, *size)
    w = torch.randn(3, 2, *kernel)
    conv = (F.conv1d, F.conv2d)[len(size) - 1]
    same = conv(x, w, padding="same", dilation=tuple(dilation))
    explicit = conv(F.pad(x, flat_pads(split)), w, dilation=tuple(dilation))
    torch.testing.assert_close(same, explicit)


def test_pool_pairs_in_ceil_mode() -> None:
    """With [begin, end] pairs, ceil mode drops a last window that starts in the *end* padding
    (i + pb, PyTorch's rule with pb = begin). F.pad + an unpadded torch pool would count the end
    padding as input and keep it, so the pairs are checked against onnx instead (see below)."""
    layer = Layer("maxpool", [5], [3], [3], [1], [[0, 2]], ceil_mode=True)
    assert layer.planner("onnx").shape == (1, 2, 2)  # the window at 6 starts in the end padding
    padded = Layer("maxpool", [7], [3], [3], [1], 0, ceil_mode=True)
    assert torch_forward(padded) == (1, 2, 3)  # what F.pad + pool would say
    pytest.importorskip("onnx")
    assert onnx_infer(layer) == (1, 2, 2)  # "sliding windows that would start in the right padded region are ignored"


def test_onnx_valid_ceil_mode_is_pytorchs_rule() -> None:
    """The MaxPool doc's VALID + ceil_mode formula, ceil((i - k_eff + 1) / s), says 2 for i=5, k=2, s=2;
    onnx's shape inference and onnxruntime say 3, as PyTorch and planner do."""
    layer = Layer("maxpool", [5], [2], [2], [1], "valid", ceil_mode=True)
    assert layer.planner("onnx").shape == torch_forward(layer) == (1, 2, 3)
    pytest.importorskip("onnx")
    assert onnx_infer(layer) == (1, 2, 3)
    if ORT_ERRORS:
        assert ort_run(layer, np.zeros(layer.in_shape(), np.float32)).shape == (1, 2, 3)


def test_ceil_mode_first_window_past_the_input() -> None:
    """Known disagreement: SPEC 1.3's "kernel never larger than the padded input" refuses a
    ceil-mode pool whose only window starts in the input and runs past its end; torch and onnx
    give one output."""
    layer = Layer("maxpool", [1], [2], [2], [1], 0, ceil_mode=True)
    assert torch_forward(layer) == (1, 2, 1)
    assert layer.planner("pytorch").codes == {"kernel-size"}
    assert layer.planner("onnx").codes == {"kernel-size"}


def test_conv_transpose_padding_beyond_the_kernel() -> None:
    """Every dialect crops a transposed convolution's padding, also beyond d(k-1), as long as
    one output cell is left: ConvTranspose1d(i=5, k=3, padding=3) gives 1 in torch, onnx and
    onnxruntime; padding 4 leaves -1, and torch ("Output size is too small"), onnxruntime
    ("Computed output dimension is <= 0") and planner refuse it, while onnx's shape inference
    infers the negative size without complaint."""
    fits = Layer("conv_transpose", [5], [3], [1], [1], 3, output_padding=[0])
    assert torch_forward(fits) == (1, 2, 1)
    for dialect in ("pytorch", "onnx", "tensorflow"):
        assert fits.planner(dialect).shape == (1, 2, 1)
    too_much = Layer("conv_transpose", [5], [3], [1], [1], 4, output_padding=[0])
    assert torch_forward(too_much) is None
    for dialect in ("pytorch", "onnx", "tensorflow"):
        assert too_much.planner(dialect).codes == {"padding"}
    # one side alone may take more than the whole kernel: 7 cells, 6 cut at the start
    one_side = Layer("conv_transpose", [5], [3], [1], [1], [[6, 0]], output_padding=[0])
    assert torch_forward(one_side) == one_side.planner("pytorch").shape == (1, 2, 1)
    assert Layer("conv_transpose", [5], [3], [1], [1], [[7, 0]], output_padding=[0]).planner("pytorch").codes == {
        "padding"
    }
    with pytest.raises(RuntimeError, match="negative padding"):
        F.conv_transpose1d(torch.zeros(1, 1, 5), torch.zeros(1, 1, 3), padding=-1)
    onnx = pytest.importorskip("onnx")
    assert onnx_infer(fits) == (1, 2, 1)
    inferred = onnx.shape_inference.infer_shapes(onnx_model(too_much), strict_mode=True)
    assert [d.dim_value for d in inferred.graph.output[0].type.tensor_type.shape.dim] == [1, 2, -1]
    if ORT_ERRORS:
        w = np.ones([2, 2, 3], np.float32)
        assert ort_run(fits, np.ones(fits.in_shape(), np.float32), w).shape == (1, 2, 1)
        assert ort_run(too_much, np.ones(too_much.in_shape(), np.float32), w) is None


# --- ONNX ------------------------------------------------------------------------------------

ONNX_OPS = {"conv": "Conv", "conv_transpose": "ConvTranspose", "maxpool": "MaxPool", "avgpool": "AveragePool"}
AUTO_PAD = {"same": "SAME_UPPER", "same_lower": "SAME_LOWER", "valid": "VALID"}
OPSET = 22


def onnx_model(layer: Layer, *, weights: np.ndarray | None = None):
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    attrs: dict[str, Any] = {"kernel_shape": layer.kernel, "strides": layer.strides}
    if layer.op != "avgpool":
        attrs["dilations"] = layer.dilation
    if isinstance(layer.padding, str):
        attrs["auto_pad"] = AUTO_PAD[layer.padding]
    else:
        per_axis = pairs(layer.padding, layer.rank)
        attrs["pads"] = [b for b, _ in per_axis] + [e for _, e in per_axis]
    if layer.op in POOLS:
        attrs["ceil_mode"] = int(layer.ceil_mode)
    if layer.op == "conv_transpose":
        attrs["output_padding"] = layer.output_padding
    inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, layer.in_shape())]
    names, initializers = ["x"], []
    if layer.op in ("conv", "conv_transpose"):
        attrs["group"] = layer.groups
        w_shape = (
            [layer.c_out, layer.c_in // layer.groups]
            if layer.op == "conv"
            else [layer.c_in, layer.c_out // layer.groups]
        ) + layer.kernel
        names.append("w")
        if weights is None:
            inputs.append(helper.make_tensor_value_info("w", TensorProto.FLOAT, w_shape))
        else:
            assert list(weights.shape) == w_shape
            initializers.append(onnx.numpy_helper.from_array(weights.astype(np.float32), "w"))
    node = helper.make_node(ONNX_OPS[layer.op], names, ["y"], **attrs)
    graph = helper.make_graph(
        [node], "layer", inputs, [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], initializer=initializers
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = 10  # what onnxruntime reads
    return model


def onnx_infer(layer: Layer) -> tuple[int, ...] | None:
    """onnx's strict shape inference: the output shape, or None when it refuses (or gives an empty axis)."""
    onnx = pytest.importorskip("onnx")
    try:
        inferred = onnx.shape_inference.infer_shapes(onnx_model(layer), strict_mode=True)
    except onnx.shape_inference.InferenceError:
        return None
    (out,) = [v for v in inferred.graph.output if v.name == "y"]
    dims = out.type.tensor_type.shape.dim
    assert all(d.HasField("dim_value") for d in dims), f"onnx left the shape open: {out}"
    shape = tuple(d.dim_value for d in dims)
    return None if any(n <= 0 for n in shape[2:]) else shape


@st.composite
def onnx_layers(draw) -> Layer:
    op = draw(st.sampled_from(list(ONNX_OPS)))
    rank = draw(st.integers(1, 2))
    kernel, stride = draw(axes(rank, 1, 4)), draw(axes(rank, 1, 4))
    dilation = draw(axes(rank, 1, 3)) if op != "avgpool" else [1] * rank
    padding = draw(st.sampled_from(["same", "same_lower", "valid", "pads", "pads"]))
    if padding == "pads":
        padding = draw(pair_lists(rank, 3))
    groups = draw(st.sampled_from([1, 1, 2])) if op in ("conv", "conv_transpose") else 1
    c_in, c_out = groups * draw(st.integers(1, 2)), groups * draw(st.integers(1, 2))
    output_padding = None
    if op == "conv_transpose":
        output_padding = [
            draw(st.sampled_from([0, 0, max(s, d) - 1, max(s, d)])) for s, d in zip(stride, dilation, strict=True)
        ]
    return Layer(
        op,
        draw(axes(rank, 1, 10)),
        kernel,
        stride,
        dilation,
        padding,
        c_in,
        c_out,
        groups,
        output_padding,
        ceil_mode=op in POOLS and draw(st.booleans()),
    )


def same_transpose_needs_negative_padding(layer: Layer) -> bool:
    """conv_transpose `same` whose total padding d(k-1) + 1 - s + a is negative on some axis:
    planner refuses it, ONNX clamps the padding at 0 (see test_onnx_same_transpose_kernel_below_stride)."""
    return (
        layer.op == "conv_transpose"
        and layer.padding in ("same", "same_lower")
        and any(
            k_eff(k, d) - s + a < 0
            for k, s, d, a in zip(layer.kernel, layer.stride, layer.dilation, layer.output_padding, strict=True)
        )
    )


def onnx_same_transpose(i: int, k: int, s: int, d: int, a: int) -> int:
    """What onnx's shape inference says a ConvTranspose SAME_* gives (onnx 1.23): output_padding is
    added after the padding is taken out, so input * stride + a whenever k_eff >= s."""
    return s * (i - 1) + k_eff(k, d) + a - max(0, k_eff(k, d) - s)


def onnx_stricter(layer: Layer) -> frozenset[str]:
    """Planner's rules onnx's shape inference does not check (each is documented in docs/dialects.md)."""
    allowed = set(stricter(layer) - {"pool-padding"})
    if layer.op == "conv_transpose" and any(
        a >= max(s, d) for a, s, d in zip(layer.output_padding, layer.stride, layer.dilation, strict=True)
    ):
        allowed.add("output-padding")  # the ONNX spec states the rule; shape inference does not check it
    if (
        layer.op in POOLS
        and not isinstance(layer.padding, str)
        and any(max(b, e) >= k for (b, e), k in zip(pairs(layer.padding, layer.rank), layer.kernel, strict=True))
    ):
        allowed.add("pool-padding")  # onnxruntime's rule (pads < kernel), which shape inference does not check
    if layer.op != "conv_transpose" and layer.padding not in ("same", "same_lower"):
        # a window larger than the padded input: onnx computes (i + p - k_eff) / s + 1 with C++'s
        # truncating division, so 1 when k_eff - (i + p) < s (onnxruntime too, for the pools)
        sides = [(0, 0)] * layer.rank if layer.padding == "valid" else pairs(layer.padding, layer.rank)
        if any(
            i + b + e < k_eff(k, d)
            for (b, e), i, k, d in zip(sides, layer.size, layer.kernel, layer.dilation, strict=True)
        ):
            allowed.add("kernel-size")
    return frozenset(allowed)


@settings(max_examples=120)
@given(onnx_layers())
def test_against_onnx_shape_inference(layer: Layer) -> None:
    pytest.importorskip("onnx")
    ours, theirs = layer.planner("onnx"), onnx_infer(layer)
    event(f"{layer.op}: " + outcome(ours, theirs, layer))
    if theirs is None:
        assert not ours.ok, f"onnx refuses, planner accepts {ours.shape}:\n{ours.text}"
    elif ours.ok:
        if layer.op == "conv_transpose" and layer.padding in ("same", "same_lower"):
            # onnx/onnx#4299: onnx's shape inference leaves output_padding out of the total padding,
            # max(0, k_eff - s), and so adds it to the output; the operator's text (output = input * stride,
            # output_padding inside the total padding), onnxruntime and planner do not.
            assert theirs[2:] == tuple(
                onnx_same_transpose(i, k, s, d, a)
                for i, k, s, d, a in zip(
                    layer.size, layer.kernel, layer.stride, layer.dilation, layer.output_padding, strict=True
                )
            )
            # planner: input * stride, unless even zero padding cannot get there (k_eff + a < s): then, as
            # onnx and onnxruntime clamp the total padding at 0, s(i - 1) + k_eff + a
            expected = tuple(
                s * (i - 1) + k_eff(k, d) + a - max(0, k_eff(k, d) - s + a)
                for i, k, s, d, a in zip(
                    layer.size, layer.kernel, layer.stride, layer.dilation, layer.output_padding, strict=True
                )
            )
            assert ours.shape == (*theirs[:2], *expected), f"planner {ours.shape}, onnx {theirs}:\n{ours.text}"
        else:
            assert ours.shape == theirs, f"planner {ours.shape} != onnx {theirs}:\n{ours.text}"
    else:
        allowed = onnx_stricter(layer)
        assert allowed and ours.codes <= allowed, (
            f"onnx gives {theirs}, planner refuses with {sorted(ours.codes)} (documented: {sorted(allowed)}):\n"
            f"{ours.text}"
        )


@pytest.mark.parametrize("mode", ["same", "same_lower"])
def test_onnx_conv_transpose_same_with_output_padding(mode: str) -> None:
    """onnx/onnx#4299, pinned: for ConvTranspose SAME_* with output_padding, onnx's shape inference
    says input * stride + output_padding; the operator's text says input * stride with output_padding
    inside the total padding, which planner implements: total = d(k-1) + 1 - s + a."""
    layer = Layer("conv_transpose", [5, 3], [3, 4], [2, 2], [1, 1], mode, output_padding=[1, 0])
    ours = layer.planner("onnx")
    assert ours.shape == (1, 2, 10, 6)
    expected = {"same": [(1, 1), (1, 1)], "same_lower": [(1, 1), (1, 1)]}[mode]  # totals 2 and 2
    assert [tuple(p) for p in ours.params["padding"]] == expected
    odd = Layer("conv_transpose", [5], [4], [2], [1], mode, output_padding=[1])  # total 3
    assert [tuple(p) for p in odd.planner("onnx").params["padding"]] == [{"same": (1, 2), "same_lower": (2, 1)}[mode]]
    pytest.importorskip("onnx")
    assert onnx_infer(layer) == (1, 2, 11, 6)  # shape inference: 5 * 2 + 1


def ort_errors() -> tuple[type[Exception], ...]:
    try:
        from onnxruntime.capi import onnxruntime_pybind11_state as state
    except ImportError:
        return ()
    return (state.Fail, state.InvalidArgument, state.RuntimeException, state.InvalidGraph, state.NotImplemented)


ORT_ERRORS = ort_errors()


def ort_session(model):
    ort = pytest.importorskip("onnxruntime")
    ort.set_default_logger_severity(4)
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    return ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])


def ort_run(layer: Layer, x: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray | None:
    """onnxruntime's output, or None when it refuses the model or the run."""
    pytest.importorskip("onnxruntime")
    try:
        session = ort_session(onnx_model(layer, weights=weights))
        return session.run(None, {"x": x})[0]
    except ORT_ERRORS:
        return None


def planner_conv_transpose(layer: Layer, split: list[tuple[int, int]], x: np.ndarray, w: np.ndarray) -> torch.Tensor:
    """The transposed convolution with planner's [begin, end] padding: the full output, output_padding
    zeros at the end, then begin cells cut at the start and end cells at the end of each axis."""
    full = (F.conv_transpose1d, F.conv_transpose2d)[layer.rank - 1](
        torch.from_numpy(x),
        torch.from_numpy(w),
        stride=tuple(layer.stride),
        dilation=tuple(layer.dilation),
        groups=layer.groups,
    )
    full = F.pad(full, flat_pads([(0, a) for a in layer.output_padding]))
    return full[(..., *(slice(b, n - e) for (b, e), n in zip(split, full.shape[2:], strict=True)))]


@st.composite
def ort_conv_transpose_layers(draw) -> Layer:
    rank = draw(st.integers(1, 2))
    stride, dilation, kernel = draw(axes(rank, 1, 3)), draw(axes(rank, 1, 2)), draw(axes(rank, 1, 4))
    # onnxruntime refuses output_padding >= stride in SAME mode even when dilation is larger (pinned below)
    output_padding = [draw(st.integers(0, s - 1)) for s in stride]
    padding = draw(st.sampled_from(["same", "same_lower", "pads"]))
    if padding == "pads":  # up to 3 past d(k-1), where the direct form's padding d(k-1) - p is a crop
        padding = [
            [draw(st.integers(0, d * (k - 1) + 3)) for _ in range(2)] for k, d in zip(kernel, dilation, strict=True)
        ]
    return Layer(
        "conv_transpose",
        draw(axes(rank, 1, 6)),
        kernel,
        stride,
        dilation,
        padding,
        c_in=2,
        c_out=2,
        output_padding=output_padding,
    )


@settings(max_examples=40)
@given(ort_conv_transpose_layers())
def test_conv_transpose_against_onnxruntime(layer: Layer) -> None:
    """onnxruntime agrees with planner on ConvTranspose: shape and [begin, end] split, value for value,
    SAME_UPPER (planner's same) putting the odd cell at the end (fixed in onnxruntime#12537, #9370)."""
    pytest.importorskip("onnxruntime")
    ours = layer.planner("onnx")
    rng = np.random.default_rng(0)
    x = rng.standard_normal(layer.in_shape()).astype(np.float32)
    w = rng.standard_normal([layer.c_in, layer.c_out, *layer.kernel]).astype(np.float32)
    got = ort_run(layer, x, w)
    if got is None:
        assert not ours.ok, f"onnxruntime refuses, planner accepts {ours.shape}:\n{ours.text}"
        return
    assert ours.ok, f"onnxruntime gives {got.shape}, planner refuses {sorted(ours.codes)}:\n{ours.text}"
    assert tuple(got.shape) == ours.shape
    want = planner_conv_transpose(layer, [tuple(p) for p in ours.params["padding"]], x, w)
    torch.testing.assert_close(torch.from_numpy(got), want, rtol=1e-4, atol=1e-4)


def ort_deviates(layer: Layer) -> bool:
    """Where onnxruntime departs from ONNX (and planner's onnx dialect); each is pinned in
    test_onnxruntime_known_deviations."""
    same = layer.padding in ("same", "same_lower")
    if layer.op == "conv":  # "Dilation not supported for AutoPadType::SAME_UPPER or AutoPadType::SAME_LOWER"
        return same and any(d > 1 for d in layer.dilation)
    if layer.op == "conv_transpose":  # output_padding >= stride, even below the dilation
        return any(a >= s for a, s in zip(layer.output_padding, layer.stride, strict=True))
    return same and any(  # pools: SAME ignores the dilation; a negative SAME padding fails
        d > 1 or (math.ceil(i / s) - 1) * s + k_eff(k, d) - i < 0
        for i, k, s, d in zip(layer.size, layer.kernel, layer.stride, layer.dilation, strict=True)
    )


@settings(max_examples=50)
@given(onnx_layers())
def test_against_onnxruntime(layer: Layer) -> None:
    """The same random single-node models, run in onnxruntime: shapes, refusals."""
    pytest.importorskip("onnxruntime")
    ours = layer.planner("onnx")
    weights = None
    if layer.op in ("conv", "conv_transpose"):
        w_shape = (
            [layer.c_out, layer.c_in // layer.groups]
            if layer.op == "conv"
            else [layer.c_in, layer.c_out // layer.groups]
        ) + layer.kernel
        weights = np.ones(w_shape, np.float32)
    got = ort_run(layer, np.ones(layer.in_shape(), np.float32), weights)
    theirs = None if got is None or any(n <= 0 for n in got.shape[2:]) else tuple(got.shape)
    event(f"{layer.op}: " + outcome(ours, theirs, layer))
    if ort_deviates(layer):
        return
    if theirs is None:
        assert not ours.ok, f"onnxruntime refuses, planner gives {ours.shape}:\n{ours.text}"
    elif ours.ok:
        assert ours.shape == theirs, f"planner {ours.shape} != onnxruntime {theirs}:\n{ours.text}"
    else:
        allowed = onnx_stricter(layer) - {"output-padding", "pool-padding"}
        assert allowed and ours.codes <= allowed, (
            f"onnxruntime gives {theirs}, planner refuses with {sorted(ours.codes)} (documented: {sorted(allowed)}):\n"
            f"{ours.text}"
        )


@pytest.mark.parametrize("mode", ["same", "same_lower"])
def test_onnx_same_transpose_kernel_below_stride(mode: str) -> None:
    layer = Layer("conv_transpose", [3], [1], [2], [1], mode, output_padding=[0])
    assert onnx_infer(layer) == (1, 2, 5)  # 2 * (3 - 1) + 1, not 3 * 2
    if ORT_ERRORS:
        got = ort_run(layer, np.ones(layer.in_shape(), np.float32), np.ones([2, 2, 1], np.float32))
        assert got is not None and got.shape == (1, 2, 5)
    assert layer.planner("onnx").shape == (1, 2, 5)


def test_onnxruntime_known_deviations() -> None:
    """Where onnxruntime departs from onnx's shape inference, and what planner's onnx dialect says."""
    pytest.importorskip("onnxruntime")
    # 0. output_padding >= max(stride, dilation): shape inference accepts, onnxruntime and planner refuse
    big = Layer("conv_transpose", [5], [3], [2], [1], 0, output_padding=[2])
    assert onnx_infer(big) == (1, 2, 13) and big.planner("onnx").codes == {"output-padding"}
    assert ort_run(big, np.zeros(big.in_shape(), np.float32), np.ones([2, 2, 3], np.float32)) is None
    x = lambda layer: np.zeros(layer.in_shape(), np.float32)  # noqa: E731
    # 1. ConvTranspose with output_padding >= stride although < dilation (PyTorch's rule, and planner's
    #    in every dialect: smaller than the stride *or* the dilation): "Computed output shape is
    #    inconsistent with input spatial dimensions. output_padding (1) may be too large for stride (1)"
    w = np.ones([2, 2, 3], np.float32)
    t = Layer("conv_transpose", [4], [3], [1], [2], "same", output_padding=[1])
    assert t.planner("onnx").shape == (1, 2, 4) and onnx_infer(t) == (1, 2, 5)
    assert ort_run(t, x(t), w) is None
    for padding in ("valid", [[0, 0]]):
        v = Layer("conv_transpose", [4], [3], [1], [2], padding, output_padding=[1])
        assert v.planner("onnx").shape == onnx_infer(v) == torch_forward(v) == (1, 2, 9)
        assert ort_run(v, x(v), w) is None
    # 2. pooling pads >= kernel ("Pad should be smaller than kernel"): shape inference accepts them,
    #    planner's onnx dialect follows onnxruntime
    p = Layer("maxpool", [5], [2], [1], [1], [[2, 2]])
    assert onnx_infer(p) == (1, 2, 8) and ort_run(p, x(p)) is None
    assert p.planner("onnx").codes == {"pool-padding"}
    below = Layer("maxpool", [5], [2], [1], [1], [[1, 1]])
    assert below.planner("onnx").shape == onnx_infer(below) == ort_run(below, x(below)).shape == (1, 2, 6)
    # 3. pooling SAME with kernel < stride, where the formula's padding is negative: planner (and
    #    TensorFlow) clamp it at 0, onnxruntime fails with "padding values must be non-negative"
    q = Layer("maxpool", [7], [2], [4], [1], "same", ceil_mode=True)
    assert q.planner("onnx").shape == (1, 2, 2) and onnx_infer(q) == (1, 2, 2)
    assert ort_run(q, x(q)) is None
    # 4. Conv SAME_* with dilation: "Dilation not supported for AutoPadType::SAME_UPPER or SAME_LOWER"
    c = Layer("conv", [5], [3], [1], [2], "same")
    assert c.planner("onnx").shape == onnx_infer(c) == (1, 2, 5)
    assert ort_run(c, x(c), np.ones([2, 2, 3], np.float32)) is None
    # 5. MaxPool SAME_* with dilation: onnxruntime pads for the undilated kernel, a smaller output
    m = Layer("maxpool", [5], [3], [1], [2], "same")
    assert m.planner("onnx").shape == onnx_infer(m) == (1, 2, 5)
    assert ort_run(m, x(m)).shape == (1, 2, 3)


# --- TensorFlow ------------------------------------------------------------------------------


def tf_same(i: int, k: int, s: int, d: int) -> tuple[int, int]:
    """TensorFlow's published SAME padding: total, begin = total // 2, the rest at the end."""
    total = max((math.ceil(i / s) - 1) * s + k_eff(k, d) - i, 0)
    return total // 2, total - total // 2


TF_CASES = [(i, k, s, 1) for s in (1, 2, 3, 4) for i in (5, 6, 7, 8) for k in (1, 2, 3, 4, 5)]
TF_CASES += [(i, k, 1, d) for d in (2, 3) for i in (5, 6, 7, 8) for k in (2, 3, 4)]


@pytest.mark.parametrize("i,k,s,d", TF_CASES)
def test_tensorflow_same_split(i: int, k: int, s: int, d: int) -> None:
    layer = Layer("conv", [i, 3], [k, 3], [s, 1], [d, 1], "same")
    ours = layer.planner("tensorflow")
    assert ours.shape == (1, 2, math.ceil(i / s), 3)
    assert [tuple(p) for p in ours.params["padding"]] == [tf_same(i, k, s, d), (1, 1)]
    pool = Layer("maxpool", [i], [k], [s], [d], "same")
    assert [tuple(p) for p in pool.planner("tensorflow").params["padding"]] == [tf_same(i, k, s, d)]


@pytest.mark.parametrize("op", ["conv", "conv_transpose"])
def test_stride_with_dilation(op: str) -> None:
    """TensorFlow refuses stride > 1 with dilation > 1; ONNX (and PyTorch) accept it."""
    layer = Layer(op, [9, 9], [3, 3], [2, 2], [2, 2], 0, output_padding=[0, 0] if op == "conv_transpose" else None)
    assert layer.planner("tensorflow").codes == {"dilation-stride"}
    ours = layer.planner("onnx")
    assert ours.ok and layer.planner("pytorch").shape == ours.shape == torch_forward(layer)
    pytest.importorskip("onnx")
    assert onnx_infer(layer) == ours.shape
    assert (
        Layer(op, [9, 9], [3, 3], [1, 1], [2, 2], 0, output_padding=[0, 0] if op == "conv_transpose" else None)
        .planner("tensorflow")
        .ok
    )


def test_tensorflow_stride_and_dilation_on_different_axes() -> None:
    layer = Layer("conv", [9, 9], [3, 3], [2, 1], [1, 2], "same")
    assert layer.planner("tensorflow").codes == {"dilation-stride"}


def test_tensorflow_pool_stride_and_dilation() -> None:
    layer = Layer("maxpool", [9, 9], [3, 3], [2, 2], [2, 2], 0)
    assert layer.planner("tensorflow").codes == {"dilation-stride"}


# --- validity rules of each dialect ---------------------------------------------------------


@pytest.mark.parametrize("op", ["conv", "maxpool", "avgpool"])
@pytest.mark.parametrize("mode", ["same", "same_lower"])
def test_same_with_stride(op: str, mode: str) -> None:
    layer = Layer(op, [9, 8], [3, 2], [2, 2], [1, 1], mode)
    assert layer.planner("pytorch").codes == {"padding-same"}
    for dialect in ("onnx", "tensorflow"):
        assert layer.planner(dialect).shape == (1, 2, 5, 4)
    if op == "conv":
        with pytest.raises(ValueError, match="strided"):
            nn.Conv2d(2, 2, 3, stride=2, padding="same")


@pytest.mark.parametrize("op", ["maxpool", "avgpool"])
def test_pool_padding_at_most_half_the_kernel(op: str) -> None:
    ok = Layer(op, [9], [4], [1], [1], 2)
    too_much = Layer(op, [9], [3], [1], [1], 2)
    assert ok.planner("pytorch").shape == torch_forward(ok) == (1, 2, 10)
    assert torch_forward(too_much) is None
    assert too_much.planner("pytorch").codes == {"pool-padding"}
    for dialect in ("onnx", "tensorflow"):
        assert too_much.planner(dialect).shape == (1, 2, 11)
    if op == "maxpool":  # torch checks the raw kernel: k = 3, d = 2 spans 5 cells, but padding 2 > 3 // 2
        dilated = Layer(op, [9], [3], [1], [2], 2)
        assert torch_forward(dilated) is None
        assert dilated.planner("pytorch").codes == {"pool-padding"}
        assert dilated.planner("onnx").shape == (1, 2, 9)


def test_groups_must_divide_channels() -> None:
    for c_in, c_out, ok in ((4, 6, True), (3, 6, False), (4, 3, False)):
        for op in ("conv", "conv_transpose"):
            layer = Layer(op, [5], [3], [1], [1], 0, c_in, c_out, 2, [0] if op == "conv_transpose" else None)
            assert (torch_forward(layer) is not None) == ok
            for dialect in ("pytorch", "onnx", "tensorflow"):
                assert layer.planner(dialect).ok == ok and (ok or layer.planner(dialect).codes == {"groups"})
