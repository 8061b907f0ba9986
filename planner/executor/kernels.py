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
from typing import Any

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
