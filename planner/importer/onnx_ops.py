"""One handler per ONNX op: what it becomes in planner's terms. Registered in `onnx_graph.HANDLERS`, read
by `onnx_graph._Reader`."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np
import onnx

from planner import arithmetic as ar
from planner.importer.nodes import RESHAPE, per_axis
from planner.importer.onnx_graph import (
    HANDLERS,
    Handler,
    _Mapped,
    _Reader,
    handles,
)


def _input(node: onnx.NodeProto, n: int) -> str:
    return node.input[n] if len(node.input) > n else ""


def _auto_pads(
    r: _Reader, node: onnx.NodeProto, a: dict[str, Any], kernel: tuple[int, ...], stride, dilation, transposed=False
) -> tuple[tuple[tuple[int, int], ...], str | None]:
    """Per-axis (begin, end) padding and the spec's mode for `auto_pad`."""
    rank = len(kernel)
    auto = a.get("auto_pad", "NOTSET")
    if auto in ("NOTSET", ""):
        pads = [int(p) for p in a.get("pads", [0] * 2 * rank)]
        return tuple((pads[n], pads[n + rank]) for n in range(rank)), None
    if auto == "VALID":
        return ((0, 0),) * rank, "valid"
    spatial = r.shape(node.input[0])[2:]
    pairs = []
    for i, k, s, d in zip(spatial, kernel, stride, dilation, strict=True):
        if transposed:
            total = s * (i - 1) + (k - 1) * d + 1 - i * s
        else:
            total = max((math.ceil(i / s) - 1) * s + (k - 1) * d + 1 - i, 0)
        small, large = total // 2, total - total // 2
        pairs.append((small, large) if auto == "SAME_UPPER" else (large, small))
    return tuple(pairs), "same" if auto == "SAME_UPPER" else "same_lower"


@handles("Conv", "ConvTranspose")
def _conv(r: _Reader, node: onnx.NodeProto, a: dict[str, Any]) -> _Mapped:
    transposed = node.op_type == "ConvTranspose"
    weight = r.shape(node.input[1])
    rank = len(weight) - 2
    kernel = tuple(a.get("kernel_shape", weight[2:]))
    stride = per_axis(a.get("strides", 1), rank)
    dilation = per_axis(a.get("dilations", 1), rank)
    groups = int(a.get("group", 1))
    if transposed and a.get("output_shape"):
        raise r.cannot("ConvTranspose with output_shape: planner reads its pads and output_padding")
    pads, mode = _auto_pads(r, node, a, kernel, stride, dilation, transposed)
    params: dict[str, Any] = {
        "out_channels": weight[1] * groups if transposed else weight[0],
        "kernel": kernel,
        "stride": stride,
        "padding": pads,
    }
    if mode is not None:
        params["padding_mode"] = mode
    params["dilation"] = dilation
    if transposed:
        params["output_padding"] = per_axis(a.get("output_padding", 0), rank)
    params["groups"] = groups
    params["bias"] = bool(_input(node, 2))
    return _Mapped("conv_transpose" if transposed else "conv", params)


@handles("MaxPool", "AveragePool")
def _pool(r: _Reader, node: onnx.NodeProto, a: dict[str, Any]) -> _Mapped:
    if len(node.output) > 1 and node.output[1] and r.readers.get(node.output[1]):
        raise r.cannot("MaxPool's indices are read: planner has no op for them")
    kernel = tuple(int(k) for k in a["kernel_shape"])
    rank = len(kernel)
    stride = per_axis(a.get("strides", 1), rank)  # ONNX pools step 1 unless told
    dilation = per_axis(a.get("dilations", 1), rank)
    pads, mode = _auto_pads(r, node, a, kernel, stride, dilation)
    params: dict[str, Any] = {"kernel": kernel, "stride": stride, "padding": pads}
    if mode is not None:
        params["padding_mode"] = mode
    if node.op_type == "MaxPool":
        params["dilation"] = dilation
        params["ceil_mode"] = bool(a.get("ceil_mode", 0))
        return _Mapped("maxpool", params)
    if any(d != 1 for d in dilation):
        raise r.cannot("AveragePool with dilations: planner's avgpool has none")
    params["ceil_mode"] = bool(a.get("ceil_mode", 0))
    params["count_include_pad"] = bool(a.get("count_include_pad", 0))
    return _Mapped("avgpool", params)


@handles("GlobalAveragePool", "GlobalMaxPool")
def _global_pool(r: _Reader, node: onnx.NodeProto, a: dict[str, Any]) -> _Mapped:
    op = "adaptive_avgpool" if node.op_type == "GlobalAveragePool" else "adaptive_maxpool"
    return _Mapped(op, {"output_size": r.shape(node.output[0])[2:]})


