"""Tests of the NumPy kernels: the guide's figures, PyTorch as oracle, adjoint identities."""

from __future__ import annotations

import importlib.util
import io
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from planner.errors import ExecutionError
from planner.executor import kernels as K
from planner.executor import pointwise as P
from planner.executor import resize as R

PROFILE = settings(deadline=None, max_examples=40, derandomize=True)
DTYPES = st.sampled_from([np.float32, np.float64])


@pytest.fixture(scope="module")
def torch():
    """The torch module; tests that use it skip cleanly when torch is not installed."""
    return pytest.importorskip("torch")


def tol(dtype: type) -> dict:
    return dict(rtol=1e-4, atol=1e-4) if dtype == np.float32 else dict(rtol=1e-9, atol=1e-10)


def assert_same(ours: np.ndarray, ref, dtype: type, equal_nan: bool = False) -> None:
    """ours equals the torch tensor ref in shape, dtype and values."""
    ref = ref.detach().numpy()
    assert ours.shape == ref.shape
    assert ours.dtype == dtype
    np.testing.assert_allclose(ours, ref, equal_nan=equal_nan, **tol(dtype))


def flat_pad(padding) -> tuple[int, ...]:
    """Per-axis (begin, end) pairs as torch.nn.functional.pad's flat list, last axis first."""
    return tuple(v for pair in reversed(padding) for v in pair)


def rng_array(seed: int, shape, dtype) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def fn(torch, name: str, rank: int):
    return getattr(torch.nn.functional, f"{name}{rank}d")


def per_axis(rank: int, lo: int, hi: int):
    return st.tuples(*[st.integers(lo, hi)] * rank)


# ------------------------------------------------------------------ guide figures

X = np.array([[3, 3, 2, 1, 0], [0, 0, 1, 3, 1], [3, 1, 2, 2, 3], [2, 0, 0, 2, 2], [2, 0, 0, 0, 1]], float)[None, None]
W = np.array([[0, 1, 2], [2, 2, 0], [0, 1, 2]], float)[None, None]
NO_PAD = ((0, 0), (0, 0))


def test_fig_1_1_conv_unit_stride():
    out = K.conv(X, W, None, stride=(1, 1), padding=NO_PAD, dilation=(1, 1), groups=1)
    np.testing.assert_array_equal(out[0, 0], [[12, 12, 17], [10, 17, 19], [9, 6, 14]])


def test_fig_1_2_conv_stride_2_pad_1():
    out = K.conv(X, W, None, stride=(2, 2), padding=((1, 1), (1, 1)), dilation=(1, 1), groups=1)
    np.testing.assert_array_equal(out[0, 0], [[6, 17, 3], [8, 17, 13], [6, 4, 4]])


def test_fig_1_5_avg_pool():
    out = K.avg_pool(X, kernel=(3, 3), stride=(1, 1), padding=NO_PAD, ceil_mode=False, count_include_pad=True)
    np.testing.assert_allclose(out[0, 0], np.array([[15, 15, 15], [9, 11, 16], [10, 7, 12]]) / 9)


def test_fig_1_6_max_pool():
    out = K.max_pool(X, kernel=(3, 3), stride=(1, 1), padding=NO_PAD, dilation=(1, 1), ceil_mode=False)
    np.testing.assert_array_equal(out[0, 0], [[3, 3, 3], [3, 3, 3], [3, 2, 3]])


# (figure, i, k, s, p, d, o)
DIRECT = [
    ("2.1", 4, 3, 1, 0, 1, 2), ("2.2", 5, 4, 1, 2, 1, 6), ("2.3", 5, 3, 1, 1, 1, 5),
    ("2.4", 5, 3, 1, 2, 1, 7), ("2.5", 5, 3, 2, 0, 1, 2), ("2.6", 5, 3, 2, 1, 1, 3),
    ("2.7", 6, 3, 2, 1, 1, 3), ("2.8a", 5, 3, 1, 0, 1, 3), ("2.8b", 5, 3, 2, 0, 1, 2),
    ("5.1", 7, 3, 1, 0, 2, 3),
]  # fmt: skip
# (figure, i, k, s, p, i', a): the transposed conv maps i' back to i
TRANSPOSED = [
    ("4.1", 4, 3, 1, 0, 2, 0), ("4.2", 5, 4, 1, 2, 6, 0), ("4.3", 5, 3, 1, 1, 5, 0),
    ("4.4", 5, 3, 1, 2, 7, 0), ("4.5", 5, 3, 2, 0, 2, 0), ("4.6", 5, 3, 2, 1, 3, 0),
    ("4.7", 6, 3, 2, 1, 3, 1),
]  # fmt: skip


