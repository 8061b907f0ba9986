"""Resizing kernels with PyTorch semantics: adaptive pooling, nearest and interpolating upsampling,
pixel (un)shuffle and padding modes. As in `planner.executor.kernels`, no output-size formula is
evaluated here: each size comes from the computation (the bins, the index maps, the padded array).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import numpy as np

from planner.errors import ExecutionError
from planner.executor.kernels import Pairs, _ints, _pad, _pairs, _spatial_rank


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