def _same(op: str) -> Handler:
    def handler(r: _Reader, node: onnx.NodeProto, a: dict[str, Any]) -> _Mapped:
        return _Mapped(op, {})

    return handler


for _op, _planner_op in (
    ("Relu", "relu"),
    ("Sigmoid", "sigmoid"),
    ("Tanh", "tanh"),
    ("HardSwish", "hardswish"),
    ("BatchNormalization", "batchnorm"),
):
    HANDLERS[_op] = _same(_planner_op)


@handles("Identity")
def _identity(r: _Reader, node: onnx.NodeProto, a: dict[str, Any]) -> None:
    return None


@handles("Dropout")
def _dropout(r: _Reader, node: onnx.NodeProto, a: dict[str, Any]) -> _Mapped:
    ratio = a.get("ratio", 0.5)
    if _input(node, 1):
        ratio = float(r.const(node.input[1], "ratio"))
    return _Mapped("dropout", {"p": float(str(np.float32(ratio)))})


@handles("LeakyRelu")
def _leaky_relu(r: _Reader, node: onnx.NodeProto, a: dict[str, Any]) -> _Mapped:
    return _Mapped("leaky_relu", {"negative_slope": a.get("alpha", 0.01)})


@handles("Elu")
def _elu(r: _Reader, node: onnx.NodeProto, a: dict[str, Any]) -> _Mapped:
    return _Mapped("elu", {"alpha": a.get("alpha", 1.0)})


@handles("HardSigmoid")
def _hard_sigmoid(r: _Reader, node: onnx.NodeProto, a: dict[str, Any]) -> _Mapped:
    if abs(a.get("alpha", 0.2) - 1 / 6) > 1e-6 or a.get("beta", 0.5) != 0.5:
        raise r.cannot("HardSigmoid other than PyTorch's (alpha 1/6, beta 0.5): planner has no op for it")
    return _Mapped("hardsigmoid", {})


@handles("Gelu")
def _gelu(r: _Reader, node: onnx.NodeProto, a: dict[str, Any]) -> _Mapped:
    if a.get("approximate", "none") != "none":
        raise r.cannot(f"Gelu with approximate='{a['approximate']}': planner's gelu is the exact one")
    return _Mapped("gelu", {})


@handles("Clip")
def _clip(r: _Reader, node: onnx.NodeProto, a: dict[str, Any]) -> _Mapped:
    low, high = a.get("min"), a.get("max")
    if _input(node, 1):
        low = float(r.const(node.input[1], "bounds"))
    if _input(node, 2):
        high = float(r.const(node.input[2], "bounds"))
    if low == 0 and high == 6:
        return _Mapped("relu6", {})
    if low == 0 and (high is None or high == math.inf):
        return _Mapped("relu", {})
    raise r.cannot(f"Clip to [{low}, {high}]: planner has relu (0, inf) and relu6 (0, 6) only")


@handles("Softmax")
def _softmax(r: _Reader, node: onnx.NodeProto, a: dict[str, Any]) -> _Mapped:
    rank = len(r.shape(node.input[0]))
    axis = int(a.get("axis", -1 if r.opset >= 13 else 1)) % rank
    if r.opset < 13 and axis != rank - 1:
        raise r.cannot("Softmax before opset 13 over more than the last axis: planner's softmax takes one axis")
    return _Mapped("softmax", {"dim": axis})


@handles("LayerNormalization")
def _layer_norm(r: _Reader, node: onnx.NodeProto, a: dict[str, Any]) -> _Mapped:
    shape = r.shape(node.input[0])
    return _Mapped("layernorm", {"normalized_shape": list(shape[int(a.get("axis", -1)) % len(shape) :])})


@handles("GroupNormalization")
def _group_norm(r: _Reader, node: onnx.NodeProto, a: dict[str, Any]) -> _Mapped:
    return _Mapped("groupnorm", {"num_groups": int(a["num_groups"])})


@handles("InstanceNormalization")
def _instance_norm(r: _Reader, node: onnx.NodeProto, a: dict[str, Any]) -> _Mapped:
    scale, bias = r.consts.get(node.input[1]), r.consts.get(node.input[2])
    plain = scale is not None and bias is not None and bool(np.all(scale == 1) and np.all(bias == 0))
    group = _group_norm_export(r, node) if plain else None
    if group is not None:
        return group
    return _Mapped("instancenorm", {"affine": not plain})


