"""Vectorised NumPy kernels with PyTorch semantics, the executor's arithmetic.

Data is laid out (N, C, *spatial) with 1, 2 or 3 spatial axes; weights use PyTorch's
layouts. Every ``padding`` is a sequence of per-axis ``(begin, end)`` pairs.

The executor is the independent check of the planner's shape arithmetic, so no kernel
here evaluates an output-size formula: sizes emerge from the computation itself (how many
windows fit when sliding over the padded array, how far a strided scatter reaches).
Parameters that cannot run raise `ExecutionError`.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterator, Sequence
from types import EllipsisType
from typing import Any, Literal

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from planner.errors import ExecutionError

Pairs = Sequence[Sequence[int]]


# --------------------------------------------------------------------------- checks


def _spatial_rank(x: np.ndarray) -> int:
    """Number of spatial axes of x, which must be (N, C, *spatial) with 1 to 3 of them."""
    if x.ndim not in (3, 4, 5):
        raise ExecutionError(f"expected input of shape (N, C, *spatial) with 1-3 spatial axes, got shape {x.shape}")
    if any(size < 1 for size in x.shape[2:]):
        raise ExecutionError(f"input has an empty spatial axis: shape {x.shape}")
    return x.ndim - 2


def _ints(name: str, values: Sequence[int], rank: int, minimum: int) -> tuple[int, ...]:
    """values as a tuple of `rank` ints, each >= minimum."""
    values = tuple(int(v) for v in values)
    if len(values) != rank:
        raise ExecutionError(f"{name} needs {rank} values, one per spatial axis, got {len(values)}")
    if any(v < minimum for v in values):
        raise ExecutionError(f"{name} values must be >= {minimum}, got {values}")
    return values


def _pairs(padding: Pairs, rank: int) -> tuple[tuple[int, int], ...]:
    """padding as `rank` (begin, end) pairs of non-negative ints."""
    pairs = tuple(tuple(int(v) for v in pair) for pair in padding)
    if len(pairs) != rank or any(len(pair) != 2 for pair in pairs):
        raise ExecutionError(f"padding needs {rank} (begin, end) pairs, got {padding!r}")
    if any(v < 0 for pair in pairs for v in pair):
        raise ExecutionError(f"padding must be non-negative, got {pairs}")
    return pairs  # type: ignore[return-value]


def _groups(channels: int, groups: int, what: str) -> int:
    """Channels per group; raises unless `channels` splits into `groups` equal groups."""
    if channels < 1:
        raise ExecutionError(f"{what} must be at least 1, got {channels}")
    if groups < 1 or channels % groups:
        raise ExecutionError(f"{what} ({channels}) is not divisible by groups ({groups})")
    return channels // groups


def _add_bias(out: np.ndarray, bias: np.ndarray | None) -> np.ndarray:
    """out, which the caller owns, with a per-channel bias added in place, in out's dtype."""
    if bias is None:
        return out
    bias = np.asarray(bias)
    if bias.shape != (out.shape[1],):
        raise ExecutionError(f"bias shape {bias.shape} does not match {out.shape[1]} output channels")
    out += bias.astype(out.dtype, copy=False).reshape((1, -1) + (1,) * (out.ndim - 2))
    return out


# ------------------------------------------------------------------- shared helpers


def _pad(x: np.ndarray, padding: Sequence[Sequence[int]], value: float) -> np.ndarray:
    """x with its spatial axes padded by (begin, end) pairs; negative amounts crop."""
    grow = [(0, 0), (0, 0)] + [(max(b, 0), max(e, 0)) for b, e in padding]
    if any(b or e for b, e in grow):
        x = np.pad(x, grow, mode="constant", constant_values=value)
    crop = (slice(None), slice(None)) + tuple(
        slice(max(-b, 0), size - max(-e, 0)) for (b, e), size in zip(padding, x.shape[2:], strict=True)
    )
    return x[crop]


def _windows(xp: np.ndarray, kernel: Sequence[int], stride: Sequence[int], dilation: Sequence[int]) -> np.ndarray:
    """View (N, C, *out, *kernel) of every window that fits in the padded xp, by stride."""
    span = tuple(d * (k - 1) + 1 for k, d in zip(kernel, dilation, strict=True))
    if any(sp > size for sp, size in zip(span, xp.shape[2:], strict=True)):
        raise ExecutionError(f"kernel (dilated extent {span}) is larger than the padded input {tuple(xp.shape[2:])}")
    rank = len(kernel)
    win = sliding_window_view(xp, span, axis=tuple(range(2, 2 + rank)))
    return win[
        (slice(None), slice(None), *(slice(None, None, s) for s in stride), *(slice(None, None, d) for d in dilation))
    ]


