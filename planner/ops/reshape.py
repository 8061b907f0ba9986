"""Ops that resize or reshape without a sliding kernel: upsample, pad, flatten, linear,
and the shape-preserving ones."""

from __future__ import annotations

from math import prod
from typing import Any

from planner import arithmetic as ar
from planner.arithmetic import Num
from planner.errors import LayerError
from planner.ops.base import Call, Field, Layer, Op, Rule, Simple, Transfer, sizes_per_axis


def upsample(call: Call) -> Transfer:
    """Nearest-neighbour upsampling: i * scale_factor, or a given size."""
    spatial = call.spatial_input()
    m = call.model
    if (m.scale_factor is None) == (m.size is None):
        raise LayerError("value", "upsample needs exactly one of 'scale_factor' and 'size'", "scale_factor")
    if m.size is not None:
        out = sizes_per_axis(m.size, len(spatial), "size")
        return Transfer((*call.inputs[0][:2], *out), (), {"size": out})
    out = tuple(ar.upsample_output(i, m.scale_factor) for i in spatial)
    return Transfer((*call.inputs[0][:2], *out), (), {"scale_factor": m.scale_factor})


def pad(call: Call) -> Transfer:
    """Explicit zero (or constant) padding: i + pb + pe."""
    spatial = call.spatial_input()
    pads = call.params["padding"]
    if isinstance(pads, str):
        raise LayerError("value", f"a pad layer needs explicit padding amounts, not '{pads}'", "padding")
    out = tuple(ar.padded_size(i, pb, pe) for i, (pb, pe) in zip(spatial, pads, strict=True))
    return Transfer((*call.inputs[0][:2], *out), (), {"padding": pads, "value": call.model.value})


def flatten(call: Call) -> Transfer:
    """[N, C, *spatial] -> [N, C * prod(spatial)]."""
    shape = call.inputs[0]
    return Transfer((shape[0], prod(shape[1:])), ())


def linear(call: Call) -> Transfer:
    """[N, in_features] -> [N, out_features]; in_features is inferred, and checked when given."""
    shape = call.inputs[0]
    if len(shape) != 2:
        raise LayerError(
            "rank",
            f"linear needs a flattened input [N, features], but its input has {len(shape) - 2} "
            "spatial axes; add a flatten layer before it",
        )
    features = shape[1]
    given = call.model.in_features
    rules = (
        ()
        if given is None
        else (
            Rule(
                features == given,
                "in-features",
                "in_features is {} but the input has {} features",
                (given, features),
                "in_features",
            ),
        )
    )
    return Transfer(
        (shape[0], call.model.out_features), rules, {"in_features": features, "out_features": call.model.out_features}
    )


def same_shape(call: Call) -> Transfer:
    """relu, sigmoid, tanh, silu, batchnorm, dropout, identity."""
    return Transfer(call.inputs[0], ())


class Upsample(Op):
    name = "upsample"

    def transfer(self, call: Call) -> Transfer:
        return upsample(call)

    def receptive(self, fields: tuple[Field, ...], params: dict[str, Any], input_shape: tuple) -> Field | None:
        """The field stays; the jump shrinks by the factor the axis grows."""
        (r, j), spatial = fields[0], input_shape[2:]
        out = params.get("size") or tuple(ar.upsample_output(i, params["scale_factor"]) for i in spatial)
        return r, tuple(ar.resized_jump(j[a], spatial[a], out[a]) for a in range(len(r)))


class Flatten(Op):
    name = "flatten"

    def transfer(self, call: Call) -> Transfer:
        return flatten(call)

    def receptive(self, fields: tuple[Field, ...], params: dict[str, Any], input_shape: tuple) -> Field | None:
        return None


class Linear(Flatten):
    """A fully connected layer: weights (out_features, in_features) and a bias."""

    name = "linear"

    def transfer(self, call: Call) -> Transfer:
        return linear(call)

    def attributes(self, model: Any) -> dict[str, Any]:
        return {"bias": model.bias}

    def params_count(self, layer: Layer) -> Num:
        c_out = layer.params["out_features"]
        return layer.params["in_features"] * c_out + (c_out if layer.attrs["bias"] else 0)

    def macs(self, layer: Layer) -> Num:
        return layer.params["in_features"] * layer.params["out_features"]

    def narrowed(self, model: Any, factor: int, unit: int) -> dict[str, Any]:
        return {"in_features": None}  # inferred again from the narrowed input


class BatchNorm(Simple):
    """Batch normalisation: a scale and a shift per channel."""

    def params_count(self, layer: Layer) -> Num:
        return 2 * layer.input_shape[1]


class Dropout(Simple):
    def attributes(self, model: Any) -> dict[str, Any]:
        return {"p": model.p}