def _group_norm_export(r: _Reader, node: onnx.NodeProto) -> _Mapped | None:
    """torch's export of GroupNorm (opset < 18 has no op for it): Reshape [N, G, -1] ->
    InstanceNormalization -> Reshape back -> Mul and Add by per-channel constants; one groupnorm layer."""
    reshape = r.producer.get(node.input[0])
    if reshape is None or reshape.op_type != "Reshape" or not r.is_data(reshape.input[0]):
        return None
    shape, grouped = r.shape(reshape.input[0]), r.shape(node.input[0])
    if len(grouped) != 3 or len(shape) < 3 or grouped[0] != shape[0] or shape[1] % grouped[1]:
        return None
    chain = [node]
    back = r.only_reader(node.output[0])
    if back is None or back.op_type != "Reshape" or r.shape(back.output[0]) != shape:
        return None
    chain.append(back)
    for op in ("Mul", "Add"):  # the affine part, when there is one
        follower = r.only_reader(chain[-1].output[0])
        if follower is None or follower.op_type != op or not _per_channel(r, follower, chain[-1].output[0], shape[1]):
            break
        chain.append(follower)
    for fused in chain[1:]:
        r.fused[fused.output[0]] = chain[-1].output[0]
    r.fused_ids[node.output[0]] = chain[-1].output[0]
    ops = " -> ".join(["Reshape", *(n.op_type for n in chain)])
    return _Mapped("groupnorm", {"num_groups": grouped[1]}, (reshape.input[0],), source_op=ops)


def _per_channel(r: _Reader, node: onnx.NodeProto, data: str, channels: int) -> bool:
    other = [name for name in node.input if name != data]
    return len(other) == 1 and other[0] in r.consts and np.size(r.consts[other[0]]) == channels


@handles("Add", "Mul", "Sum")
def _join(r: _Reader, node: onnx.NodeProto, a: dict[str, Any]) -> _Mapped | None:
    op = "mul" if node.op_type == "Mul" else "add"
    data = [name for name in node.input if r.is_data(name)]
    constants = [name for name in node.input if name and not r.is_data(name)]
    if len(data) == 1 and len(constants) == 1 and op == "add" and _bias_of_matmul(r, data[0], constants[0]):
        return None  # MatMul + Add: the bias of the linear layer it already is
    if constants:
        raise r.cannot(f"{node.op_type} with a constant: planner's {op} joins layers, and has no op for a constant")
    if len(data) == 1:
        return None
    return _Mapped(op, {}, tuple(data))


def _bias_of_matmul(r: _Reader, tensor: str, constant: str) -> bool:
    """A constant [out_features] added to a MatMul layer read by nothing else becomes that linear's bias."""
    last = r.nodes[-1] if r.nodes else None
    if last is None or last.id != tensor or last.source_op != "MatMul" or r.readers.get(tensor) != 1:
        return False
    bias = r.consts.get(constant)
    if bias is None or np.size(bias) != last.params["out_features"]:
        return False
    r.nodes[-1] = dataclasses.replace(last, params={**last.params, "bias": True}, source_op="MatMul + Add")
    return True


@handles("Concat")
def _concat(r: _Reader, node: onnx.NodeProto, a: dict[str, Any]) -> _Mapped | None:
    rank = len(r.shape(node.output[0]))
    if int(a["axis"]) % rank != 1:
        raise r.cannot(f"concatenation along axis {int(a['axis']) % rank}: planner's concat joins channels")
    if any(name and not r.is_data(name) for name in node.input):
        raise r.cannot("concatenation with a constant: planner's concat joins layers")
    if len(node.input) == 1:
        return None
    return _Mapped("concat", {}, tuple(node.input))


@handles("Gemm")
def _gemm(r: _Reader, node: onnx.NodeProto, a: dict[str, Any]) -> _Mapped:
    if a.get("transA", 0) or a.get("alpha", 1.0) != 1 or (_input(node, 2) and a.get("beta", 1.0) != 1):
        raise r.cannot("Gemm with transA, alpha or beta: planner's linear is x W^T + b")
    weight = r.shape(node.input[1])
    out_features, in_features = weight if a.get("transB", 0) else weight[::-1]
    params = {"out_features": out_features, "in_features": in_features, "bias": bool(_input(node, 2))}
    return _Mapped("linear", params)


