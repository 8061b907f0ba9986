"""A transposed convolution's padding beyond d(k-1), against PyTorch.

PyTorch reads a ConvTransposeNd's padding as a crop of its full output
s(i-1) + d(k-1) + 1 + output_padding, and accepts any padding that leaves at least one cell;
it refuses negative padding and an output below one cell. Planner's rule is the same in
every dialect (docs/dialects.md). Its executor computes the layer as a direct convolution over
the stretched input padded by d(k-1) - p, a crop where that is negative.

1. Shapes, exhaustively in 1-D (k 1..5, s 1..4, d 1..3, p 0..12, output_padding 0..3, input
   1..4): the plans planner finds are exactly the layers torch runs, with torch's sizes.
2. Shapes, randomly in 1-D and 2-D with per-axis values and [begin, end] pairs.
3. Values: the executor's kernels equal F.conv_transpose1d/2d where padding > d(k-1).
4. A DCGAN-like generator with unknown kernels, strides and paddings: every plan torch runs.
"""

from __future__ import annotations

import itertools
import json
from typing import Any

import numpy as np
import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

import planner
from planner.errors import ExecutionError
from planner.executor import kernels as K
from planner.solver.solve import Status

torch = pytest.importorskip("torch")
F = torch.nn.functional

CONV_T = {1: F.conv_transpose1d, 2: F.conv_transpose2d}


def span(k: int, d: int) -> int:
    """d(k-1): the padding beyond which the equivalent direct convolution crops."""
    return d * (k - 1)


def torch_size(i: int, k: int, s: int, p: int, d: int, a: int) -> int | None:
    """The size torch's conv_transpose1d gives on CPU, or None when it raises."""
    try:
        with torch.no_grad():
            y = F.conv_transpose1d(
                torch.zeros(1, 1, i), torch.zeros(1, 1, k), stride=s, padding=p, output_padding=a, dilation=d
            )
    except RuntimeError:
        return None
    return y.shape[2]


def solve_text(spec: dict[str, Any], **kwargs: Any):
    result = planner.solve(planner.loads(json.dumps(spec), "transpose.yaml"), **kwargs)
    assert result.status in (Status.SOLVED, Status.INFEASIBLE), (spec, result.status, result.diagnostics)
    return result


# --- 1. every small 1-D layer ----------------------------------------------------------------

SIZES, PADDINGS, OUTPUT_PADDINGS = range(1, 5), range(0, 13), range(0, 4)
GRID = list(itertools.product(range(1, 6), range(1, 5), range(1, 4)))


@pytest.mark.parametrize("k,s,d", GRID, ids=[f"k{k}-s{s}-d{d}" for k, s, d in GRID])
def test_every_small_layer_is_planned_iff_torch_runs_it(k: int, s: int, d: int) -> None:
    """One spec per (k, s, d) with the input size, padding and output_padding unknown: its plans
    are exactly the (i, p, a) torch runs, each with torch's output size."""
    spec = {
        "input": {"shape": [1, 2, {"min": min(SIZES), "max": max(SIZES)}]},
        "layers": [
            {
                "name": "up",
                "op": "conv_transpose",
                "out_channels": 2,
                "kernel": k,
                "stride": s,
                "dilation": d,
                "padding": {"min": min(PADDINGS), "max": max(PADDINGS)},
                "output_padding": {"min": min(OUTPUT_PADDINGS), "max": max(OUTPUT_PADDINGS)},
            }
        ],
    }
    result = solve_text(spec, max_solutions=None, verify=False)
    ours = {}
    for plan in result.plans:
        key = (plan.assignment["input.shape[2]"], plan.assignment["up.padding"], plan.assignment["up.output_padding"])
        assert key not in ours, f"plan {key} found twice"
        ours[key] = plan.layers[0].output_shape[2]
    theirs = {
        (i, p, a): n
        for i, p, a in itertools.product(SIZES, PADDINGS, OUTPUT_PADDINGS)
        if (n := torch_size(i, k, s, p, d, a)) is not None
    }
    assert ours == theirs, (
        f"planner only: {sorted(set(ours) - set(theirs))}, torch only: {sorted(set(theirs) - set(ours))}"
    )
    assert len(theirs) < len(SIZES) * len(PADDINGS) * len(OUTPUT_PADDINGS)  # some crop everything away