@pytest.mark.parametrize("fig, i, k, s, p, d, o", DIRECT, ids=[row[0] for row in DIRECT])
def test_guide_direct_sizes(fig, i, k, s, p, d, o):
    x, w = np.ones((1, 1, i, i)), np.ones((1, 1, k, k))
    out = K.conv(x, w, None, stride=(s, s), padding=((p, p), (p, p)), dilation=(d, d), groups=1)
    assert out.shape == (1, 1, o, o)


@pytest.mark.parametrize("fig, i, k, s, p, i_t, a", TRANSPOSED, ids=[row[0] for row in TRANSPOSED])
@pytest.mark.parametrize("kernel", [K.conv_transpose, K.conv_transpose_direct], ids=["adjoint", "direct"])
def test_guide_transposed_sizes(kernel, fig, i, k, s, p, i_t, a):
    y, w = np.ones((1, 1, i_t, i_t)), np.ones((1, 1, k, k))
    out = kernel(y, w, None, stride=(s, s), padding=((p, p), (p, p)), dilation=(1, 1), groups=1, output_padding=(a, a))
    assert out.shape == (1, 1, i, i)


# -------------------------------------------------------------------- convolution


@st.composite
def conv_cases(draw, transposed: bool = False):
    """Random conv parameters with an input big enough for at least one output."""
    rank = draw(st.integers(1, 3))
    groups = draw(st.integers(1, 3))
    kernel = draw(per_axis(rank, 1, 3))
    stride = draw(per_axis(rank, 1, 3))
    dilation = draw(per_axis(rank, 1, 2))
    padding = tuple(draw(st.tuples(st.integers(0, 2), st.integers(0, 2))) for _ in range(rank))
    extra = draw(per_axis(rank, 0, 4 if rank < 3 else 2))
    if transposed:
        sizes = tuple(1 + e for e in extra)
    else:
        spans = [d * (k - 1) + 1 for k, d in zip(kernel, dilation, strict=True)]
        sizes = tuple(max(1, sp - b - e + x) for sp, (b, e), x in zip(spans, padding, extra, strict=True))
    return dict(
        rank=rank, n=draw(st.integers(1, 2)), groups=groups, cig=draw(st.integers(1, 2)), cog=draw(st.integers(1, 2)),
        kernel=kernel, stride=stride, dilation=dilation, padding=padding, sizes=sizes,
        bias=draw(st.booleans()), dtype=draw(DTYPES), seed=draw(st.integers(0, 2**32 - 1)),
    )  # fmt: skip


def conv_arrays(c: dict, transposed: bool = False):
    """x, weight, bias for a case: weight as ConvNd (or ConvTransposeNd when transposed)."""
    g = c["groups"]
    c_in, c_out = g * c["cig"], g * c["cog"]
    wshape = (c_in, c["cog"], *c["kernel"]) if transposed else (c_out, c["cig"], *c["kernel"])
    x = rng_array(c["seed"], (c["n"], c_in, *c["sizes"]), c["dtype"])
    w = rng_array(c["seed"] + 1, wshape, c["dtype"])
    b = rng_array(c["seed"] + 2, (c_out,), c["dtype"]) if c["bias"] else None
    return x, w, b


def t(torch, a):
    return None if a is None else torch.from_numpy(np.ascontiguousarray(a))


@PROFILE
@given(c=conv_cases())
def test_conv_matches_torch(torch, c):
    x, w, b = conv_arrays(c)
    ours = K.conv(x, w, b, stride=c["stride"], padding=c["padding"], dilation=c["dilation"], groups=c["groups"])
    xt = torch.nn.functional.pad(t(torch, x), flat_pad(c["padding"]))
    ref = fn(torch, "conv", c["rank"])(
        xt, t(torch, w), t(torch, b), stride=c["stride"], dilation=c["dilation"], groups=c["groups"]
    )
    assert_same(ours, ref, c["dtype"])


@st.composite
def transpose_cases(draw):
    c = draw(conv_cases(transposed=True))
    c["output_padding"] = tuple(
        draw(st.integers(0, max(s, d) - 1)) for s, d in zip(c["stride"], c["dilation"], strict=True)
    )
    if draw(st.booleans()):
        c["padding"] = tuple((b, b) for b, _ in c["padding"])
    return c