def _taps(kernel: Sequence[int]) -> Iterator[tuple[int, ...]]:
    """Every kernel tap index, row-major."""
    return itertools.product(*(range(k) for k in kernel))


def _sliding(
    x: np.ndarray,
    *,
    kernel: Sequence[int],
    stride: Sequence[int],
    padding: Sequence[tuple[int, int]],
    dilation: Sequence[int],
    ceil_mode: bool,
    fill: float,
    ceil_fill: float,
) -> np.ndarray:
    """Window view of x padded with `fill`, with PyTorch's ceil-mode rule.

    In ceil mode the array is extended past the end padding with `ceil_fill` until a
    partial last window fits, and a last window starting at or beyond ``i + begin``
    (entirely in the end padding) is dropped.
    """
    xp = _pad(x, padding, fill)
    if ceil_mode:
        span = [d * (k - 1) + 1 for k, d in zip(kernel, dilation, strict=True)]
        extra = [
            (-(size - sp)) % s if size >= sp else 0 for size, sp, s in zip(xp.shape[2:], span, stride, strict=True)
        ]
        xp = _pad(xp, [(0, e) for e in extra], ceil_fill)
    win = _windows(xp, kernel, stride, dilation)
    if ceil_mode:
        rank = len(kernel)
        keep = []
        for n_out, s, size, (begin, _) in zip(win.shape[2 : 2 + rank], stride, x.shape[2:], padding, strict=True):
            keep.append(slice(0, n_out - 1) if (n_out - 1) * s >= size + begin else slice(None))
        win = win[(slice(None), slice(None), *keep)]
    return win


def _reduce_taps(win: np.ndarray, kernel: Sequence[int], ufunc: Callable[..., np.ndarray]) -> np.ndarray:
    """Reduce a window view (N, C, *out, *kernel) over its taps with a binary ufunc, one tap at a time.

    One sample at a time, so that a batch's later taps find their data still in cache.
    """
    out = np.empty(win.shape[: win.ndim - len(kernel)], dtype=win.dtype)
    for sample, windows in zip(out, win, strict=True):
        taps = _taps(kernel)
        np.copyto(sample, windows[(..., *next(taps))])
        for tap in taps:
            ufunc(sample, windows[(..., *tap)], out=sample)
    return out


# ----------------------------------------------------------------------- convolution


def _columns(block: np.ndarray, rank: int) -> np.ndarray:
    """The im2col matrices (G, channels * taps, positions) of a window block (G, channels, N, *out, *kernel).

    A contiguous copy, except for a 1x1 unit-stride kernel on one sample, whose columns
    are the (padded) input itself.
    """
    cols = np.ascontiguousarray(block.transpose(0, 1, *range(3 + rank, 3 + 2 * rank), *range(2, 3 + rank)))
    return cols.reshape(block.shape[0], -1, math.prod(block.shape[2 : 3 + rank]))


