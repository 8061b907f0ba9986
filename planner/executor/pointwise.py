"""Element-wise and normalising kernels with PyTorch semantics: broadcasting joins, activations,
norms and the linear layer."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np

from planner.errors import ExecutionError


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