@handles("MatMul")
def _matmul(r: _Reader, node: onnx.NodeProto, a: dict[str, Any]) -> _Mapped:
    if not r.is_data(node.input[0]) or r.is_data(node.input[1]) or len(r.shape(node.input[1])) != 2:
        raise r.cannot("planner has an op for a matrix product with constant weights only (linear)")
    if len(r.shape(node.input[0])) != 2:
        raise r.cannot("linear on an input of rank other than 2: planner's linear reads [N, features]")
    in_features, out_features = r.shape(node.input[1])
    return _Mapped("linear", {"out_features": out_features, "in_features": in_features, "bias": False})


@handles("Reshape", "Flatten", "Squeeze", "Unsqueeze")
def _reshape(r: _Reader, node: onnx.NodeProto, a: dict[str, Any]) -> _Mapped:
    return _Mapped(RESHAPE, {})


@handles("Transpose")
def _transpose(r: _Reader, node: onnx.NodeProto, a: dict[str, Any]) -> _Mapped:
    perm = list(a.get("perm", []))
    return _Mapped(RESHAPE, {}, moves=perm != sorted(perm))


@handles("Resize", "Upsample")
def _resize(r: _Reader, node: onnx.NodeProto, a: dict[str, Any]) -> _Mapped:
    shape, out = r.shape(node.input[0]), r.shape(node.output[0])
    rank = len(shape) - 2
    mode = a.get("mode", "nearest")
    linear = {1: "linear", 2: "bilinear", 3: "trilinear"}.get(rank)
    modes = {"nearest": "nearest", "linear": linear, "bilinear": linear, "cubic": "bicubic" if rank == 2 else None}
    if modes.get(mode) is None:
        raise r.cannot(
            f"Resize mode '{mode}' over {rank} spatial axes: planner's upsample has nearest, linear (1-D), "
            "bilinear (2-D), trilinear (3-D) and bicubic (2-D)"
        )
    if out[:2] != shape[:2]:
        raise r.cannot("Resize of the batch or channel axis: planner's upsample resizes spatial axes")
    scales_name = _input(node, 1) if node.op_type == "Upsample" else _input(node, 2)
    sizes_name = "" if node.op_type == "Upsample" else _input(node, 3)
    params: dict[str, Any] = {}
    scales = None
    if scales_name and np.size(r.consts.get(scales_name, np.zeros(0))):
        scales = [float(s) for s in np.ravel(r.const(scales_name, "scales"))][2:]
    elif "scales" in a:
        scales = [float(s) for s in a["scales"]][2:]
    if scales and not sizes_name:
        factors = [int(s) if s.is_integer() else s for s in scales]
        params["scale_factor"] = factors[0] if len(set(factors)) == 1 else factors
    else:
        params["size"] = out[2:]
        if sizes_name:
            target = _shape_read_by(r, sizes_name)
            if target is not None:
                r.like[node.output[0]] = target
    if modes[mode] != "nearest":
        params["mode"] = modes[mode]
        if a.get("coordinate_transformation_mode") == "align_corners":
            params["align_corners"] = True
    return _Mapped("upsample", params)


def _shape_read_by(r: _Reader, name: str) -> str | None:
    """The one layer whose shape the constant subgraph computing `name` reads (Shape -> Gather -> Concat)."""
    seen, todo, found = set(), [name], set()
    while todo:
        tensor = todo.pop()
        node = r.producer.get(tensor)
        if node is None or tensor in seen:
            continue
        seen.add(tensor)
        if node.op_type == "Shape" and r.is_data(node.input[0]):
            found.add(r.data[node.input[0]])
        else:
            todo.extend(i for i in node.input if i)
    return found.pop() if len(found) == 1 else None


_PAD_MODES = {"constant": "constant", "reflect": "reflect", "edge": "replicate", "wrap": "circular"}


@handles("Pad")
def _pad(r: _Reader, node: onnx.NodeProto, a: dict[str, Any]) -> _Mapped:
    shape = r.shape(node.input[0])
    rank = len(shape)
    pads = [int(p) for p in (np.ravel(r.const(node.input[1], "pads")) if _input(node, 1) else a.get("pads", []))]
    axes = list(range(rank))
    if _input(node, 3):
        axes = [int(x) % rank for x in np.ravel(r.const(node.input[3], "axes"))]
    pairs = {axis: (pads[n], pads[n + len(axes)]) for n, axis in enumerate(axes)}
    if any(pairs.get(axis, (0, 0)) != (0, 0) for axis in (0, 1)):
        raise r.cannot("padding of the batch or channel axis: planner's pad pads spatial axes")
    if any(n < 0 for pair in pairs.values() for n in pair):
        raise r.cannot("negative padding (a crop): planner's pad only pads")
    mode = a.get("mode", "constant")
    if mode not in _PAD_MODES:
        raise r.cannot(f"Pad mode '{mode}': planner has constant, reflect, replicate (edge) and circular (wrap)")
    params: dict[str, Any] = {"padding": tuple(pairs.get(axis, (0, 0)) for axis in range(2, rank))}
    if mode != "constant":
        params["mode"] = _PAD_MODES[mode]
    value = a.get("value", 0.0)
    if _input(node, 2):
        value = float(np.ravel(r.const(node.input[2], "constant value"))[0])
    if mode == "constant" and value:
        params["value"] = float(value)
    return _Mapped("pad", params)


