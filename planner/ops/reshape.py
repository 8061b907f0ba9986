"""Ops that resize or reshape without a sliding kernel: upsample, pad, flatten, linear,
and the shape-preserving ones."""

from __future__ import annotations

from math import prod
from typing import Any, cast

from planner import arithmetic as ar
from planner.arithmetic import Num
from planner.errors import LayerError
from planner.ops.base import Call, Field, Layer, Op, Rule, Simple, Transfer, sizes_per_axis
from planner.ops.merge import like_size
from planner.spec import models

# the interpolating modes, by the rank PyTorch takes each at; and the input cells an output reads per axis
MODE_RANK = {"linear": 1, "bilinear": 2, "bicubic": 2, "trilinear": 3}
TAPS = {"nearest": 1, "linear": 2, "bilinear": 2, "trilinear": 2, "bicubic": 4}


def upsample(call: Call) -> Transfer:
    """Resizing (nn.Upsample, F.interpolate): by `scale_factor` (floor(i * f) as PyTorch sizes it), to `size`,
    or to the spatial size of the layer `like` names; nearest, or interpolating with `align_corners`."""
    spatial = call.spatial_input()
    m = cast(models.Upsample, call.model)
    given = [key for key in ("scale_factor", "size", "like") if getattr(m, key) is not None]
    if len(given) != 1:
        raise LayerError(
            "value",
            "upsample needs exactly one of 'scale_factor' and 'size' (or 'like: <layer>' for another layer's size)",
            given[0] if given else "scale_factor",
        )
    params: dict[str, Any] = {}
    rules: list[Rule] = []
    if m.like is not None:
        out = like_size(call, spatial)
        params["size"] = out
    elif m.size is not None:
        out = sizes_per_axis(m.size, len(spatial), "size")
        params["size"] = out
    else:
        assert m.scale_factor is not None  # the one of the three given, checked above
        factors = _factors(m.scale_factor, len(spatial))
        out = tuple(ar.upsample_output(i, f) for i, f in zip(spatial, factors, strict=True))
        rules += [
            Rule(
                o <= ar.scaled_size_limit(f),
                "size-range",
                "upsampling by {} is sized exactly only up to {} cells, but axis {} would get {}",
                (f, ar.scaled_size_limit(f), a, o),
                "scale_factor",
            )
            for a, (o, f) in enumerate(zip(out, factors, strict=True))
            if not isinstance(f, int)
        ]
        params["scale_factor"] = m.scale_factor if not isinstance(m.scale_factor, list) else factors
    params["mode"] = m.mode
    if m.mode in MODE_RANK:
        if MODE_RANK[m.mode] != len(spatial):
            raise LayerError(
                "rank",
                f"mode '{m.mode}' takes {MODE_RANK[m.mode]} spatial axes in PyTorch (linear 1, bilinear and bicubic 2, "
                f"trilinear 3); the input has {len(spatial)}",
                "mode",
            )
        params["align_corners"] = m.align_corners
    elif "align_corners" in m.model_fields_set:  # PyTorch refuses it for nearest, even False
        raise LayerError(
            "value", f"align_corners applies to the interpolating modes only, not to '{m.mode}'", "align_corners"
        )
    return Transfer((*call.inputs[0][:2], *out), tuple(rules), params)


def _factors(value: int | float | list, rank: int) -> tuple[int | float, ...]:
    """A scale factor per axis; a float one must be a fraction the arithmetic can size exactly."""
    factors = tuple(value) if isinstance(value, list) else (value,) * rank
    if len(factors) != rank:
        raise LayerError(
            "rank", f"'scale_factor' has {len(factors)} entries but the input has {rank} spatial axes", "scale_factor"
        )
    for f in factors:
        if not isinstance(f, int) and ar.scale_fraction(f).denominator > ar.SCALE_DENOMINATOR_LIMIT:
            raise LayerError(
                "value",
                f"scale_factor {f!r} is no fraction p/q with q up to 2**20, which planner sizes exactly; give 'size'",
                "scale_factor",
            )
    return factors


PAD_RULES = {  # what PyTorch's F.pad needs of each side's padding in each mode, and what it says
    "reflect": (ar.reflect_padding_fits, "reflect padding must be smaller than the input size"),
    "circular": (ar.circular_padding_fits, "circular padding can wrap around at most once: at most the input size"),
}


def pad(call: Call) -> Transfer:
    """Explicit padding: i + pb + pe; constant (`value`), reflect, replicate or circular, as F.pad pads."""
    spatial = call.spatial_input()
    pads = call.params["padding"]
    m = cast(models.Pad, call.model)
    if isinstance(pads, str):
        raise LayerError("value", f"a pad layer needs explicit padding amounts, not '{pads}'", "padding")
    if m.mode != "constant" and "value" in m.model_fields_set:
        raise LayerError("value", f"'value' applies to mode constant only, not to '{m.mode}'", "value")
    rules = []
    if m.mode in PAD_RULES:
        fits, what = PAD_RULES[m.mode]
        rules = [
            Rule(
                fits(i, pb, pe),
                "padding",
                what + ": padding ({}, {}), input size {} on axis {}",
                (pb, pe, i, a),
                "padding",
            )
            for a, (i, (pb, pe)) in enumerate(zip(spatial, pads, strict=True))
        ]
    out = tuple(ar.padded_size(i, pb, pe) for i, (pb, pe) in zip(spatial, pads, strict=True))
    params = {"padding": pads, "mode": m.mode, **({"value": m.value} if m.mode == "constant" else {})}
    return Transfer((*call.inputs[0][:2], *out), tuple(rules), params)


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
    features, m = shape[1], cast(models.Linear, call.model)
    given = m.in_features
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
    return Transfer((shape[0], m.out_features), rules, {"in_features": features, "out_features": m.out_features})


def same_shape(call: Call) -> Transfer:
    """relu, sigmoid, tanh, silu, batchnorm, dropout, identity."""
    return Transfer(call.inputs[0], ())


class Upsample(Op):
    name = "upsample"

    def transfer(self, call: Call) -> Transfer:
        return upsample(call)

    def receptive(self, fields: tuple[Field, ...], params: dict[str, Any], input_shape: tuple) -> Field | None:
        """The field grows by the cells each output reads beyond one (none for nearest); the jump shrinks by
        the factor the axis grows."""
        (r, j), spatial = fields[0], input_shape[2:]
        if params.get("size") is not None:
            out = params["size"]
        else:
            factors = params["scale_factor"]
            factors = factors if isinstance(factors, tuple) else (factors,) * len(spatial)
            out = tuple(ar.upsample_output(i, f) for i, f in zip(spatial, factors, strict=True))
        taps = TAPS[params.get("mode", "nearest")]
        return (
            tuple(r[a] + (taps - 1) * j[a] for a in range(len(r))),
            tuple(ar.resized_jump(j[a], spatial[a], out[a]) for a in range(len(r))),
        )

    def data_inputs(self, layer: Layer) -> tuple[str, ...]:
        """A `like` layer only lends its size, which the plan fixed."""
        return layer.inputs[:1]


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
