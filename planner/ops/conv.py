"""Convolution and transposed convolution (guide chapters 2-5), and the padding modes they share with pooling."""

from __future__ import annotations

from math import prod
from typing import Any, cast

from planner import arithmetic as ar
from planner.arithmetic import Num
from planner.ops.base import Call, Field, Layer, Op, Rule, Shape, Transfer
from planner.spec import models


def resolve_padding(call: Call, spatial: Shape, *, transposed: bool = False) -> tuple[tuple[Num, Num], ...]:
    """Per-axis (begin, end) padding of a layer: explicit pairs, or a mode resolved on this input."""
    padding = call.params["padding"]
    if not isinstance(padding, str):
        return padding
    k, s, d = call.axis("kernel"), call.axis("stride"), call.axis("dilation")
    pairs = []
    for axis, i in enumerate(spatial):
        if padding == "valid":
            pairs.append((0, 0))
        elif padding == "full":
            pairs.append((ar.full_padding(k[axis], d[axis]),) * 2)
        else:
            if transposed:
                total = ar.transpose_same_padding_total(k[axis], s[axis], d[axis], call.axis("output_padding")[axis])
            else:
                total = ar.same_padding_total(i, k[axis], s[axis], d[axis])
            pairs.append(ar.split_padding(total, extra_at_end=padding == "same"))
    return tuple(pairs)


def same_mode_rules(call: Call) -> list[Rule]:
    """PyTorch accepts padding='same' only with unit stride; ONNX and TensorFlow allow any stride."""
    if call.params["padding"] not in ("same", "same_lower") or call.dialect != "pytorch":
        return []
    return [
        Rule(
            s == 1,
            "padding-same",
            "padding '{}' needs stride 1 in PyTorch (stride is {}); use explicit padding or dialect onnx/tensorflow",
            (call.params["padding"], s),
            "padding",
        )
        for s in call.axis("stride")
    ]


def groups_rules(call: Call, in_channels: Num, out_channels: Num) -> list[Rule]:
    g = cast(models.Conv, call.model).groups  # conv and conv_transpose (a subclass)
    return [
        Rule(
            ar.all_of(in_channels % g == 0, out_channels % g == 0),
            "groups",
            "groups ({}) must divide in_channels ({}) and out_channels ({})",
            (g, in_channels, out_channels),
            "groups",
        )
    ]


def dialect_stride_dilation_rules(call: Call) -> list[Rule]:
    """TensorFlow refuses any stride > 1 together with any dilation > 1, across axes (tf.nn.convolution, tf.nn.pool)."""
    if call.dialect != "tensorflow":
        return []
    strides, dilations = call.axis("stride"), call.axis("dilation")
    return [
        Rule(
            ar.any_of(ar.all_of(*(s == 1 for s in strides)), ar.all_of(*(d == 1 for d in dilations))),
            "dilation-stride",
            "TensorFlow does not allow stride {} together with dilation {}",
            (strides, dilations),
            "dilation",
        )
    ]


def kernel_fits_rule(i, k, pb, pe, d, axis: int) -> Rule:
    return Rule(
        ar.kernel_fits(i, k, pb, pe, d),
        "kernel-size",
        "the effective kernel d(k-1)+1 = {} is larger than the padded input i+pb+pe = {} on axis {}",
        lambda: (ar.effective_kernel(k, d), ar.padded_size(i, pb, pe), axis),
        "kernel",
    )


def conv(call: Call) -> Transfer:
    """Relationship 15 (with 1-6 as special cases), per axis and per side of padding."""
    spatial, m = call.spatial_input(), cast(models.Conv, call.model)
    n, c_in = call.inputs[0][:2]
    c_out = m.out_channels
    k, s, d = call.axis("kernel"), call.axis("stride"), call.axis("dilation")
    pads = resolve_padding(call, spatial)
    axes = list(enumerate(zip(spatial, pads, strict=True)))
    out = tuple(ar.conv_output(i, k[a], s[a], pb, pe, d[a]) for a, (i, (pb, pe)) in axes)
    rules = [*groups_rules(call, c_in, c_out), *same_mode_rules(call), *dialect_stride_dilation_rules(call)]
    rules += [kernel_fits_rule(i, k[a], pb, pe, d[a], a) for a, (i, (pb, pe)) in axes]
    params = {
        "kernel": k,
        "stride": s,
        "padding": pads,
        "dilation": d,
        "groups": m.groups,
        "out_channels": c_out,
    }
    return Transfer((n, c_out, *out), tuple(rules), params)


def transpose_padding_rule(i, k, s, pb, pe, d, a, axis: int) -> Rule:
    """A transposed convolution's padding crops its full output s(i-1) + d(k-1) + 1 + a, in every dialect.

    PyTorch (`ConvTransposeNd`), ONNX (shape inference and onnxruntime) and TensorFlow
    (`conv2d_transpose` with explicit padding) refuse negative padding and an output below
    one cell, and nothing else: padding beyond d(k-1) is a crop of the equivalent direct
    convolution's input (docs/dialects.md).
    """
    return Rule(
        ar.all_of(pb >= 0, pe >= 0, ar.transpose_crop_fits(i, k, s, pb, pe, d, a)),
        "padding",
        "a transposed convolution's padding ({}, {}) must be non-negative and leave at least one of the "
        "s(i-1) + d(k-1) + 1 + a = {} cells of its full output; it leaves {} on axis {}",
        lambda: (
            pb,
            pe,
            ar.conv_transpose_output(i, k, s, 0, 0, d, a),
            ar.conv_transpose_output(i, k, s, pb, pe, d, a),
            axis,
        ),
        "padding",
    )