@handles("ReduceMean")
def _reduce_mean(r: _Reader, node: onnx.NodeProto, a: dict[str, Any]) -> _Mapped:
    rank = len(r.shape(node.input[0]))
    axes = a.get("axes")
    if _input(node, 1):
        axes = [int(x) for x in np.ravel(r.const(node.input[1], "axes"))]
    if not axes:
        if a.get("noop_with_empty_axes", 0):
            raise r.cannot("ReduceMean over no axes: an identity planner does not read as a mean")
        axes = list(range(rank))
    return _Mapped("mean", {"axes": sorted({int(x) % rank for x in axes}), "keepdim": bool(a.get("keepdims", 1))})


@handles("Slice")
def _slice(r: _Reader, node: onnx.NodeProto, a: dict[str, Any]) -> _Mapped | None:
    shape = r.shape(node.input[0])
    if r.opset < 10:
        starts, ends, axes, steps = a["starts"], a["ends"], a.get("axes"), None
    else:
        starts = np.ravel(r.const(node.input[1], "starts")).tolist()
        ends = np.ravel(r.const(node.input[2], "ends")).tolist()
        axes = np.ravel(r.const(node.input[3], "axes")).tolist() if _input(node, 3) else None
        steps = np.ravel(r.const(node.input[4], "steps")).tolist() if _input(node, 4) else None
    axes = list(range(len(starts))) if axes is None else axes
    steps = [1] * len(starts) if steps is None else steps
    cuts: list[dict[str, Any]] = []  # a slice layer's parameters; "end" is None to the end of the axis
    for start, end, axis, step in zip(starts, ends, axes, steps, strict=True):
        axis, step = int(axis) % len(shape), int(step)
        if step < 1:
            raise r.cannot("a slice with a negative step: planner's slice steps forward")
        size = shape[axis]
        start = max(0, min(size, int(start) + size if start < 0 else int(start)))
        end = max(0, min(size, int(end) + size if end < 0 else int(end)))
        if (start, end, step) != (0, size, 1):
            cuts.append({"axis": axis, "start": start, "end": None if end == size else end, "step": step})
    if not cuts:
        return None
    source, current = node.input[0], list(shape)
    for n, cut in enumerate(cuts[:-1]):  # a slice over several axes: one layer per axis
        current[cut["axis"]] = len(range(shape[cut["axis"]])[cut["start"] : cut["end"] : cut["step"]])
        step_id = f"{node.output[0]}#{n}"
        r.add(node, step_id, _Mapped("slice", cut), (r.ref(source),), shape=tuple(current))
        source = step_id
    return _Mapped("slice", cuts[-1], (source,))


@handles("DepthToSpace")
def _depth_to_space(r: _Reader, node: onnx.NodeProto, a: dict[str, Any]) -> _Mapped:
    if a.get("mode", "DCR") != "CRD":
        raise r.cannot("DepthToSpace in DCR order: planner's pixel_shuffle is PyTorch's (CRD)")
    return _Mapped("pixel_shuffle", {"upscale_factor": int(a["blocksize"])})


@handles("Split")
def _split(r: _Reader, node: onnx.NodeProto, a: dict[str, Any]) -> _Mapped:
    """Split: one `split` layer; the reader names its outputs `name[i]`."""
    shape = r.shape(node.input[0])
    axis = int(a.get("axis", 0)) % len(shape)
    if _input(node, 1):
        sizes = [int(n) for n in np.ravel(r.const(node.input[1], "split"))]
    elif a.get("split"):
        sizes = [int(n) for n in a["split"]]
    else:  # equal pieces (num_outputs, or one per output), the last one smaller: torch.chunk's cut
        chunks = int(a.get("num_outputs", len(node.output)))
        sizes = [n for n in ar.chunk_sizes(shape[axis], chunks) if n > 0]
        if len(sizes) == chunks:
            return _Mapped("split", {"chunks": chunks, "axis": axis})
    return _Mapped("split", {"sizes": sizes, "axis": axis})
