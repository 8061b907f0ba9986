"""Run a plan in NumPy, layer by layer, and check every layer's shape against the plan."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from planner.deadline import Deadline
from planner.errors import ExecutionError
from planner.executor import kernels as K
from planner.executor import pointwise as P
from planner.executor import resize as R
from planner.plan import LayerPlan, Plan


@dataclass(frozen=True)
class LayerRun:
    name: str
    op: str
    shape: tuple[int, ...]
    seconds: float


def _weights(rng: np.random.Generator, shape: tuple[int, ...], dtype) -> np.ndarray:
    """Random weights of this shape, made once per shape and dtype and then shared (read-only).

    Verification checks shapes, which no weight value changes, so every plan of a `--all` reuses
    the weights of the layer shapes it shares with the others; the executor's values are tested
    against PyTorch with weights the tests make themselves. Drawn in the dtype itself (no float64
    copy) from a generator seeded by the shape, so a run does not depend on which plans came first."""
    key = (tuple(shape), np.dtype(dtype).str)
    weights = _WEIGHTS.get(key)
    if weights is None:
        fan_in = max(1, int(np.prod(shape[1:])))
        generator = np.random.default_rng([len(shape), *shape])
        float_type = dtype if np.dtype(dtype) in (np.float32, np.float64) else np.float32
        weights = (generator.standard_normal(shape, dtype=float_type) / np.sqrt(fan_in)).astype(dtype, copy=False)
        weights.setflags(write=False)
        if weights.nbytes <= WEIGHT_CACHE_BYTES // 4:
            while _WEIGHTS and sum(w.nbytes for w in _WEIGHTS.values()) + weights.nbytes > WEIGHT_CACHE_BYTES:
                _WEIGHTS.pop(next(iter(_WEIGHTS)))  # the oldest first
            _WEIGHTS[key] = weights
    return weights


WEIGHT_CACHE_BYTES = 256 * 2**20
_WEIGHTS: dict[tuple, np.ndarray] = {}


def _conv_weights(layer: LayerPlan, x: np.ndarray, rng, dtype, transposed: bool) -> tuple[np.ndarray, np.ndarray]:
    p = layer.params
    g, c_in, c_out = p["groups"], x.shape[1], p["out_channels"]
    if c_in % g or c_out % g:
        raise ExecutionError(f"{layer.name}: groups {g} do not divide channels {c_in} -> {c_out}")
    w_shape = (c_in, c_out // g, *p["kernel"]) if transposed else (c_out, c_in // g, *p["kernel"])
    return _weights(rng, w_shape, dtype), _weights(rng, (c_out, 1), dtype)[:, 0]


def _conv(layer: LayerPlan, xs: list[np.ndarray], rng, dtype) -> np.ndarray:
    p = layer.params
    w, b = _conv_weights(layer, xs[0], rng, dtype, transposed=False)
    return K.conv(xs[0], w, b, stride=p["stride"], padding=p["padding"], dilation=p["dilation"], groups=p["groups"])


def _conv_transpose(layer: LayerPlan, xs: list[np.ndarray], rng, dtype) -> np.ndarray:
    p = layer.params
    w, b = _conv_weights(layer, xs[0], rng, dtype, transposed=True)
    return K.conv_transpose(
        xs[0],
        w,
        b,
        stride=p["stride"],
        padding=p["padding"],
        dilation=p["dilation"],
        groups=p["groups"],
        output_padding=p["output_padding"],
    )


def _linear(layer: LayerPlan, xs: list[np.ndarray], rng, dtype) -> np.ndarray:
    x, out = xs[0], layer.params["out_features"]
    return P.linear(x, _weights(rng, (out, x.shape[1]), dtype), _weights(rng, (out, 1), dtype)[:, 0])


def _max_pool(layer: LayerPlan, xs: list[np.ndarray], rng, dtype) -> np.ndarray:
    p = layer.params
    return K.max_pool(
        xs[0],
        kernel=p["kernel"],
        stride=p["stride"],
        padding=p["padding"],
        dilation=p["dilation"],
        ceil_mode=p["ceil_mode"],
    )


def _avg_pool(layer: LayerPlan, xs: list[np.ndarray], rng, dtype) -> np.ndarray:
    p = layer.params
    return K.avg_pool(
        xs[0],
        kernel=p["kernel"],
        stride=p["stride"],
        padding=p["padding"],
        ceil_mode=p["ceil_mode"],
        count_include_pad=p["count_include_pad"],
    )


def _crop(layer: LayerPlan, xs: list[np.ndarray], rng, dtype) -> np.ndarray:
    x = xs[0]
    window = tuple(slice(b, b + n) for b, n in zip(layer.params["offset"], layer.params["size"], strict=True))
    y = x[(slice(None), slice(None), *window)]
    if y.shape[2:] != tuple(layer.params["size"]):
        raise ExecutionError(f"{layer.name}: cannot crop {list(x.shape[2:])} to {list(layer.params['size'])}")
    return y


def _concat(layer: LayerPlan, xs: list[np.ndarray], rng, dtype) -> np.ndarray:
    try:
        return np.concatenate(xs, axis=1)
    except ValueError as e:
        raise ExecutionError(f"{layer.name}: {e}") from None


def _broadcast(layer: LayerPlan, xs: list[np.ndarray], ufunc) -> np.ndarray:
    try:
        return P.broadcast(xs, ufunc)
    except ExecutionError as e:
        raise ExecutionError(f"{layer.name}: {e}") from None


def _slice(layer: LayerPlan, xs: list[np.ndarray], rng, dtype) -> np.ndarray:
    """The slice as written (NumPy reads its bounds as Python does): the plan's bounds are not used."""
    start, end, step = layer.attrs["written"]
    return xs[0][(slice(None),) * layer.params["axis"] + (slice(start, end, step),)]


