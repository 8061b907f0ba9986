"""One handler per aten op (the overload packet's name, in-place variants included): what it becomes in
planner's terms. Registered in `torch_graph.HANDLERS`, read by `torch_graph._Reader`."""

from __future__ import annotations

import re
from typing import Any

from planner.importer.nodes import RESHAPE, per_axis, symmetric
from planner.importer.torch_graph import (
    HANDLERS,
    Handler,
    _first,
    _Mapped,
    _Reader,
    handles,
)


def _family(fx: Any) -> str:
    """The op's name without its rank: `reflection_pad2d` -> `reflection_pad`."""
    return re.sub(r"[123]d$", "", fx.target._opname)


def _rank(r: _Reader, fx: Any) -> int:
    return len(r.shape(_first(fx))) - 2


@handles(
    "conv1d",
    "conv2d",
    "conv3d",
    "convolution",
    "_convolution",
    "conv_transpose1d",
    "conv_transpose2d",
    "conv_transpose3d",
)
def _conv(r: _Reader, fx: Any, a: dict[str, Any]) -> _Mapped:
    weight = r.shape(a["weight"])
    rank = len(weight) - 2
    kernel = weight[2:]
    transposed = bool(a.get("transposed", fx.target._opname.startswith("conv_transpose")))
    stride, dilation = per_axis(a.get("stride") or 1, rank), per_axis(a.get("dilation") or 1, rank)
    groups = int(a.get("groups") or 1)
    params: dict[str, Any] = {
        "out_channels": weight[1] * groups if transposed else weight[0],
        "kernel": kernel,
        "stride": stride,
    }
    padding = a.get("padding") or 0
    if isinstance(padding, str):  # conv2d.padding: "same" or "valid"
        totals = [d * (k - 1) if padding == "same" else 0 for k, d in zip(kernel, dilation, strict=True)]
        params["padding"] = tuple((t // 2, t - t // 2) for t in totals)
        params["padding_mode"] = padding
    else:
        params["padding"] = symmetric(per_axis(padding, rank))
    params["dilation"] = dilation
    if transposed:
        params["output_padding"] = per_axis(a.get("output_padding") or 0, rank)
    params["groups"] = groups
    params["bias"] = a.get("bias") is not None
    return _Mapped("conv_transpose" if transposed else "conv", params)


def _pool_window(r: _Reader, fx: Any, a: dict[str, Any]) -> dict[str, Any]:
    rank = _rank(r, fx)
    kernel = per_axis(a["kernel_size"], rank)
    stride = per_axis(a.get("stride") or a["kernel_size"], rank)
    return {"kernel": kernel, "stride": stride, "padding": symmetric(per_axis(a.get("padding") or 0, rank))}


@handles(
    "max_pool1d",
    "max_pool2d",
    "max_pool3d",
    "max_pool1d_with_indices",
    "max_pool2d_with_indices",
    "max_pool3d_with_indices",
)
def _max_pool(r: _Reader, fx: Any, a: dict[str, Any]) -> _Mapped:
    params = _pool_window(r, fx, a)
    params["dilation"] = per_axis(a.get("dilation") or 1, _rank(r, fx))
    params["ceil_mode"] = bool(a.get("ceil_mode"))
    return _Mapped("maxpool", params)


@handles("avg_pool1d", "avg_pool2d", "avg_pool3d")
def _avg_pool(r: _Reader, fx: Any, a: dict[str, Any]) -> _Mapped:
    if a.get("divisor_override") is not None:
        raise r.cannot("average pooling with divisor_override: planner's avgpool divides by the window")
    params = _pool_window(r, fx, a)
    params["ceil_mode"] = bool(a.get("ceil_mode"))
    params["count_include_pad"] = bool(a.get("count_include_pad", True))
    return _Mapped("avgpool", params)


@handles(
    "adaptive_avg_pool1d", "adaptive_avg_pool2d", "adaptive_avg_pool3d", "_adaptive_avg_pool2d", "_adaptive_avg_pool3d"
)
def _adaptive_avg_pool(r: _Reader, fx: Any, a: dict[str, Any]) -> _Mapped:
    return _Mapped("adaptive_avgpool", {"output_size": r.shape(fx)[2:]})


@handles("adaptive_max_pool1d", "adaptive_max_pool2d", "adaptive_max_pool3d")
def _adaptive_max_pool(r: _Reader, fx: Any, a: dict[str, Any]) -> _Mapped:
    return _Mapped("adaptive_maxpool", {"output_size": r.shape(fx)[2:]})


def _same(op: str) -> Handler:
    def handler(r: _Reader, fx: Any, a: dict[str, Any]) -> _Mapped:
        return _Mapped(op, {})

    return handler


for _name in ("relu", "sigmoid", "tanh", "silu", "hardswish", "hardsigmoid", "relu6"):
    HANDLERS[_name] = _same(_name)
for _name in (
    "batch_norm",
    "_native_batch_norm_legit_no_training",
    "_native_batch_norm_legit",
    "_native_batch_norm_legit_functional",
    "native_batch_norm",
):
    HANDLERS[_name] = _same("batchnorm")


@handles("gelu")
def _gelu(r: _Reader, fx: Any, a: dict[str, Any]) -> _Mapped:
    if a.get("approximate", "none") != "none":
        raise r.cannot(f"gelu with approximate='{a['approximate']}': planner's gelu is the exact one")
    return _Mapped("gelu", {})


@handles("leaky_relu")
def _leaky_relu(r: _Reader, fx: Any, a: dict[str, Any]) -> _Mapped:
    return _Mapped("leaky_relu", {"negative_slope": float(a.get("negative_slope", 0.01))})


@handles("hardtanh")
def _hardtanh(r: _Reader, fx: Any, a: dict[str, Any]) -> _Mapped:
    if (float(a.get("min_val", -1.0)), float(a.get("max_val", 1.0))) != (0.0, 6.0):
        raise r.cannot("hardtanh other than relu6 (0, 6): planner has no op for it")
    return _Mapped("relu6", {})


@handles("elu")
def _elu(r: _Reader, fx: Any, a: dict[str, Any]) -> _Mapped:
    if float(a.get("scale", 1)) != 1 or float(a.get("input_scale", 1)) != 1:
        raise r.cannot("elu with a scale (SELU-like): planner's elu has only alpha")
    return _Mapped("elu", {"alpha": float(a.get("alpha", 1.0))})


@handles("softmax", "_softmax")
def _softmax(r: _Reader, fx: Any, a: dict[str, Any]) -> _Mapped:
    return _Mapped("softmax", {"dim": int(a["dim"]) % len(r.shape(fx))})


@handles("layer_norm", "native_layer_norm")
def _layer_norm(r: _Reader, fx: Any, a: dict[str, Any]) -> _Mapped:
    return _Mapped("layernorm", {"normalized_shape": [int(n) for n in a["normalized_shape"]]})


@handles("group_norm", "native_group_norm")
def _group_norm(r: _Reader, fx: Any, a: dict[str, Any]) -> _Mapped:
    groups = a["num_groups"] if "num_groups" in a else a["group"]
    return _Mapped("groupnorm", {"num_groups": int(groups)})


@handles("instance_norm")
def _instance_norm(r: _Reader, fx: Any, a: dict[str, Any]) -> _Mapped:
    return _Mapped("instancenorm", {"affine": a.get("weight") is not None})


@handles("dropout", "feature_dropout", "alpha_dropout", "feature_alpha_dropout", "native_dropout")
def _dropout(r: _Reader, fx: Any, a: dict[str, Any]) -> _Mapped:
    return _Mapped("dropout", {"p": float(a.get("p", 0.5))})


def _join(op: str) -> Handler:
    def handler(r: _Reader, fx: Any, a: dict[str, Any]) -> _Mapped:
        other = a.get("other")
        if not r.is_data(other):
            raise r.cannot(f"{op} with a constant: planner's {op} joins two layers, and has no op for a constant")
        if float(a.get("alpha", 1)) != 1:
            raise r.cannot(f"{op} with alpha={a['alpha']}: planner has no op for it")
        return _Mapped(op, {}, (r.ref(a["self"]), r.ref(other)))

    return handler


HANDLERS["add"] = _join("add")
HANDLERS["mul"] = _join("mul")


@handles("cat", "concat", "concatenate")
def _cat(r: _Reader, fx: Any, a: dict[str, Any]) -> _Mapped | None:
    tensors = list(a["tensors"])
    rank = len(r.shape(fx))
    if int(a.get("dim") or 0) % rank != 1:
        raise r.cannot(f"concatenation along axis {int(a.get('dim') or 0) % rank}: planner's concat joins channels")
    if len(tensors) == 1:
        return None
    return _Mapped("concat", {}, tuple(r.ref(t) for t in tensors))


@handles("linear")
def _linear(r: _Reader, fx: Any, a: dict[str, Any]) -> _Mapped:
    if len(r.shape(a["input"])) != 2:
        raise r.cannot("linear on an input of rank other than 2: planner's linear reads [N, features]")
    out_features, in_features = r.shape(a["weight"])
    return _Mapped(
        "linear", {"out_features": out_features, "in_features": in_features, "bias": a.get("bias") is not None}
    )


@handles("view", "reshape", "_unsafe_view", "flatten", "unflatten", "squeeze", "unsqueeze", "view_as", "reshape_as")
def _reshape(r: _Reader, fx: Any, a: dict[str, Any]) -> _Mapped:
    return _Mapped(RESHAPE, {})


@handles("permute", "transpose", "t", "movedim", "swapaxes", "swapdims", "numpy_T")
def _transpose(r: _Reader, fx: Any, a: dict[str, Any]) -> _Mapped:
    return _Mapped(RESHAPE, {}, moves=True)


@handles("clone", "contiguous", "detach", "alias", "lift_fresh_copy", "_to_copy", "to", "type_as", "identity")
def _alias(r: _Reader, fx: Any, a: dict[str, Any]) -> None:
    return None


_UPSAMPLE_MODES = {
    "upsample_nearest": "nearest",
    "upsample_linear": "linear",
    "upsample_bilinear": "bilinear",
    "upsample_bicubic": "bicubic",
    "upsample_trilinear": "trilinear",
}


@handles(
    "upsample_nearest1d",
    "upsample_nearest2d",
    "upsample_nearest3d",
    "upsample_linear1d",
    "upsample_bilinear2d",
    "upsample_trilinear3d",
    "upsample_bicubic2d",
)
def _upsample(r: _Reader, fx: Any, a: dict[str, Any]) -> _Mapped:
    mode = _UPSAMPLE_MODES[_family(fx)]
    scales = a.get("scale_factors")
    if scales is None:
        scales = [a[k] for k in ("scales_d", "scales_h", "scales_w") if a.get(k) is not None] or None
    out = r.shape(fx)[2:]
    params: dict[str, Any] = {}
    if a.get("output_size") is None and scales:
        factors = [int(s) if float(s).is_integer() else float(s) for s in scales]
        params["scale_factor"] = factors[0] if len(set(factors)) == 1 else factors
    else:
        params["size"] = out
    if mode != "nearest":
        params["mode"] = mode
        if a.get("align_corners"):
            params["align_corners"] = True
    return _Mapped("upsample", params)


_PAD_MODES = {"reflection_pad": "reflect", "replication_pad": "replicate"}


@handles(
    "pad",
    "constant_pad_nd",
    "reflection_pad1d",
    "reflection_pad2d",
    "reflection_pad3d",
    "replication_pad1d",
    "replication_pad2d",
    "replication_pad3d",
    "_pad_circular",
)
def _pad(r: _Reader, fx: Any, a: dict[str, Any]) -> _Mapped:
    opname = fx.target._opname
    flat = [int(n) for n in (a["pad"] if "pad" in a else a["padding"])]
    mode = a.get("mode") or _PAD_MODES.get(_family(fx), "constant")
    mode = "circular" if opname == "_pad_circular" else mode
    rank = _rank(r, fx)
    pairs = [(flat[2 * n], flat[2 * n + 1]) for n in range(len(flat) // 2)]  # last axis first
    if any(p != (0, 0) for p in pairs[rank:]):
        raise r.cannot("padding of the batch or channel axis: planner's pad pads spatial axes")
    if any(n < 0 for pair in pairs for n in pair):
        raise r.cannot("negative padding (a crop): planner's pad only pads")
    pairs = (pairs[:rank] + [(0, 0)] * rank)[:rank]
    params: dict[str, Any] = {"padding": tuple(reversed(pairs))}
    if mode != "constant":
        params["mode"] = mode
    value = a.get("value")
    if mode == "constant" and value:
        params["value"] = float(value)
    return _Mapped("pad", params)


@handles("mean")
def _mean(r: _Reader, fx: Any, a: dict[str, Any]) -> _Mapped:
    rank = len(r.shape(_first(fx)))
    dims = a.get("dim")
    axes = sorted({int(d) % rank for d in dims}) if dims else list(range(rank))
    return _Mapped("mean", {"axes": axes, "keepdim": bool(a.get("keepdim"))})


@handles("slice", "narrow")
def _slice(r: _Reader, fx: Any, a: dict[str, Any]) -> _Mapped | None:
    shape = r.shape(_first(fx))
    axis = int(a.get("dim") or 0) % len(shape)
    size = shape[axis]
    if fx.target._opname == "narrow":
        start = int(a["start"]) % size if size else 0
        end, step = start + int(a["length"]), 1
    else:
        step = int(a.get("step") or 1)
        start = 0 if a.get("start") is None else int(a["start"])
        end = size if a.get("end") is None else int(a["end"])
        start = max(0, min(size, start + size if start < 0 else start))
        end = max(0, min(size, end + size if end < 0 else end))
    if (start, end, step) == (0, size, 1):
        return None  # the whole axis: an alias
    return _Mapped("slice", {"axis": axis, "start": start, "end": None if end == size else end, "step": step})


@handles("pixel_shuffle")
def _pixel_shuffle(r: _Reader, fx: Any, a: dict[str, Any]) -> _Mapped:
    return _Mapped("pixel_shuffle", {"upscale_factor": int(a["upscale_factor"])})


@handles("pixel_unshuffle")
def _pixel_unshuffle(r: _Reader, fx: Any, a: dict[str, Any]) -> _Mapped:
    return _Mapped("pixel_unshuffle", {"downscale_factor": int(a["downscale_factor"])})
