"""Ops that resize or reshape without a sliding kernel: upsample, pad, flatten, linear,
and the shape-preserving ones."""

from __future__ import annotations

from math import prod

from planner.errors import LayerError
from planner.ops.base import Call, Rule, Transfer, sizes_per_axis


def upsample(call: Call) -> Transfer:
    """Nearest-neighbour upsampling: i * scale_factor, or a given size."""
    spatial = call.spatial_input()
    m = call.model
    if (m.scale_factor is None) == (m.size is None):
        raise LayerError("value", "upsample needs exactly one of 'scale_factor' and 'size'", "scale_factor")
    if m.size is not None:
        out = sizes_per_axis(m.size, len(spatial), "size")
        return Transfer((*call.inputs[0][:2], *out), (), {"size": out})
    out = tuple(i * m.scale_factor for i in spatial)
    return Transfer((*call.inputs[0][:2], *out), (), {"scale_factor": m.scale_factor})


def pad(call: Call) -> Transfer:
    """Explicit zero (or constant) padding: i + pb + pe."""
    spatial = call.spatial_input()
    pads = call.params["padding"]
    if isinstance(pads, str):
        raise LayerError("value", f"a pad layer needs explicit padding amounts, not '{pads}'", "padding")
    out = tuple(i + pb + pe for i, (pb, pe) in zip(spatial, pads))
    return Transfer((*call.inputs[0][:2], *out), (), {"padding": pads, "value": call.model.value})


def flatten(call: Call) -> Transfer:
    """[N, C, *spatial] -> [N, C * prod(spatial)]."""
    shape = call.inputs[0]
    return Transfer((shape[0], prod(shape[1:])), ())


def linear(call: Call) -> Transfer:
    """[N, in_features] -> [N, out_features]; in_features is inferred, and checked when given."""
    shape = call.inputs[0]
    if len(shape) != 2:
        raise LayerError("rank", f"linear needs a flattened input [N, features], but its input has {len(shape) - 2} "
                         "spatial axes; add a flatten layer before it")
    features = shape[1]
    given = call.model.in_features
    rules = () if given is None else (
        Rule(features == given, "in-features", "in_features is {} but the input has {} features", (given, features),
             "in_features"),
    )
    return Transfer((shape[0], call.model.out_features), rules,
                    {"in_features": features, "out_features": call.model.out_features})


def same_shape(call: Call) -> Transfer:
    """relu, sigmoid, tanh, batchnorm, dropout, identity."""
    return Transfer(call.inputs[0], ())