def transpose_kwargs(c: dict) -> dict:
    keys = ("stride", "padding", "dilation", "groups", "output_padding")
    return {key: c[key] for key in keys}


def buffer_sizes(c: dict) -> list[int]:
    """The transposed output size before cropping (test-side formula, for filtering cases)."""
    return [
        s * (i - 1) + d * (k - 1) + 1 + a
        for i, k, s, d, a in zip(c["sizes"], c["kernel"], c["stride"], c["dilation"], c["output_padding"], strict=True)
    ]


@PROFILE
@given(c=transpose_cases())
def test_conv_transpose_matches_torch(torch, c):
    assume(all(size - b - e >= 1 for size, (b, e) in zip(buffer_sizes(c), c["padding"], strict=True)))
    x, w, b = conv_arrays(c, transposed=True)
    ours = K.conv_transpose(x, w, b, **transpose_kwargs(c))
    f = fn(torch, "conv_transpose", c["rank"])
    common = dict(stride=c["stride"], dilation=c["dilation"], groups=c["groups"], output_padding=c["output_padding"])
    if all(b_ == e for b_, e in c["padding"]):
        ref = f(t(torch, x), t(torch, w), t(torch, b), padding=tuple(b_ for b_, _ in c["padding"]), **common)
    else:  # torch pads symmetrically only: crop its unpadded output
        full = f(t(torch, x), t(torch, w), t(torch, b), padding=0, **common)
        ref = full[
            (
                slice(None),
                slice(None),
                *(slice(b_, size - e) for (b_, e), size in zip(c["padding"], full.shape[2:], strict=True)),
            )
        ]
    assert_same(ours, ref, c["dtype"])


@PROFILE
@given(c=transpose_cases(), crop=st.integers(0, 3))
def test_conv_transpose_direct_equals_adjoint(c, crop):
    # padding beyond d(k - 1) exercises the direct form's crop (p' < 0)
    c["padding"] = tuple((b + crop, e) for b, e in c["padding"])
    x, w, b = conv_arrays(c, transposed=True)
    try:
        ours = K.conv_transpose(x, w, b, **transpose_kwargs(c))
    except ExecutionError:
        with pytest.raises(ExecutionError):
            K.conv_transpose_direct(x, w, b, **transpose_kwargs(c))
        return
    direct = K.conv_transpose_direct(x, w, b, **transpose_kwargs(c))
    assert direct.shape == ours.shape and direct.dtype == ours.dtype
    np.testing.assert_allclose(direct, ours, **tol(c["dtype"]))


@PROFILE
@given(c=conv_cases())
def test_conv_transpose_is_adjoint_of_conv(c):
    c["dtype"], c["bias"] = np.float64, False
    x, w, _ = conv_arrays(c)
    kw = dict(stride=c["stride"], padding=c["padding"], dilation=c["dilation"], groups=c["groups"])
    out = K.conv(x, w, None, **kw)
    y = rng_array(c["seed"] + 3, out.shape, np.float64)
    # the output_padding that selects x's size among those giving out's size
    spans = [d * (k - 1) + 1 for k, d in zip(c["kernel"], c["dilation"], strict=True)]
    a = tuple(
        (i + b + e - sp) % s for i, sp, s, (b, e) in zip(c["sizes"], spans, c["stride"], c["padding"], strict=True)
    )
    assume(all(a_ < max(s, d) for a_, s, d in zip(a, c["stride"], c["dilation"], strict=True)))
    back = K.conv_transpose(y, w, None, output_padding=a, **kw)
    assert back.shape == x.shape
    np.testing.assert_allclose(np.vdot(out, y), np.vdot(back, x), rtol=1e-10, atol=1e-10)