def test_the_grid_reaches_past_the_kernel() -> None:
    """The grid above holds many layers torch runs with padding > d(k-1) (the old rule refused them all)."""
    beyond = [
        (i, k, s, p, d, a)
        for (k, s, d), i, p, a in itertools.product(GRID, SIZES, PADDINGS, OUTPUT_PADDINGS)
        if p > span(k, d) and torch_size(i, k, s, p, d, a) is not None
    ]
    assert len(beyond) >= 800  # 826 of the 3714 layers torch 2.13 runs here
    assert len({(k, s, d) for _, k, s, _, d, _ in beyond}) >= 45  # of the 60 (k, s, d)


def test_refusal_names_the_crop() -> None:
    """Padding that crops the whole output is refused as [padding], the message giving the sizes."""
    spec = {
        "input": {"shape": [1, 2, 5]},
        "layers": [{"op": "conv_transpose", "out_channels": 2, "kernel": 3, "padding": 4}],
    }
    result = solve_text(spec, verify=False)
    assert result.status is Status.INFEASIBLE
    (padding,) = [d for d in result.diagnostics if d.code == "padding"]
    assert "= 7 cells of its full output" in padding.message and "it leaves -1" in padding.message
    assert torch_size(5, 3, 1, 4, 1, 0) is None and torch_size(5, 3, 1, 3, 1, 0) == 1


# --- 2. random layers, per-axis values and [begin, end] pairs ----------------------------------


@st.composite
def layers(draw) -> dict[str, Any]:
    rank = draw(st.integers(1, 2))
    ax = lambda lo, hi: [draw(st.integers(lo, hi)) for _ in range(rank)]  # noqa: E731
    kernel, stride, dilation = ax(1, 5), ax(1, 4), ax(1, 3)
    output_padding = [
        draw(st.sampled_from([0, max(s, d) - 1, max(s, d), draw(st.integers(0, 3))]))
        for s, d in zip(stride, dilation, strict=True)
    ]
    kind = draw(st.sampled_from(["int", "axes", "pairs", "pairs"]))
    # padding around d(k-1) and well past it
    near = lambda k, d: draw(st.integers(0, 12) | st.integers(max(0, span(k, d) - 1), span(k, d) + 3))  # noqa: E731
    if kind == "int":
        padding: Any = near(kernel[0], dilation[0])
    elif kind == "axes":
        padding = [near(k, d) for k, d in zip(kernel, dilation, strict=True)]
    else:
        padding = [[near(k, d), near(k, d)] for k, d in zip(kernel, dilation, strict=True)]
    return dict(
        rank=rank,
        size=ax(1, 6),
        kernel=kernel,
        stride=stride,
        dilation=dilation,
        padding=padding,
        output_padding=output_padding,
        groups=draw(st.sampled_from([1, 1, 2])),
    )


def per_axis_pairs(layer: dict[str, Any]) -> list[tuple[int, int]]:
    padding, rank = layer["padding"], layer["rank"]
    if isinstance(padding, int):
        return [(padding, padding)] * rank
    return [(p, p) if isinstance(p, int) else (p[0], p[1]) for p in padding]


def torch_run(layer: dict[str, Any], x, w):
    """torch's output: the symmetric part of each axis' padding as ConvTransposeNd's padding (its
    own checks apply), the rest cropped from the output; None when torch refuses or nothing is left."""
    sides = per_axis_pairs(layer)
    common = [min(b, e) for b, e in sides]
    try:
        with torch.no_grad():
            y = CONV_T[layer["rank"]](
                x,
                w,
                stride=tuple(layer["stride"]),
                padding=tuple(common),
                output_padding=tuple(layer["output_padding"]),
                groups=layer["groups"],
                dilation=tuple(layer["dilation"]),
            )
    except RuntimeError:
        return None
    rest = [(b - c, e - c) for (b, e), c in zip(sides, common, strict=True)]
    if any(n - b - e < 1 for (b, e), n in zip(rest, y.shape[2:], strict=True)):
        return None
    return y[(..., *(slice(b, n - e) for (b, e), n in zip(rest, y.shape[2:], strict=True)))]


def planner_layer(layer: dict[str, Any], c_in: int, c_out: int) -> dict[str, Any]:
    return {
        "input": {"shape": [1, c_in, *layer["size"]]},
        "layers": [
            {
                "op": "conv_transpose",
                "out_channels": c_out,
                "groups": layer["groups"],
                **{key: layer[key] for key in ("kernel", "stride", "dilation", "padding", "output_padding")},
            }
        ],
    }