def _batchnorm(x: np.ndarray) -> np.ndarray:
    axes = (0, *range(2, x.ndim))
    return (x - x.mean(axis=axes, keepdims=True)) / np.sqrt(x.var(axis=axes, keepdims=True) + 1e-5)


def _split(layer: LayerPlan, xs: list[np.ndarray], rng, dtype) -> list[np.ndarray]:
    """torch.split or torch.chunk, cut from the sizes as written (the executor's own reading of them)."""
    x, axis = xs[0], layer.params["axis"]
    sizes, chunks = layer.attrs["written"]
    size = x.shape[axis]
    if chunks is not None:
        step = -(-size // chunks)
        sizes = [min(step, size - start) for start in range(0, size, step)]
    if sum(sizes) != size or len(sizes) != (chunks or len(sizes)):
        raise ExecutionError(f"{layer.name}: cannot cut {size} into {sizes if chunks is None else f'{chunks} chunks'}")
    return np.split(x, np.cumsum(sizes)[:-1].tolist(), axis=axis)


Layer = Callable[[LayerPlan, list[np.ndarray], np.random.Generator, type], np.ndarray | list[np.ndarray]]
LAYERS: dict[str, Layer] = {  # the kernel of every op, one line each
    "conv": _conv,
    "conv_transpose": _conv_transpose,
    "maxpool": _max_pool,
    "avgpool": _avg_pool,
    "adaptive_avgpool": lambda ly, xs, rng, dt: R.adaptive_avg_pool(xs[0], output_size=ly.params["output_size"]),
    "adaptive_maxpool": lambda ly, xs, rng, dt: R.adaptive_max_pool(xs[0], output_size=ly.params["output_size"]),
    "upsample": lambda ly, xs, rng, dt: R.interpolate(
        xs[0],
        mode=ly.params.get("mode", "nearest"),
        scale_factor=ly.params.get("scale_factor"),
        size=ly.params.get("size"),
        align_corners=ly.params.get("align_corners", False),
    ),
    "pad": lambda ly, xs, rng, dt: R.pad(
        xs[0], padding=ly.params["padding"], value=ly.params.get("value", 0.0), mode=ly.params.get("mode", "constant")
    ),
    "crop": _crop,
    "concat": _concat,
    "add": lambda ly, xs, rng, dt: _broadcast(ly, xs, np.add),
    "mul": lambda ly, xs, rng, dt: _broadcast(ly, xs, np.multiply),
    "slice": _slice,
    "split": _split,
    "mean": lambda ly, xs, rng, dt: xs[0].mean(axis=tuple(ly.params["axes"]), keepdims=ly.params["keepdim"]),
    "permute": lambda ly, xs, rng, dt: np.ascontiguousarray(xs[0].transpose(ly.params["dims"])),
    "reshape": lambda ly, xs, rng, dt: xs[0].reshape(*xs[0].shape[:2], *ly.attrs["written"]),
    "pixel_shuffle": lambda ly, xs, rng, dt: R.pixel_shuffle(xs[0], ly.params["upscale_factor"]),
    "pixel_unshuffle": lambda ly, xs, rng, dt: R.pixel_unshuffle(xs[0], ly.params["downscale_factor"]),
    "flatten": lambda ly, xs, rng, dt: xs[0].reshape(xs[0].shape[0], -1),
    "linear": _linear,
    "relu": lambda ly, xs, rng, dt: np.maximum(xs[0], 0),
    "silu": lambda ly, xs, rng, dt: xs[0] / (1 + np.exp(-xs[0])),
    "sigmoid": lambda ly, xs, rng, dt: 1 / (1 + np.exp(-xs[0])),
    "tanh": lambda ly, xs, rng, dt: np.tanh(xs[0]),
    "gelu": lambda ly, xs, rng, dt: P.gelu(xs[0], ly.attrs["approximate"]),
    "hardswish": lambda ly, xs, rng, dt: xs[0] * P.hardsigmoid(xs[0]),
    "hardsigmoid": lambda ly, xs, rng, dt: P.hardsigmoid(xs[0]),
    "relu6": lambda ly, xs, rng, dt: np.clip(xs[0], 0, 6),
    "leaky_relu": lambda ly, xs, rng, dt: np.where(xs[0] > 0, xs[0], xs[0] * dt(ly.attrs["negative_slope"])),
    "elu": lambda ly, xs, rng, dt: P.elu(xs[0], ly.attrs["alpha"]),
    "softmax": lambda ly, xs, rng, dt: P.softmax(xs[0], ly.params["dim"]),
    "batchnorm": lambda ly, xs, rng, dt: _batchnorm(xs[0]),
    "layernorm": lambda ly, xs, rng, dt: P.layer_norm(xs[0], ly.params["normalized_shape"], ly.attrs["eps"]),
    "groupnorm": lambda ly, xs, rng, dt: P.group_norm(xs[0], ly.params["num_groups"], ly.attrs["eps"]),
    "instancenorm": lambda ly, xs, rng, dt: P.instance_norm(xs[0], ly.attrs["eps"]),
    "dropout": lambda ly, xs, rng, dt: xs[0],
    "identity": lambda ly, xs, rng, dt: xs[0],
}


def run_plan(
    plan: Plan, *, seed: int = 0, batch: int | None = None, dtype=np.float32, deadline: Deadline | None = None
) -> list[LayerRun]:
    """Execute the plan on random input and random weights; return each layer's output shape and time.

    With a `deadline`, it is checked between layers (GaveUp once it has passed)."""
    if not isinstance(plan, Plan):
        raise TypeError(f"run_plan() takes a Plan (one of SolveResult.plans), not {type(plan).__name__}")
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, not {seed!r}")
    rng = np.random.default_rng(seed)
    shape = plan.input_shape if batch is None else (batch, *plan.input_shape[1:])
    values = {"input": rng.standard_normal(shape).astype(dtype)}
    last_read = {name: i for i, layer in enumerate(plan.layers) for name in layer.inputs}
    runs = []
    for index, layer in enumerate(plan.layers):
        if deadline is not None:
            deadline.ensure(f"timeout while executing {layer.name}")
        xs = [values[name] for name in layer.inputs]
        for name in set(layer.inputs):
            if last_read[name] == index:
                del values[name]  # memory stays that of the live tensors, not of the whole network
        start = time.perf_counter()
        with np.errstate(all="ignore"):  # a max-pool window wholly in padding gives -inf, as in PyTorch
            y = LAYERS[layer.op](layer, xs, rng, dtype)
        if isinstance(y, list):  # a split: its pieces, read as `name[i]`, and the first as the layer's output
            values.update({f"{layer.name}[{i}]": piece for i, piece in enumerate(y)})
            y = y[0]
        runs.append(LayerRun(layer.name, layer.op, tuple(y.shape), time.perf_counter() - start))
        values[layer.name] = y
    return runs
