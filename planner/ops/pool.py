"""Max, average and adaptive average and max pooling (guide Relationship 7, PyTorch's ceil_mode)."""

from __future__ import annotations

from typing import Any, cast

from planner import arithmetic as ar
from planner.ops.base import Call, Field, Op, Rule, Transfer, sizes_per_axis
from planner.ops.conv import (
    dialect_stride_dilation_rules,
    kernel_fits_rule,
    resolve_padding,
    same_mode_rules,
    sliding_receptive,
)
from planner.spec import models


def _pool(call: Call, dilation: tuple, own: dict[str, Any]) -> Transfer:
    """The transfer of a pooling layer; `own` are the parameters it reports after kernel, stride and padding."""
    spatial = call.spatial_input()
    n, c = call.inputs[0][:2]
    k, s = call.axis("kernel"), call.axis("stride")
    ceil_mode = cast("models.MaxPool | models.AvgPool", call.model).ceil_mode
    call_d = Call({**call.params, "dilation": dilation}, call.model, call.inputs, call.dialect)
    pads = resolve_padding(call_d, spatial)
    out = tuple(
        ar.pool_output(i, k[a], s[a], pb, pe, dilation[a], ceil_mode)
        for a, (i, (pb, pe)) in enumerate(zip(spatial, pads, strict=True))
    )
    rules = same_mode_rules(call) + dialect_stride_dilation_rules(call_d)
    for a, (i, (pb, pe)) in enumerate(zip(spatial, pads, strict=True)):
        rules.append(kernel_fits_rule(i, k[a], pb, pe, dilation[a], a))
        if isinstance(call.params["padding"], str):
            continue  # padding modes pad less than a kernel
        if call.dialect == "pytorch":
            rules.append(
                Rule(
                    ar.pytorch_pool_padding_fits(pb, pe, k[a]),
                    "pool-padding",
                    "PyTorch pooling needs padding at most half the kernel: padding ({}, {}), kernel {} on axis {}",
                    (pb, pe, k[a], a),
                    "padding",
                )
            )
        else:
            rules.append(
                Rule(
                    ar.onnx_pool_padding_fits(pb, pe, k[a]),
                    "pool-padding",
                    "ONNX and TensorFlow pooling need padding smaller than the kernel: padding ({}, {}), "
                    "kernel {} on axis {}",
                    (pb, pe, k[a], a),
                    "padding",
                )
            )
    params = {"kernel": k, "stride": s, "padding": pads, **own}
    return Transfer((n, c, *out), tuple(rules), params)


def maxpool(call: Call) -> Transfer:
    dilation = call.axis("dilation")
    return _pool(call, dilation, {"dilation": dilation, "ceil_mode": cast(models.MaxPool, call.model).ceil_mode})


def avgpool(call: Call) -> Transfer:
    m = cast(models.AvgPool, call.model)
    own = {"ceil_mode": m.ceil_mode, "count_include_pad": m.count_include_pad}
    return _pool(call, (1,) * len(call.axis("kernel")), own)


def adaptive_avgpool(call: Call) -> Transfer:
    spatial = call.spatial_input()
    out = sizes_per_axis(cast(models.AdaptiveAvgPool, call.model).output_size, len(spatial), "output_size")
    return Transfer((*call.inputs[0][:2], *out), (), {"output_size": out})


class MaxPool(Op):
    name = "maxpool"

    def axes_apart(self, model: Any, dialect: str) -> bool:
        return dialect != "tensorflow"  # TensorFlow's rule on stride and dilation spans every axis

    def transfer(self, call: Call) -> Transfer:
        return maxpool(call)

    def receptive(self, fields: tuple[Field, ...], params: dict[str, Any], input_shape: tuple) -> Field | None:
        return sliding_receptive(fields[0], params)


class AvgPool(MaxPool):
    name = "avgpool"

    def transfer(self, call: Call) -> Transfer:
        return avgpool(call)


class AdaptiveAvgPool(Op):
    """Adaptive pooling (average, and max as its subclass): bin j of o spans [floor(j i / o), ceil((j + 1) i / o))."""

    name = "adaptive_avgpool"

    def transfer(self, call: Call) -> Transfer:
        return adaptive_avgpool(call)

    def receptive(self, fields: tuple[Field, ...], params: dict[str, Any], input_shape: tuple) -> Field | None:
        (r, j), out = fields[0], params["output_size"]
        steps = [ar.adaptive_receptive_step(r[a], j[a], input_shape[2 + a], out[a]) for a in range(len(r))]
        return tuple(x for x, _ in steps), tuple(y for _, y in steps)


class AdaptiveMaxPool(AdaptiveAvgPool):
    name = "adaptive_maxpool"
