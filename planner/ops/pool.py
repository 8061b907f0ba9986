"""Max, average and adaptive average pooling (guide Relationship 7, PyTorch's ceil_mode)."""

from __future__ import annotations

from planner import arithmetic as ar
from planner.ops.base import Call, Rule, Transfer, sizes_per_axis
from planner.ops.conv import dialect_stride_dilation_rules, kernel_fits_rule, resolve_padding, same_mode_rules


def _pool(call: Call, dilation: tuple) -> Transfer:
    spatial = call.spatial_input()
    n, c = call.inputs[0][:2]
    k, s = call.axis("kernel"), call.axis("stride")
    ceil_mode = call.model.ceil_mode
    call_d = Call({**call.params, "dilation": dilation}, call.model, call.inputs, call.dialect)
    pads = resolve_padding(call_d, spatial)
    out = tuple(ar.pool_output(i, k[a], s[a], pb, pe, dilation[a], ceil_mode)
                for a, (i, (pb, pe)) in enumerate(zip(spatial, pads)))
    rules = same_mode_rules(call) + dialect_stride_dilation_rules(call_d)
    for a, (i, (pb, pe)) in enumerate(zip(spatial, pads)):
        rules.append(kernel_fits_rule(i, k[a], pb, pe, dilation[a], a))
        if isinstance(call.params["padding"], str):
            continue  # padding modes pad less than a kernel
        if call.dialect == "pytorch":
            rules.append(Rule(ar.all_of(2 * pb <= k[a], 2 * pe <= k[a]), "pool-padding",
                              "PyTorch pooling needs padding at most half the kernel: padding ({}, {}), kernel {} "
                              "on axis {}", (pb, pe, k[a], a), "padding"))
        else:
            rules.append(Rule(ar.all_of(pb < k[a], pe < k[a]), "pool-padding",
                              "ONNX and TensorFlow pooling need padding smaller than the kernel: padding ({}, {}), "
                              "kernel {} on axis {}", (pb, pe, k[a], a), "padding"))
    params = {"kernel": k, "stride": s, "padding": pads}
    if call.model.op == "maxpool":
        params["dilation"] = dilation
    params["ceil_mode"] = ceil_mode
    if call.model.op == "avgpool":
        params["count_include_pad"] = call.model.count_include_pad
    return Transfer((n, c, *out), tuple(rules), params)


def maxpool(call: Call) -> Transfer:
    return _pool(call, call.axis("dilation"))


def avgpool(call: Call) -> Transfer:
    return _pool(call, (1,) * len(call.axis("kernel")))


def adaptive_avgpool(call: Call) -> Transfer:
    spatial = call.spatial_input()
    out = sizes_per_axis(call.model.output_size, len(spatial), "output_size")
    return Transfer((*call.inputs[0][:2], *out), (), {"output_size": out})