@settings(max_examples=150)
@given(layers())
def test_random_layers_against_torch(layer: dict[str, Any]) -> None:
    """Shapes, refusals, and (where both run) the executor's values, in the pytorch dialect."""
    c_in = c_out = 2 * layer["groups"]
    rng = np.random.default_rng(0)
    x = rng.standard_normal([1, c_in, *layer["size"]])
    w = rng.standard_normal([c_in, c_out // layer["groups"], *layer["kernel"]])
    theirs = torch_run(layer, torch.from_numpy(x), torch.from_numpy(w))
    result = solve_text(planner_layer(layer, c_in, c_out))  # verified in the executor when solved
    beyond = any(
        max(b, e) > span(k, d)
        for (b, e), k, d in zip(per_axis_pairs(layer), layer["kernel"], layer["dilation"], strict=True)
    )
    event(
        f"padding {'beyond' if beyond else 'within'} d(k-1), {'torch runs' if theirs is not None else 'torch refuses'}"
    )
    if theirs is None:
        assert result.status is Status.INFEASIBLE, f"torch refuses, planner plans {result.plans[0].layers[0]}"
        return
    assert result.status is Status.SOLVED, f"torch gives {tuple(theirs.shape)}, planner: {result.diagnostics}"
    (plan_layer,) = result.plans[0].layers
    assert result.plans[0].verified
    assert tuple(plan_layer.output_shape) == tuple(theirs.shape)
    assert [tuple(p) for p in plan_layer.params["padding"]] == per_axis_pairs(layer)
    kwargs = dict(
        stride=layer["stride"],
        padding=per_axis_pairs(layer),
        dilation=layer["dilation"],
        groups=layer["groups"],
        output_padding=layer["output_padding"],
    )
    for kernel in (K.conv_transpose, K.conv_transpose_direct):
        np.testing.assert_allclose(kernel(x, w, None, **kwargs), theirs.numpy(), rtol=1e-9, atol=1e-9)


# --- 3. values where padding > d(k-1) -----------------------------------------------------------


@st.composite
def beyond_the_kernel(draw) -> dict[str, Any]:
    """Layers with padding past d(k-1) on at least one side of one axis, a valid output_padding,
    and inputs mostly just large enough for the crop to leave something (now and then one short)."""
    layer = draw(layers())
    sides = per_axis_pairs(layer)
    axis = draw(st.integers(0, layer["rank"] - 1))
    b, e = sides[axis]
    extra = span(layer["kernel"][axis], layer["dilation"][axis]) + draw(st.integers(1, 4))
    sides[axis] = (max(b, extra), e) if draw(st.booleans()) else (b, max(e, extra))
    layer["padding"] = [list(pair) for pair in sides]
    layer["output_padding"] = [
        draw(st.integers(0, max(s, d) - 1)) for s, d in zip(layer["stride"], layer["dilation"], strict=True)
    ]
    sizes = []
    for (b, e), k, s, d, a in zip(
        sides, layer["kernel"], layer["stride"], layer["dilation"], layer["output_padding"], strict=True
    ):
        smallest = max(1, -(-(b + e - span(k, d) - a) // s) + 1)  # s(i-1) + d(k-1) + 1 + a - b - e >= 1
        sizes.append(max(1, smallest + draw(st.sampled_from([-1, 0, 0, 1, 2, 3]))))
    layer["size"] = sizes
    return layer


@settings(max_examples=80)
@given(beyond_the_kernel(), st.sampled_from([np.float32, np.float64]), st.booleans())
def test_executor_values_beyond_the_kernel(layer: dict[str, Any], dtype: type, bias: bool) -> None:
    """Both transposed kernels (the adjoint scatter and the direct convolution whose padding
    d(k-1) - p is then a crop) equal torch value for value, or refuse what torch refuses."""
    g = layer["groups"]
    c_in, c_out = 2 * g, 3 * g
    rng = np.random.default_rng(1)
    x = rng.standard_normal([2, c_in, *layer["size"]]).astype(dtype)
    w = rng.standard_normal([c_in, c_out // g, *layer["kernel"]]).astype(dtype)
    b = rng.standard_normal(c_out).astype(dtype) if bias else None
    theirs = torch_run(layer, torch.from_numpy(x), torch.from_numpy(w))
    kwargs = dict(
        stride=layer["stride"],
        padding=per_axis_pairs(layer),
        dilation=layer["dilation"],
        groups=g,
        output_padding=layer["output_padding"],
    )
    for kernel in (K.conv_transpose, K.conv_transpose_direct):
        if theirs is None:
            with pytest.raises(ExecutionError):
                kernel(x, w, b, **kwargs)
            continue
        want = theirs.numpy() + (0 if b is None else b.reshape(1, -1, *[1] * layer["rank"]))
        ours = kernel(x, w, b, **kwargs)
        assert ours.dtype == dtype and ours.shape == want.shape
        tol = 1e-4 if dtype == np.float32 else 1e-9
        np.testing.assert_allclose(ours, want, rtol=tol, atol=tol)
    event("torch refuses" if theirs is None else "torch runs")


def test_executor_crop_examples() -> None:
    """Hand-checked: a 1x1 kernel with padding 1 is the input with one cell cut from each side;
    padding 2 past a 3-tap kernel keeps the middle of the full output."""
    x = np.arange(1.0, 6.0).reshape(1, 1, 5)
    one = dict(stride=[1], dilation=[1], groups=1, output_padding=[0])
    for kernel in (K.conv_transpose, K.conv_transpose_direct):
        np.testing.assert_array_equal(kernel(x, np.ones((1, 1, 1)), None, padding=[(1, 1)], **one), [[[2.0, 3.0, 4.0]]])
        full = kernel(x, np.ones((1, 1, 3)), None, padding=[(0, 0)], **one)  # 7 cells
        np.testing.assert_array_equal(full, [[[1.0, 3.0, 6.0, 9.0, 12.0, 9.0, 5.0]]])
        np.testing.assert_array_equal(kernel(x, np.ones((1, 1, 3)), None, padding=[(3, 2)], **one), [[[9.0, 12.0]]])
        with pytest.raises(ExecutionError):
            kernel(x, np.ones((1, 1, 3)), None, padding=[(4, 3)], **one)


# --- 4. a DCGAN-like generator ------------------------------------------------------------------

DCGAN = """
name: dcgan-wide-padding
input: {shape: [1, 8, 1, 1]}
defaults:
  kernel: {min: 1, max: 5}
  stride: {min: 1, max: 4}
  padding: {min: 0, max: 8}
layers:
  - {name: project, op: conv_transpose, out_channels: 8, kernel: 4, expect: [1, 8, 4, 4]}
  - {op: batchnorm}
  - {op: relu}
  - {name: up1, op: conv_transpose, out_channels: 4, kernel: "?", stride: "?", padding: "?", expect: [1, 4, 8, 8]}
  - {op: batchnorm}
  - {op: relu}
  - {name: rgb, op: conv_transpose, out_channels: 3, kernel: "?", stride: "?", padding: "?", expect: [1, 3, 16, 16]}
  - {op: tanh}
"""


def torch_choices(i: int, o: int) -> set[tuple[int, int, int]]:
    """Every (kernel, stride, padding) in the spec's defaults with which torch takes i to o."""
    return {
        (k, s, p)
        for k, s, p in itertools.product(range(1, 6), range(1, 5), range(0, 9))
        if torch_size(i, k, s, p, 1, 0) == o
    }


def test_dcgan_generator_finds_every_plan_torch_runs() -> None:
    result = planner.solve(planner.loads(DCGAN, "dcgan.yaml"), max_solutions=None)
    assert result.status is Status.SOLVED
    found = set()
    for plan in result.plans:
        assert plan.verified
        layers = {layer.name: layer for layer in plan.layers}
        found.add(
            tuple(
                (layers[n].params["kernel"][0], layers[n].params["stride"][0], layers[n].params["padding"][0][0])
                for n in ("up1", "rgb")
            )
        )
    expected = set(itertools.product(torch_choices(4, 8), torch_choices(8, 16)))
    assert found == expected
    assert len(found) == len(result.plans)
    # the plans the old rule (padding in 0..d(k-1)) called impossible are among them
    beyond = {plan for plan in found if any(p > span(k, 1) for k, _, p in plan)}
    assert beyond and len(beyond) < len(found)
    assert ((1, 3, 1), (1, 3, 3)) in beyond  # 1x1 kernels: 4 -> 10 cropped to 8, 8 -> 22 cropped to 16
    assert ((4, 2, 1), (4, 2, 1)) in found  # the classic DCGAN step