def conv(
    x: np.ndarray,
    weight: np.ndarray,
    bias: np.ndarray | None,
    *,
    stride: Sequence[int],
    padding: Pairs,
    dilation: Sequence[int],
    groups: int,
) -> np.ndarray:
    """Cross-correlation as torch.nn.ConvNd; weight (C_out, C_in // groups, *k). Returns (N, C_out, *o)."""
    rank = _spatial_rank(x)
    stride = _ints("stride", stride, rank, 1)
    dilation = _ints("dilation", dilation, rank, 1)
    padding = _pairs(padding, rank)
    n, c_in = x.shape[:2]
    c_out = weight.shape[0]
    cig = _groups(c_in, groups, "input channels")
    cog = _groups(c_out, groups, "output channels")
    if weight.ndim != rank + 2 or weight.shape[1] != cig:
        raise ExecutionError(f"weight shape {weight.shape} does not fit input channels {c_in} with groups {groups}")
    kernel = weight.shape[2:]
    if min(kernel) < 1:
        raise ExecutionError(f"weight has an empty kernel axis: shape {weight.shape}")

    win = _windows(_pad(x, padding, 0), kernel, stride, dilation)  # (N, C, *out, *kernel)
    out_sizes = win.shape[2 : 2 + rank]
    # (G, Cig, N, *out, *kernel): the batch becomes one more axis of output positions
    win = win.swapaxes(0, 1).reshape(groups, cig, n, *win.shape[2:])
    dtype = np.result_type(x, weight)
    taps, positions = math.prod(kernel), math.prod(out_sizes)
    w = weight.reshape(groups, cog, cig * taps).astype(dtype, copy=False)
    out = np.empty((groups, cog, n, *out_sizes), dtype=dtype)
    # im2col in blocks, one GEMM per group and block, a block's columns taking at most
    # the layer's input plus output bytes. When a sample's columns are longer than deep,
    # a block is one sample or rows (first spatial axis) of one, and every block re-reads
    # the weight matrix, the smaller operand; else a block is some input channels of every
    # sample, and every block adds its product into the output, the smaller operand then
    # (that product counts against the budget)
    budget = (x.nbytes + out.nbytes) // out.itemsize
    chans, samples, rows = [slice(0, cig)], [slice(0, n)], [slice(0, out_sizes[0])]
    if cig * taps <= positions:
        step = max(1, budget // (c_in * taps * (positions // out_sizes[0])))
        samples = [slice(i, i + 1) for i in range(n)]
        rows = [slice(r, r + step) for r in range(0, out_sizes[0], step)]
    else:
        step = max(1, (budget - out.size) // (groups * taps * n * positions))
        chans = [slice(c, c + step) for c in range(0, cig, step)]
    for c, i, r in itertools.product(chans, samples, rows):
        cols = _columns(win[:, c, i, r], rank)
        w_block = w[:, :, c.start * taps : c.stop * taps]
        target = out[:, :, i, r].reshape(groups, cog, -1)  # a view: whole samples, or rows of one
        if c.start == 0:
            np.matmul(w_block, cols, out=target)
        else:
            target += w_block @ cols
        del cols  # before the next block's columns exist
    # (G, Cog, N, *out) -> (N, C_out, *out): a copy when N > 1
    return _add_bias(np.moveaxis(out, 2, 0).reshape(n, c_out, *out_sizes), bias)


def _transpose_checks(
    x: np.ndarray,
    weight: np.ndarray,
    stride: Sequence[int],
    padding: Pairs,
    dilation: Sequence[int],
    groups: int,
    output_padding: Sequence[int],
) -> tuple[int, tuple[int, ...], tuple[tuple[int, int], ...], tuple[int, ...], int, int, tuple[int, ...]]:
    """Validated (rank, stride, padding, dilation, C_in/g, C_out/g, output_padding)."""
    rank = _spatial_rank(x)
    stride = _ints("stride", stride, rank, 1)
    dilation = _ints("dilation", dilation, rank, 1)
    output_padding = _ints("output_padding", output_padding, rank, 0)
    padding = _pairs(padding, rank)
    c_in = x.shape[1]
    if weight.ndim != rank + 2 or weight.shape[0] != c_in or min(weight.shape[2:]) < 1:
        raise ExecutionError(
            f"weight shape {weight.shape} does not fit {c_in} input channels (expected (C_in, C_out // groups, *k))"
        )
    cig = _groups(c_in, groups, "input channels")
    cog = weight.shape[1]
    if any(a >= max(s, d) for a, s, d in zip(output_padding, stride, dilation, strict=True)):
        raise ExecutionError(
            f"output_padding {output_padding} must be smaller than stride {stride} or dilation {dilation}"
        )
    return rank, stride, padding, dilation, cig, cog, output_padding


def _crop(out: np.ndarray, padding: Sequence[tuple[int, int]]) -> np.ndarray:
    """out with `begin` removed from the start and `end` from the end of each spatial axis."""
    sizes = tuple(size - b - e for size, (b, e) in zip(out.shape[2:], padding, strict=True))
    if min(sizes) < 1:
        raise ExecutionError(f"padding {tuple(padding)} crops the transposed output {tuple(out.shape[2:])} to nothing")
    return _pad(out, [(-b, -e) for b, e in padding], 0)


def conv_transpose(
    x: np.ndarray,
    weight: np.ndarray,
    bias: np.ndarray | None,
    *,
    stride: Sequence[int],
    padding: Pairs,
    dilation: Sequence[int],
    groups: int,
    output_padding: Sequence[int],
) -> np.ndarray:
    """Transposed convolution as torch.nn.ConvTransposeNd; weight (C_in, C_out // groups, *k).

    Computed as the adjoint of `conv`: one GEMM per kernel tap, scatter-added with the
    stride into a buffer spanning every position a tap reaches (plus output_padding),
    then cropped by the padding.
    """
    rank, stride, padding, dilation, cig, cog, output_padding = _transpose_checks(
        x, weight, stride, padding, dilation, groups, output_padding
    )
    n, c_in, *sizes = x.shape
    kernel = weight.shape[2:]
    reach = [
        s * (i - 1) + d * (k - 1) + 1 + a
        for i, k, s, d, a in zip(sizes, kernel, stride, dilation, output_padding, strict=True)
    ]
    dtype = np.result_type(x, weight)
    buf = np.zeros((n, groups * cog, *reach), dtype=dtype)
    # (C_in, Cog, *k) -> (G, Cog, Cig, *k): the transpose of each group's tap matrix
    wt = weight.reshape(groups, cig, cog, *kernel).swapaxes(1, 2).astype(dtype, copy=False)
    # one sample at a time, so that the scatter-adds land in a buffer still in cache
    for sample, sample_buf in zip(x.reshape(n, groups, cig, -1), buf, strict=True):
        for tap in _taps(kernel):
            where = tuple(
                slice(t * d, t * d + s * (i - 1) + 1, s)
                for t, d, s, i in zip(tap, dilation, stride, sizes, strict=True)
            )
            at_tap: tuple[EllipsisType | int, ...] = (..., *tap)
            sample_buf[(slice(None), *where)] += (wt[at_tap] @ sample).reshape(groups * cog, *sizes)
    return _add_bias(_crop(buf, padding), bias)


def conv_transpose_direct(
    x: np.ndarray,
    weight: np.ndarray,
    bias: np.ndarray | None,
    *,
    stride: Sequence[int],
    padding: Pairs,
    dilation: Sequence[int],
    groups: int,
    output_padding: Sequence[int],
) -> np.ndarray:
    """Transposed convolution via the guide's equivalent direct convolution; equals `conv_transpose`.

    Stretch the input (s - 1 zeros between units), pad each side by d(k - 1) - p (cropping
    where that is negative) plus output_padding zeros at the end, rotate the kernel by 180
    degrees with in/out channels swapped per group, and run a unit-stride `conv`.
    """
    rank, stride, padding, dilation, cig, cog, output_padding = _transpose_checks(
        x, weight, stride, padding, dilation, groups, output_padding
    )
    n, c_in, *sizes = x.shape
    kernel = weight.shape[2:]
    stretched = np.zeros((n, c_in, *(s * (i - 1) + 1 for s, i in zip(stride, sizes, strict=True))), dtype=x.dtype)
    stretched[(slice(None), slice(None), *(slice(None, None, s) for s in stride))] = x
    pads = [
        (d * (k - 1) - b, d * (k - 1) - e + a)
        for k, d, (b, e), a in zip(kernel, dilation, padding, output_padding, strict=True)
    ]
    xp = _pad(stretched, pads, 0)
    if min(xp.shape[2:]) < 1:
        raise ExecutionError(f"padding {padding} crops the transposed output to nothing")
    flipped = weight[(slice(None), slice(None), *(slice(None, None, -1) for _ in kernel))]
    w = flipped.reshape(groups, cig, cog, *kernel).swapaxes(1, 2).reshape(groups * cog, cig, *kernel)
    out = conv(xp, w, None, stride=(1,) * rank, padding=((0, 0),) * rank, dilation=dilation, groups=groups)
    return _add_bias(out, bias)


# --------------------------------------------------------------------------- pooling


def _lowest(dtype: np.dtype) -> float | int:
    """The identity of max for dtype: -inf for floats, the minimum for ints."""
    return -np.inf if np.issubdtype(dtype, np.floating) else np.iinfo(dtype).min


def max_pool(
    x: np.ndarray,
    *,
    kernel: Sequence[int],
    stride: Sequence[int],
    padding: Pairs,
    dilation: Sequence[int],
    ceil_mode: bool,
) -> np.ndarray:
    """Max pooling as torch.nn.MaxPoolNd: padding never wins, a window holding NaN gives NaN."""
    rank = _spatial_rank(x)
    kernel = _ints("kernel", kernel, rank, 1)
    stride = _ints("stride", stride, rank, 1)
    dilation = _ints("dilation", dilation, rank, 1)
    padding = _pairs(padding, rank)
    low = _lowest(x.dtype)
    win = _sliding(
        x,
        kernel=kernel,
        stride=stride,
        padding=padding,
        dilation=dilation,
        ceil_mode=ceil_mode,
        fill=low,
        ceil_fill=low,
    )
    # np.maximum returns the NaN when either operand is NaN, so NaN propagates like torch
    return _reduce_taps(win, kernel, np.maximum)


def avg_pool(
    x: np.ndarray,
    *,
    kernel: Sequence[int],
    stride: Sequence[int],
    padding: Pairs,
    ceil_mode: bool,
    count_include_pad: bool,
) -> np.ndarray:
    """Average pooling as torch.nn.AvgPoolNd.

    The divisor counts the window's cells inside [-begin, i + end) with count_include_pad,
    else only its real inputs; cells past the end padding (ceil mode) never count.
    """
    rank = _spatial_rank(x)
    kernel = _ints("kernel", kernel, rank, 1)
    stride = _ints("stride", stride, rank, 1)
    padding = _pairs(padding, rank)
    ones = (1,) * rank
    common: dict[str, Any] = dict(
        kernel=kernel, stride=stride, padding=padding, dilation=ones, ceil_mode=ceil_mode, ceil_fill=0
    )
    total = _reduce_taps(_sliding(x, fill=0, **common), kernel, np.add)
    mask = np.ones((1, 1, *x.shape[2:]), dtype=total.dtype)
    divisor = _reduce_taps(_sliding(mask, fill=1 if count_include_pad else 0, **common), kernel, np.add)
    if not divisor.all():
        raise ExecutionError(f"a pooling window covers only padding (padding {padding}, kernel {kernel})")
    return total / divisor


def adaptive_avg_pool(x: np.ndarray, *, output_size: Sequence[int]) -> np.ndarray:
    """Adaptive average pooling as torch: bin j spans [floor(j*I/O), ceil((j+1)*I/O))."""
    rank = _spatial_rank(x)
    output_size = _ints("output_size", output_size, rank, 1)
    dtype = x.dtype if np.issubdtype(x.dtype, np.floating) else np.float64
    if output_size == (1,) * rank:  # global average pooling: one GEMV
        planes = x.reshape(x.shape[0] * x.shape[1], -1)
        means = np.full(planes.shape[1], 1 / planes.shape[1], dtype=dtype)
        return (planes @ means).reshape(*x.shape[:2], *output_size)
    # else one GEMM per axis with a bin-averaging matrix, the last axis first: it needs
    # no transpose, and it shrinks what the other axes' transposes move
    out = x
    for axis in reversed(range(2, 2 + rank)):
        i, o = x.shape[axis], output_size[axis - 2]
        j = np.arange(o)[:, None]
        start, end = (j * i) // o, -((-(j + 1) * i) // o)
        cells = np.arange(i)
        means = ((start <= cells) & (cells < end)) / (end - start)  # (O, I): row j averages bin j
        out = np.moveaxis(np.tensordot(out, means.T.astype(dtype), axes=(axis, 0)), -1, axis)
    return np.ascontiguousarray(out)


# --------------------------------------------------------------------- other layers


def _nearest_index(in_size: int, out_size: int, scale: float | None, dtype: np.dtype) -> np.ndarray:
    """Source index of each output position by PyTorch's 'nearest' rule, rounding included.

    torch computes floorf(j * step) with step = 1/scale (or in/out) in the data's float
    type (double for float64, else float32), so the product is rounded to float32 before
    the floor: for float32 data and scale 41, output 41 reads input 0.
    """
    j = np.arange(out_size)
    if out_size == in_size and scale is None:  # ATen's shortcuts hold only without a scale factor
        return j
    if out_size == 2 * in_size and scale is None:
        return j >> 1
    ftype: type[np.floating] = np.float64 if dtype == np.float64 else np.float32
    step = ftype(1.0 / scale) if scale else ftype(in_size) / ftype(out_size)
    src = np.floor((j.astype(ftype) * step).astype(np.float32)).astype(np.int64)
    return np.minimum(src, in_size - 1)


def upsample_nearest(
    x: np.ndarray,
    *,
    scale_factor: int | Sequence[int] | None = None,
    size: int | Sequence[int] | None = None,
) -> np.ndarray:
    """Nearest upsampling as torch.nn.functional.interpolate(mode='nearest'); give exactly one of scale_factor, size."""
    rank = _spatial_rank(x)
    if (scale_factor is None) == (size is None):
        raise ExecutionError("upsample_nearest needs exactly one of scale_factor and size")
    out = x
    if scale_factor is not None:
        factors = (scale_factor,) * rank if isinstance(scale_factor, (int, np.integer)) else scale_factor
        factors = _ints("scale_factor", factors, rank, 1)
        for axis, f in enumerate(factors, start=2):
            i = x.shape[axis]
            out = out.take(_nearest_index(i, i * f, float(f), x.dtype), axis=axis)
    else:
        assert size is not None  # exactly one of the two, checked above
        sizes = (size,) * rank if isinstance(size, (int, np.integer)) else size
        sizes = _ints("size", sizes, rank, 1)
        for axis, o in enumerate(sizes, start=2):
            out = out.take(_nearest_index(x.shape[axis], o, None, x.dtype), axis=axis)
    return out


_PAD_MODES: dict[str, Literal["reflect", "edge", "wrap"]] = {
    "reflect": "reflect",
    "replicate": "edge",
    "circular": "wrap",
}


def _source_scale(in_size: int, out_size: int, scale: float | None, align_corners: bool) -> float:
    """PyTorch's area_pixel_compute_scale: (i - 1)/(o - 1) with align_corners, else 1/scale_factor when
    one was given, else i/o."""
    if align_corners:
        return (in_size - 1) / (out_size - 1) if out_size > 1 else 0.0
    return 1.0 / scale if scale else in_size / out_size


def _resize_matrix(in_size: int, out_size: int, scale: float | None, mode: str, align_corners: bool) -> np.ndarray:
    """The (out, in) matrix of one axis's interpolation: each row holds the weights of the input cells an
    output reads (2 for linear, 4 for cubic with a = -0.75, edges clamped), as ATen's upsample kernels."""
    rows = np.arange(out_size)
    weights = np.zeros((out_size, in_size))
    if mode == "linear" and out_size == in_size:  # ATen copies, whatever the scale
        weights[rows, rows] = 1.0
        return weights
    ratio = _source_scale(in_size, out_size, scale, align_corners)
    src = ratio * rows if align_corners else ratio * (rows + 0.5) - 0.5
    if mode == "linear":
        src = np.maximum(src, 0.0)
    first = np.minimum(np.floor(src).astype(np.int64), in_size - 1)
    t = np.clip(src - first, 0.0, 1.0)
    if mode == "linear":
        np.add.at(weights, (rows, first), 1.0 - t)
        np.add.at(weights, (rows, first + (first < in_size - 1)), t)
        return weights
    a = -0.75
    near = lambda d: ((a + 2) * d - (a + 3)) * d * d + 1  # noqa: E731 (|d| <= 1)
    far = lambda d: ((a * d - 5 * a) * d + 8 * a) * d - 4 * a  # noqa: E731 (1 < |d| < 2)
    for tap, w in enumerate((far(t + 1), near(t), near(1 - t), far(2 - t))):
        np.add.at(weights, (rows, np.clip(first - 1 + tap, 0, in_size - 1)), w)
    return weights


_MODE_RANK = {"linear": 1, "bilinear": 2, "bicubic": 2, "trilinear": 3}


def interpolate(
    x: np.ndarray,
    *,
    mode: str = "nearest",
    scale_factor: float | Sequence[float] | None = None,
    size: int | Sequence[int] | None = None,
    align_corners: bool = False,
) -> np.ndarray:
    """F.interpolate(x, size or scale_factor, mode, align_corners) for nearest, linear, bilinear, bicubic and
    trilinear. A scale factor sizes each axis as ATen does, floor(i * f) in float64, and (as in PyTorch,
    unless recompute_scale_factor) also gives the step between sampled points, 1/f."""
    rank = _spatial_rank(x)
    if (scale_factor is None) == (size is None):
        raise ExecutionError("interpolate needs exactly one of scale_factor and size")
    if mode != "nearest" and _MODE_RANK.get(mode) != rank:
        raise ExecutionError(f"mode {mode!r} does not take {rank} spatial axes")
    if scale_factor is not None:
        given = scale_factor if isinstance(scale_factor, Sequence) else (scale_factor,) * rank
        factors = tuple(float(f) for f in given)
        if len(factors) != rank or any(not f > 0 for f in factors):
            raise ExecutionError(f"scale_factor needs {rank} positive values, got {scale_factor!r}")
        sizes = tuple(int(math.floor(float(i) * f)) for i, f in zip(x.shape[2:], factors, strict=True))
        scales: tuple[float | None, ...] = factors
    else:
        sizes = (size,) * rank if isinstance(size, (int, np.integer)) else tuple(size)  # type: ignore[arg-type]
        scales = (None,) * rank
    sizes = _ints("size", sizes, rank, 1)
    out = x
    for axis, (o, scale) in enumerate(zip(sizes, scales, strict=True), start=2):
        i = x.shape[axis]
        if mode == "nearest":
            out = out.take(_nearest_index(i, o, scale, x.dtype), axis=axis)
            continue
        kind = "cubic" if mode == "bicubic" else "linear"
        matrix = _resize_matrix(i, o, scale, kind, align_corners).astype(x.dtype, copy=False)
        out = np.moveaxis(np.tensordot(out, matrix, axes=(axis, 1)), -1, axis)
    return np.ascontiguousarray(out)


def adaptive_max_pool(x: np.ndarray, *, output_size: Sequence[int]) -> np.ndarray:
    """Adaptive max pooling as torch: bin j spans [floor(j*I/O), ceil((j+1)*I/O)); the max of a box is the
    max along one axis of the max along the others, so the axes are reduced one at a time."""
    rank = _spatial_rank(x)
    output_size = _ints("output_size", output_size, rank, 1)
    out = x
    for axis in range(2, 2 + rank):
        i, o = x.shape[axis], output_size[axis - 2]
        bins = [out.take(range((j * i) // o, -((-(j + 1) * i) // o)), axis=axis).max(axis=axis) for j in range(o)]
        out = np.stack(bins, axis=axis)
    return out


def pixel_shuffle(x: np.ndarray, r: int) -> np.ndarray:
    """nn.PixelShuffle(r): (N, C r^2, H, W) -> (N, C, H r, W r)."""
    n, c, h, w = x.shape
    if c % (r * r):
        raise ExecutionError(f"pixel_shuffle by {r} needs channels divisible by {r * r}, got {c}")
    return x.reshape(n, c // (r * r), r, r, h, w).transpose(0, 1, 4, 2, 5, 3).reshape(n, c // (r * r), h * r, w * r)


def pixel_unshuffle(x: np.ndarray, r: int) -> np.ndarray:
    """nn.PixelUnshuffle(r): (N, C, H r, W r) -> (N, C r^2, H, W)."""
    n, c, h, w = x.shape
    if h % r or w % r:
        raise ExecutionError(f"pixel_unshuffle by {r} needs spatial sizes divisible by it, got {h}x{w}")
    return x.reshape(n, c, h // r, r, w // r, r).transpose(0, 1, 3, 5, 2, 4).reshape(n, c * r * r, h // r, w // r)


def broadcast(xs: Sequence[np.ndarray], ufunc: Callable[..., np.ndarray]) -> np.ndarray:
    """The inputs combined element-wise by `ufunc` with NumPy's (that is, PyTorch's) broadcasting."""
    try:
        np.broadcast_shapes(*(x.shape for x in xs))
    except ValueError:
        raise ExecutionError(f"shapes {[list(x.shape) for x in xs]} do not broadcast") from None
    out = xs[0]
    for x in xs[1:]:
        out = ufunc(out, x)
    return out


# ------------------------------------------------------------------ activations and norms


def _erf(x: np.ndarray) -> np.ndarray:
    """The error function to 1.5e-7 (Abramowitz and Stegun 7.1.26): NumPy has none, and float32 needs no more."""
    t = 1.0 / (1.0 + 0.3275911 * np.abs(x))
    poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))))
    return np.sign(x) * (1.0 - poly * np.exp(-x * x))


def gelu(x: np.ndarray, approximate: str = "none") -> np.ndarray:
    """F.gelu: x Phi(x), or its tanh approximation."""
    if approximate == "tanh":
        return 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x**3)))
    return (0.5 * x * (1 + _erf(x / math.sqrt(2)))).astype(x.dtype, copy=False)