def conv_transpose(call: Call) -> Transfer:
    """Relationship 14 (with 8-13 as special cases): o' = s(i'-1) + d(k-1) + 1 - pb - pe + a."""
    spatial, m = call.spatial_input(), cast(models.ConvTranspose, call.model)
    n, c_in = call.inputs[0][:2]
    c_out = m.out_channels
    k, s, d, a = call.axis("kernel"), call.axis("stride"), call.axis("dilation"), call.axis("output_padding")
    pads = resolve_padding(call, spatial, transposed=True)
    axes = list(enumerate(zip(spatial, pads, strict=True)))
    out = tuple(ar.conv_transpose_output(i, k[x], s[x], pb, pe, d[x], a[x]) for x, (i, (pb, pe)) in axes)
    rules = [*groups_rules(call, c_in, c_out), *dialect_stride_dilation_rules(call)]
    for x, (i, (pb, pe)) in axes:
        rules.append(
            Rule(
                ar.any_of(a[x] < s[x], a[x] < d[x]),
                "output-padding",
                "output_padding ({}) must be smaller than stride ({}) or dilation ({}) on axis {}",
                (a[x], s[x], d[x], x),
                "output_padding",
            )
        )
        rules.append(transpose_padding_rule(i, k[x], s[x], pb, pe, d[x], a[x], x))
    params = {
        "kernel": k,
        "stride": s,
        "padding": pads,
        "dilation": d,
        "output_padding": a,
        "groups": m.groups,
        "out_channels": c_out,
    }
    return Transfer((n, c_out, *out), tuple(rules), params)


class Conv(Op):
    """A direct convolution: a sliding window, with weights (c_out, c_in / groups, *kernel) and a bias."""

    name = "conv"

    def axes_apart(self, model: Any, dialect: str) -> bool:
        return dialect != "tensorflow"  # TensorFlow's rule on stride and dilation spans every axis

    def transfer(self, call: Call) -> Transfer:
        return conv(call)

    def attributes(self, model: Any) -> dict[str, Any]:
        return {"bias": model.bias}

    def receptive(self, fields: tuple[Field, ...], params: dict[str, Any], input_shape: tuple) -> Field | None:
        return sliding_receptive(fields[0], params)

    def params_count(self, layer: Layer) -> Num:
        c_in, c_out, g = layer.input_shape[1], layer.params["out_channels"], layer.params["groups"]
        return c_in * (c_out // g) * prod(layer.params["kernel"]) + (c_out if layer.attrs["bias"] else 0)

    def macs(self, layer: Layer) -> Num:
        """One per output element, input channel of its group and kernel cell."""
        per_output = (layer.input_shape[1] // layer.params["groups"]) * prod(layer.params["kernel"])
        return prod(layer.output_shape[1:]) * per_output

    def degenerate(self, layer: Layer) -> list[Rule]:
        """Windows wholly in the padding: the first when pb >= k_eff, the last when it starts past the input."""
        p, found = layer.params, []
        for a, (i, o) in enumerate(zip(layer.input_shape[2:], layer.output_shape[2:], strict=True)):
            (pb, pe), k_eff = p["padding"][a], ar.effective_kernel(p["kernel"][a], p["dilation"][a])
            found.append(
                Rule(
                    ar.any_of(pb >= k_eff, (o - 1) * p["stride"][a] >= pb + i),
                    "degenerate",
                    "padding ({}, {}) on axis {} makes windows of padding only (the kernel spans {})",
                    (pb, pe, a, k_eff),
                    "padding",
                )
            )
        return found

    def narrowed(self, model: Any, factor: int, unit: int) -> dict[str, Any]:
        narrow = -(-model.out_channels // factor)
        return {"out_channels": min(model.out_channels, -(-narrow // unit) * unit)}


class ConvTranspose(Conv):
    """A transposed convolution: the direct one over its stretched input (guide chapter 4)."""

    name = "conv_transpose"

    def transfer(self, call: Call) -> Transfer:
        return conv_transpose(call)

    def receptive(self, fields: tuple[Field, ...], params: dict[str, Any], input_shape: tuple) -> Field | None:
        (r, j), k, s, d = fields[0], params["kernel"], params["stride"], params["dilation"]
        steps = [ar.transpose_receptive_step(r[a], j[a], k[a], s[a], d[a]) for a in range(len(r))]
        return tuple(x for x, _ in steps), tuple(y for _, y in steps)

    def macs(self, layer: Layer) -> Num:
        """One per input element, output channel of its group and kernel cell."""
        per_input = (layer.params["out_channels"] // layer.params["groups"]) * prod(layer.params["kernel"])
        return prod(layer.input_shape[1:]) * per_input

    def degenerate(self, layer: Layer) -> list[Rule]:
        """A kernel smaller than the stride leaves rows that no input reaches: zeros (plus the bias)."""
        k, s = layer.params["kernel"], layer.params["stride"]
        return [
            Rule(
                k[a] < s[a],
                "degenerate",
                "kernel {} is smaller than stride {} on axis {}: the output has rows no input reaches",
                (k[a], s[a], a),
                "kernel",
            )
            for a in range(len(k))
        ]


def sliding_receptive(field: Field, params: dict[str, Any]) -> Field:
    """r' = r + (k_eff - 1) j, j' = j s on every axis (convolution and pooling)."""
    (r, j), k, s = field, params["kernel"], params["stride"]
    d = params.get("dilation", (1,) * len(r))
    steps = [ar.receptive_step(r[a], j[a], k[a], s[a], d[a]) for a in range(len(r))]
    return tuple(x for x, _ in steps), tuple(y for _, y in steps)