# (id, x shape, weight shape, stride, padding, groups, im2col blocks): conv splits its
# im2col into blocks of rows while a sample's columns are longer than deep, else into
# blocks of input channels that accumulate; a 1x1 unit-stride kernel uses the input itself
BLOCKED = [
    ("rows", (1, 4, 12, 12), (6, 4, 3, 3), 1, 1, 1, 4),
    ("rows, batch, groups", (2, 4, 12, 12), (6, 2, 3, 3), 1, 1, 2, 4),
    ("rows, strided 1-D", (2, 2, 64), (2, 2, 7), 2, 3, 1, 4),
    ("channels", (1, 16, 4, 4), (8, 16, 3, 3), 1, 1, 1, 16),
    ("channels, batch, groups", (2, 16, 4, 4), (8, 8, 3, 3), 1, 1, 2, 8),
    ("channels, 3-D", (2, 8, 3, 3, 3), (4, 8, 3, 3, 3), 1, 1, 1, 8),
    ("1x1, batch", (3, 8, 5, 5), (4, 8, 1, 1), 1, 0, 1, 3),
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("xs, ws, s, p, g, blocks", [row[1:] for row in BLOCKED], ids=[row[0] for row in BLOCKED])
def test_conv_blocks_match_torch(torch, monkeypatch, xs, ws, s, p, g, blocks, dtype):
    calls = []
    columns = K._columns
    monkeypatch.setattr(K, "_columns", lambda *a: calls.append(a) or columns(*a))
    x, w, b = rng_array(0, xs, dtype), rng_array(1, ws, dtype), rng_array(2, ws[:1], dtype)
    rank = len(xs) - 2
    ours = K.conv(x, w, b, stride=(s,) * rank, padding=((p, p),) * rank, dilation=(1,) * rank, groups=g)
    assert len(calls) == blocks
    ref = fn(torch, "conv", rank)(t(torch, x), t(torch, w), t(torch, b), stride=s, padding=p, groups=g)
    assert_same(ours, ref, dtype)


def _layer(call, x_shape, *arrays):
    """(x, zero-argument call) on float32 data: `arrays` are the other inputs' shapes."""
    x = rng_array(0, x_shape, np.float32)
    others = [rng_array(i, shape, np.float32) for i, shape in enumerate(arrays, start=1)]
    return x, lambda: call(x, *others)


def _conv(s: int, p: int):
    return lambda x, w: K.conv(x, w, None, stride=(s, s), padding=((p, p), (p, p)), dilation=(1, 1), groups=1)


POOL2D = dict(kernel=(3, 3), stride=(2, 2), padding=((1, 1), (1, 1)), ceil_mode=False)
LAYERS = {  # ResNet-style layers, scaled down, in each regime of the kernels
    "conv 7x7/2 stem": lambda: _layer(_conv(2, 3), (1, 3, 64, 64), (16, 3, 7, 7)),
    "conv 3x3, row blocks": lambda: _layer(_conv(1, 1), (1, 16, 28, 28), (16, 16, 3, 3)),
    "conv 3x3, channel blocks": lambda: _layer(_conv(1, 1), (1, 128, 7, 7), (128, 128, 3, 3)),
    "conv 3x3, batch 4": lambda: _layer(_conv(1, 1), (4, 32, 14, 14), (32, 32, 3, 3)),
    "conv 1x1/2": lambda: _layer(_conv(2, 0), (1, 64, 28, 28), (128, 64, 1, 1)),
    "conv_transpose 4x4/2": lambda: _layer(
        lambda x, w, b: K.conv_transpose(
            x, w, b, stride=(2, 2), padding=((1, 1), (1, 1)), dilation=(1, 1), groups=1, output_padding=(0, 0)
        ),
        (2, 16, 28, 28), (16, 8, 4, 4), (8,),
    ),
    "max_pool 3x3/2": lambda: _layer(lambda x: K.max_pool(x, dilation=(1, 1), **POOL2D), (2, 16, 56, 56)),
    "avg_pool 3x3/2": lambda: _layer(lambda x: K.avg_pool(x, count_include_pad=True, **POOL2D), (2, 16, 56, 56)),
    "global avg pool": lambda: _layer(lambda x: R.adaptive_avg_pool(x, output_size=(1, 1)), (2, 256, 7, 7)),
    "adaptive avg pool 14 to 5": lambda: _layer(lambda x: R.adaptive_avg_pool(x, output_size=(5, 5)), (2, 32, 14, 14)),
}  # fmt: skip


@pytest.mark.parametrize("make", LAYERS.values(), ids=LAYERS.keys())
def test_peak_memory_within_3x_input_plus_output(make):
    # tracemalloc sees NumPy's buffers; the peak counts what the call allocates, output included
    x, call = make()
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        out = call()
        peak = tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()
    assert peak <= 3 * (x.nbytes + out.nbytes)


def test_executor_benchmark_quick_runs():
    # the CI smoke run of benchmarks/executor.py: every layer measured, then the summary
    path = Path(__file__).resolve().parents[1] / "benchmarks" / "executor.py"
    spec = importlib.util.spec_from_file_location("executor_benchmark", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    out = io.StringIO()
    assert bench.main(["--quick"], stdout=out) == 0
    text = out.getvalue()
    assert all(layer["name"] in text for layer in bench.layers(1))
    assert "\nsummary: numpy " in text


# ------------------------------------------------------------------------ pooling


@st.composite
def pool_cases(draw, dilated: bool):
    """Random pooling parameters torch accepts: symmetric padding <= k // 2, an output >= 1."""
    rank = draw(st.integers(1, 3))
    kernel = draw(per_axis(rank, 1, 3))
    stride = draw(per_axis(rank, 1, 3))
    dilation = draw(per_axis(rank, 1, 2)) if dilated else (1,) * rank
    padding = tuple((p, p) for p in (draw(st.integers(0, k // 2)) for k in kernel))
    extra = draw(per_axis(rank, 0, 4 if rank < 3 else 2))
    spans = [d * (k - 1) + 1 for k, d in zip(kernel, dilation, strict=True)]
    sizes = tuple(max(1, sp - 2 * p + x) for sp, (p, _), x in zip(spans, padding, extra, strict=True))
    if rank == 3 and not dilated:  # avg_pool3d alone also wants the unpadded input >= kernel
        sizes = tuple(max(i, k) for i, k in zip(sizes, kernel, strict=True))
    return dict(
        rank=rank, kernel=kernel, stride=stride, dilation=dilation, padding=padding, ceil_mode=draw(st.booleans()),
        shape=(draw(st.integers(1, 2)), draw(st.integers(1, 3)), *sizes),
        dtype=draw(DTYPES), seed=draw(st.integers(0, 2**32 - 1)),
    )  # fmt: skip


def sym(padding) -> tuple[int, ...]:
    return tuple(b for b, _ in padding)


@PROFILE
@given(c=pool_cases(dilated=True), nans=st.booleans())
def test_max_pool_matches_torch(torch, c, nans):
    x = rng_array(c["seed"], c["shape"], c["dtype"])
    if nans:
        x[np.random.default_rng(c["seed"]).random(x.shape) < 0.15] = np.nan
    kw = dict(kernel=c["kernel"], stride=c["stride"], dilation=c["dilation"], ceil_mode=c["ceil_mode"])
    ours = K.max_pool(x, padding=c["padding"], **kw)
    ref = fn(torch, "max_pool", c["rank"])(
        t(torch, x), c["kernel"], c["stride"], sym(c["padding"]), c["dilation"], ceil_mode=c["ceil_mode"]
    )
    # with dilation a window can hold only padding: torch also gives -inf there
    assert_same(ours, ref, c["dtype"], equal_nan=True)


@PROFILE
@given(c=pool_cases(dilated=False), count_include_pad=st.booleans())
def test_avg_pool_matches_torch(torch, c, count_include_pad):
    x = rng_array(c["seed"], c["shape"], c["dtype"])
    ours = K.avg_pool(
        x, kernel=c["kernel"], stride=c["stride"], padding=c["padding"], ceil_mode=c["ceil_mode"],
        count_include_pad=count_include_pad,
    )  # fmt: skip
    ref = fn(torch, "avg_pool", c["rank"])(
        t(torch, x), c["kernel"], c["stride"], sym(c["padding"]), ceil_mode=c["ceil_mode"],
        count_include_pad=count_include_pad,
    )  # fmt: skip
    assert_same(ours, ref, c["dtype"])


@PROFILE
@given(c=pool_cases(dilated=True), data=st.data())
def test_pools_asymmetric_padding_match_torch_padded_input(torch, c, data):
    c["padding"] = tuple(data.draw(st.tuples(st.integers(0, k - 1), st.integers(0, k - 1))) for k in c["kernel"])
    x = rng_array(c["seed"], c["shape"], c["dtype"])
    kw = dict(kernel=c["kernel"], stride=c["stride"], padding=c["padding"], ceil_mode=False)
    F = torch.nn.functional
    try:
        ours_max = K.max_pool(x, dilation=c["dilation"], **kw)
    except ExecutionError:
        assume(False)
    ref = fn(torch, "max_pool", c["rank"])(
        F.pad(t(torch, x), flat_pad(c["padding"]), value=-np.inf), c["kernel"], c["stride"], 0, c["dilation"]
    )
    assert_same(ours_max, ref, c["dtype"])
    try:
        ours_avg = K.avg_pool(x, count_include_pad=True, **kw)
    except ExecutionError:
        return
    ref = fn(torch, "avg_pool", c["rank"])(F.pad(t(torch, x), flat_pad(c["padding"])), c["kernel"], c["stride"])
    assert_same(ours_avg, ref, c["dtype"])


def test_ceil_mode_asymmetric_by_hand():
    x = np.arange(1.0, 6.0)[None, None]  # [1, 2, 3, 4, 5]
    kw = dict(kernel=(3,), stride=(2,), padding=((0, 1),), ceil_mode=True)
    # windows start at 0, 2, 4; the last covers x[4], the end pad, and a cell past it
    np.testing.assert_allclose(K.avg_pool(x, count_include_pad=True, **kw)[0, 0], [2, 4, 2.5])
    np.testing.assert_allclose(K.avg_pool(x, count_include_pad=False, **kw)[0, 0], [2, 4, 5])
    np.testing.assert_array_equal(K.max_pool(x, dilation=(1,), **kw)[0, 0], [3, 5, 5])
    # a window starting in the end padding is dropped in ceil mode only
    y = np.array([[[1.0, 2.0]]])
    kw = dict(kernel=(1,), stride=(2,), padding=((0, 1),), dilation=(1,))
    np.testing.assert_array_equal(K.max_pool(y, ceil_mode=True, **kw)[0, 0], [1])
    np.testing.assert_array_equal(K.max_pool(y, ceil_mode=False, **kw)[0, 0], [1, -np.inf])


def test_max_pool_nan_window_gives_nan(torch):
    x = np.array([[[1.0, np.nan, 3.0, 4.0, -np.inf]]], dtype=np.float32)
    ours = K.max_pool(x, kernel=(2,), stride=(1,), padding=((1, 1),), dilation=(1,), ceil_mode=False)
    ref = torch.nn.functional.max_pool1d(t(torch, x), 2, 1, 1)
    np.testing.assert_array_equal(ours, ref.numpy())
    np.testing.assert_array_equal(ours[0, 0], [1, np.nan, np.nan, 4, 4, -np.inf])


@PROFILE
@given(
    rank=st.integers(1, 3), data=st.data(), dtype=DTYPES, seed=st.integers(0, 2**32 - 1),
)  # fmt: skip
def test_adaptive_avg_pool_matches_torch(torch, rank, data, dtype, seed):
    sizes = data.draw(per_axis(rank, 1, 7 if rank < 3 else 4))
    output_size = data.draw(per_axis(rank, 1, 8 if rank < 3 else 5))
    x = rng_array(seed, (2, 3, *sizes), dtype)
    ours = R.adaptive_avg_pool(x, output_size=output_size)
    assert_same(ours, fn(torch, "adaptive_avg_pool", rank)(t(torch, x), output_size), dtype)


# ------------------------------------------------------------------ other layers


@PROFILE
@given(rank=st.integers(1, 3), data=st.data(), dtype=DTYPES, by_size=st.booleans())
def test_upsample_nearest_matches_torch(torch, rank, data, dtype, by_size):
    sizes = data.draw(per_axis(rank, 1, 5 if rank < 3 else 3))
    x = rng_array(0, (1, 2, *sizes), dtype)
    if by_size:
        size = data.draw(per_axis(rank, 1, 11 if rank < 3 else 6))
        ours = R.upsample_nearest(x, size=size)
        ref = torch.nn.functional.interpolate(t(torch, x), size=size, mode="nearest")
    else:
        scale = data.draw(st.integers(1, 4) | per_axis(rank, 1, 4))
        ours = R.upsample_nearest(x, scale_factor=scale)
        ref = torch.nn.functional.interpolate(t(torch, x), scale_factor=scale, mode="nearest")
    assert_same(ours, ref, dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize(
    "in_size, how",
    [(3, {"scale_factor": 41}), (5, {"scale_factor": 47}), (30, {"size": (22,)}), (26, {"size": (46,)})],
    ids=["x41", "x47", "30to22", "26to46"],
)
def test_upsample_nearest_follows_torch_rounding(torch, in_size, how, dtype):
    # torch floors float32(j * step), step in the data's float type: float32 data scaled
    # by 41 reads input 0 at output 41; float64 data 30 -> 22 reads input 15 at output 11
    x = np.arange(in_size, dtype=dtype)[None, None]
    ours = R.upsample_nearest(x, **how)
    ref = torch.nn.functional.interpolate(t(torch, x), mode="nearest", **how).numpy()
    np.testing.assert_array_equal(ours, ref)


@PROFILE
@given(rank=st.integers(1, 3), data=st.data(), dtype=DTYPES, value=st.floats(-5, 5))
def test_pad_matches_torch(torch, rank, data, dtype, value):
    sizes = data.draw(per_axis(rank, 1, 4))
    padding = tuple(data.draw(st.tuples(st.integers(0, 3), st.integers(0, 3))) for _ in range(rank))
    x = rng_array(1, (2, 2, *sizes), dtype)
    ours = R.pad(x, padding=padding, value=value)
    assert_same(ours, torch.nn.functional.pad(t(torch, x), flat_pad(padding), value=value), dtype)


@PROFILE
@given(n=st.integers(1, 3), fan_in=st.integers(1, 6), fan_out=st.integers(1, 6), bias=st.booleans(), dtype=DTYPES)
def test_linear_matches_torch(torch, n, fan_in, fan_out, bias, dtype):
    x, w = rng_array(2, (n, fan_in), dtype), rng_array(3, (fan_out, fan_in), dtype)
    b = rng_array(4, (fan_out,), dtype) if bias else None
    assert_same(P.linear(x, w, b), torch.nn.functional.linear(t(torch, x), t(torch, w), t(torch, b)), dtype)


# ------------------------------------------------------------------------- errors


def _ones(*shape):
    return np.ones(shape)


CONV = dict(stride=(1, 1), padding=((0, 0), (0, 0)), dilation=(1, 1), groups=1)
TCONV = dict(CONV, output_padding=(0, 0))
POOL = dict(kernel=(5, 5), stride=(1, 1), padding=((1, 1), (0, 0)), ceil_mode=False)
ERRORS = {
    "conv kernel larger than padded input": lambda: K.conv(_ones(1, 1, 4, 4), _ones(1, 1, 3, 5), None, **CONV),
    "conv dilated kernel larger": lambda: K.conv(
        _ones(1, 1, 4, 4), _ones(1, 1, 3, 3), None, **dict(CONV, dilation=(1, 2))
    ),
    "max_pool kernel larger than padded input": lambda: K.max_pool(_ones(1, 1, 4, 4), dilation=(1, 1), **POOL),
    "avg_pool kernel larger than padded input": lambda: K.avg_pool(_ones(1, 1, 4, 4), count_include_pad=True, **POOL),
    "channels not divisible by groups": lambda: K.conv(
        _ones(1, 3, 4, 4), _ones(2, 1, 1, 1), None, **dict(CONV, groups=2)
    ),
    "weight in-channels mismatch": lambda: K.conv(_ones(1, 4, 4, 4), _ones(2, 3, 1, 1), None, **CONV),
    "transposed weight mismatch": lambda: K.conv_transpose(_ones(1, 4, 4, 4), _ones(3, 2, 1, 1), None, **TCONV),
    "transposed output cropped away": lambda: K.conv_transpose(
        _ones(1, 1, 1, 1), _ones(1, 1, 1, 1), None, **dict(TCONV, padding=((1, 0), (0, 0)))
    ),
    "output_padding too large": lambda: K.conv_transpose(
        _ones(1, 1, 2, 2), _ones(1, 1, 1, 1), None, **dict(TCONV, stride=(2, 2), output_padding=(2, 0))
    ),
    "adaptive output size 0": lambda: R.adaptive_avg_pool(_ones(1, 1, 4), output_size=(0,)),
    "negative padding": lambda: R.pad(_ones(1, 1, 4), padding=((-1, 0),)),
    "linear shape mismatch": lambda: P.linear(_ones(2, 3), _ones(4, 2), None),
    "upsample needs one of scale and size": lambda: R.upsample_nearest(_ones(1, 1, 2), scale_factor=2, size=(4,)),
}


@pytest.mark.parametrize("call", ERRORS.values(), ids=ERRORS.keys())
def test_execution_errors(call):
    with pytest.raises(ExecutionError):
        call()


def test_kernel_larger_message_names_sizes():
    with pytest.raises(ExecutionError, match=r"larger than the padded input \(4, 4\)"):
        K.conv(_ones(1, 1, 4, 4), _ones(1, 1, 3, 5), None, **CONV)
