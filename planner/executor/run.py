"""Run a plan in NumPy, layer by layer, and check every layer's shape against the plan."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

import numpy as np

from planner.errors import ExecutionError
from planner.executor import kernels as K
from planner.plan import LayerPlan, Plan


@dataclass(frozen=True)
class LayerRun:
    name: str
    op: str
    shape: tuple[int, ...]
    seconds: float


def _weights(rng: np.random.Generator, shape: tuple[int, ...], dtype) -> np.ndarray:
    fan_in = max(1, int(np.prod(shape[1:])))
    return (rng.standard_normal(shape) / np.sqrt(fan_in)).astype(dtype)


def _conv(layer: LayerPlan, x: np.ndarray, rng, dtype) -> np.ndarray:
    p = layer.params
    g, c_in, c_out = p["groups"], x.shape[1], p["out_channels"]
    transposed = layer.op == "conv_transpose"
    w_shape = (c_in, c_out // g, *p["kernel"]) if transposed else (c_out, c_in // g, *p["kernel"])
    if c_in % g or c_out % g:
        raise ExecutionError(f"{layer.name}: groups {g} do not divide channels {c_in} -> {c_out}")
    w, b = _weights(rng, w_shape, dtype), _weights(rng, (c_out, 1), dtype)[:, 0]
    kwargs = dict(stride=p["stride"], padding=p["padding"], dilation=p["dilation"], groups=g)
    if transposed:
        return K.conv_transpose(x, w, b, output_padding=p["output_padding"], **kwargs)
    return K.conv(x, w, b, **kwargs)


def _linear(layer: LayerPlan, x: np.ndarray, rng, dtype) -> np.ndarray:
    out = layer.params["out_features"]
    return K.linear(x, _weights(rng, (out, x.shape[1]), dtype), _weights(rng, (out, 1), dtype)[:, 0])


def _pool(layer: LayerPlan, x: np.ndarray, rng, dtype) -> np.ndarray:
    p = layer.params
    if layer.op == "maxpool":
        return K.max_pool(x, kernel=p["kernel"], stride=p["stride"], padding=p["padding"], dilation=p["dilation"],
                          ceil_mode=p["ceil_mode"])
    return K.avg_pool(x, kernel=p["kernel"], stride=p["stride"], padding=p["padding"], ceil_mode=p["ceil_mode"],
                      count_include_pad=p["count_include_pad"])


def _batchnorm(x: np.ndarray) -> np.ndarray:
    axes = (0, *range(2, x.ndim))
    return (x - x.mean(axis=axes, keepdims=True)) / np.sqrt(x.var(axis=axes, keepdims=True) + 1e-5)


Layer = Callable[[LayerPlan, np.ndarray, np.random.Generator, type], np.ndarray]
LAYERS: dict[str, Layer] = {
    "conv": _conv,
    "conv_transpose": _conv,
    "maxpool": _pool,
    "avgpool": _pool,
    "adaptive_avgpool": lambda ly, x, rng, dt: K.adaptive_avg_pool(x, output_size=ly.params["output_size"]),
    "upsample": lambda ly, x, rng, dt: K.upsample_nearest(x, scale_factor=ly.params.get("scale_factor"),
                                                          size=ly.params.get("size")),
    "pad": lambda ly, x, rng, dt: K.pad(x, padding=ly.params["padding"], value=ly.params["value"]),
    "flatten": lambda ly, x, rng, dt: x.reshape(x.shape[0], -1),
    "linear": _linear,
    "relu": lambda ly, x, rng, dt: np.maximum(x, 0),
    "sigmoid": lambda ly, x, rng, dt: 1 / (1 + np.exp(-x)),
    "tanh": lambda ly, x, rng, dt: np.tanh(x),
    "batchnorm": lambda ly, x, rng, dt: _batchnorm(x),
    "dropout": lambda ly, x, rng, dt: x,
    "identity": lambda ly, x, rng, dt: x,
}


def run_plan(plan: Plan, *, seed: int = 0, batch: int | None = None, dtype=np.float32) -> list[LayerRun]:
    """Execute the plan on random input and random weights; return each layer's output shape and time."""
    rng = np.random.default_rng(seed)
    shape = plan.input_shape if batch is None else (batch, *plan.input_shape[1:])
    values = {"input": rng.standard_normal(shape).astype(dtype)}
    runs = []
    for layer in plan.layers:
        x = values[layer.inputs[0]]
        start = time.perf_counter()
        y = LAYERS[layer.op](layer, x, rng, dtype)
        runs.append(LayerRun(layer.name, layer.op, tuple(y.shape), time.perf_counter() - start))
        values[layer.name] = y
    return runs


@dataclass(frozen=True)
class Verification:
    ok: bool
    how: str  # what was run, e.g. "NumPy, batch 1, full width"
    mismatches: tuple[str, ...] = ()


def verify_plan(plan: Plan, *, seed: int = 0) -> Verification:
    """Run the plan at batch 1 and compare every layer's shape with the plan's."""
    runs = run_plan(plan, seed=seed, batch=1)
    mismatches = []
    for layer, run in zip(plan.layers, runs):
        planned = (1, *layer.output_shape[1:])
        if run.shape != planned:
            mismatches.append(f"{layer.name}: planned {list(planned)}, executed {list(run.shape)}")
    return Verification(not mismatches, "executed in NumPy at batch 1, full width", tuple(mismatches))