def hardsigmoid(x: np.ndarray) -> np.ndarray:
    return np.clip(x + 3, 0, 6) / 6


def elu(x: np.ndarray, alpha: float = 1.0) -> np.ndarray:
    return np.where(x > 0, x, alpha * np.expm1(np.minimum(x, 0))).astype(x.dtype, copy=False)


def softmax(x: np.ndarray, dim: int) -> np.ndarray:
    shifted = np.exp(x - x.max(axis=dim, keepdims=True))
    return shifted / shifted.sum(axis=dim, keepdims=True)


def _normalized(x: np.ndarray, axes: tuple[int, ...], eps: float) -> np.ndarray:
    """(x - mean) / sqrt(var + eps) over `axes` (biased variance, as every PyTorch norm)."""
    mean = x.mean(axis=axes, keepdims=True)
    var = x.var(axis=axes, keepdims=True)
    return ((x - mean) / np.sqrt(var + np.asarray(eps, x.dtype))).astype(x.dtype, copy=False)


def layer_norm(x: np.ndarray, normalized_shape: Sequence[int], eps: float = 1e-5) -> np.ndarray:
    """F.layer_norm without the affine part (PyTorch initialises it to the identity)."""
    k = len(normalized_shape)
    if k > x.ndim or tuple(x.shape[x.ndim - k :]) != tuple(normalized_shape):
        raise ExecutionError(f"normalized_shape {list(normalized_shape)} is not the end of shape {list(x.shape)}")
    return _normalized(x, tuple(range(x.ndim - k, x.ndim)), eps)


def group_norm(x: np.ndarray, num_groups: int, eps: float = 1e-5) -> np.ndarray:
    """F.group_norm without the affine part: statistics over each group of C / G channels and every position."""
    n, c = x.shape[:2]
    if c % num_groups:
        raise ExecutionError(f"{c} channels do not split into {num_groups} groups")
    grouped = x.reshape(n, num_groups, -1)
    return _normalized(grouped, (2,), eps).reshape(x.shape)


def instance_norm(x: np.ndarray, eps: float = 1e-5) -> np.ndarray:
    """F.instance_norm with the statistics of each sample and channel."""
    if math.prod(x.shape[2:]) <= 1:
        raise ExecutionError(f"instance norm needs more than one spatial cell, got shape {list(x.shape)}")
    return _normalized(x, tuple(range(2, x.ndim)), eps)


def pad(x: np.ndarray, *, padding: Pairs, value: float = 0.0, mode: str = "constant") -> np.ndarray:
    """x with its spatial axes padded per-axis (begin, end), as F.pad: by a constant `value`, or by
    reflecting (without the edge), replicating the edge, or wrapping around (circular)."""
    rank = _spatial_rank(x)
    pairs = _pairs(padding, rank)
    if mode == "constant":
        return _pad(x, pairs, value)
    if mode not in _PAD_MODES:
        raise ExecutionError(f"unknown padding mode {mode!r}")
    for (b, e), size in zip(pairs, x.shape[2:], strict=True):
        if mode == "reflect" and max(b, e) >= size or mode == "circular" and max(b, e) > size:
            raise ExecutionError(f"{mode} padding ({b}, {e}) does not fit an axis of size {size}")
    return np.pad(x, [(0, 0), (0, 0), *pairs], mode=_PAD_MODES[mode])


def linear(x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None) -> np.ndarray:
    """x @ weight.T + bias as torch.nn.Linear; x (N, in), weight (out, in)."""
    if x.ndim != 2 or weight.ndim != 2 or x.shape[1] != weight.shape[1]:
        raise ExecutionError(f"linear: input shape {x.shape} does not fit weight shape {weight.shape} (out, in)")
    out = x @ weight.T
    if bias is not None:
        bias = np.asarray(bias)
        if bias.shape != (weight.shape[0],):
            raise ExecutionError(f"bias shape {bias.shape} does not match {weight.shape[0]} outputs")
        out = out + bias.astype(out.dtype, copy=False)
    return out
