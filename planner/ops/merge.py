"""Ops that join or align branches of a graph: concat, add, mul, crop (U-Net's skip connections)."""

from __future__ import annotations

from fractions import Fraction
from typing import Any, cast

from planner import arithmetic as ar
from planner.errors import LayerError
from planner.ops.base import Call, Field, Layer, Op, Rule, Shape, Simple, Transfer, sizes_per_axis
from planner.spec import models


def _input_names(call: Call) -> list[str]:
    """The names of a join's inputs (concat, add, mul: the ops of the `Concat` model)."""
    return cast(models.Concat, call.model).inputs


def _same_rank(call: Call) -> None:
    ranks = {len(shape) for shape in call.inputs}
    if len(ranks) > 1:
        ranks_given = ", ".join(f"{name} has {len(s)}" for name, s in zip(_input_names(call), call.inputs, strict=True))
        raise LayerError("rank", f"{call.model.op} joins inputs of different ranks: {ranks_given}", "inputs")


def _matching(call: Call, dims: range, what: str) -> list[Rule]:
    first, *rest = call.inputs
    names = _input_names(call)
    return [
        Rule(
            shape[d] == first[d],
            "mismatch",
            what + " differ: '{}' gives {}, '{}' gives {} on dim {}",
            (names[0], first[d], names[n], shape[d], d),
            "inputs",
        )
        for n, shape in enumerate(rest, 1)
        for d in dims
    ]


def concat(call: Call) -> Transfer:
    """Channels add up; every other dim must be equal."""
    _same_rank(call)
    rank = len(call.inputs[0])
    rules = _matching(call, range(0, 1), "batch sizes") + _matching(call, range(2, rank), "spatial sizes")
    channels = sum(shape[1] for shape in call.inputs)
    return Transfer((call.inputs[0][0], channels, *call.inputs[0][2:]), tuple(rules))


def broadcast(call: Call) -> Transfer:
    """add and mul, element-wise with PyTorch's broadcasting: shapes align at their last dims (a missing
    leading dim counts as 1); on each dim the inputs are equal or 1, and the result takes the largest."""
    rank = max(len(shape) for shape in call.inputs)
    shapes = [(1,) * (rank - len(shape)) + tuple(shape) for shape in call.inputs]
    names = _input_names(call)
    first = shapes[0]
    template = "shapes differ: '{}' gives {}, '{}' gives {} on dim {}"
    rules = [  # every input against the first, as when all dims had to be equal
        Rule(
            ar.broadcastable(first[d], shape[d]),
            "mismatch",
            template,
            (names[0], first[d], names[n], shape[d], d),
            "inputs",
        )
        for n, shape in enumerate(shapes[1:], 1)
        for d in range(rank)
    ]
    rules += [  # two later inputs only meet where the first is 1
        Rule(
            ar.any_of(first[d] != 1, ar.broadcastable(shapes[m][d], shapes[n][d])),
            "mismatch",
            template,
            (names[m], shapes[m][d], names[n], shapes[n][d], d),
            "inputs",
        )
        for m in range(1, len(shapes))
        for n in range(m + 1, len(shapes))
        for d in range(rank)
    ]
    out = first
    for shape in shapes[1:]:
        out = tuple(ar.broadcast_size(a, b) for a, b in zip(out, shape, strict=True))
    return Transfer(out, tuple(rules))


def like_size(call: Call, spatial: Shape) -> Shape:
    """The spatial size of the layer named by `like` (the call's second input), of the same rank as `spatial`."""
    target: Shape = call.inputs[1][2:]
    if len(target) != len(spatial):
        m = cast("models.Crop | models.Upsample", call.model)
        raise LayerError(
            "rank",
            f"{m.op} like '{m.like}' has {len(target)} spatial axes, its input {len(spatial)}",
            "like",
        )
    return target


def crop(call: Call) -> Transfer:
    """Centre crop to `size`, or to the spatial size of the layer named by `like`."""
    spatial = call.spatial_input()
    m = cast(models.Crop, call.model)
    if (m.size is None) == (m.like is None):
        raise LayerError("value", "crop needs exactly one of 'size' and 'like'", "size")
    target: Shape
    if m.size is not None:  # then `like` is None: exactly one is given
        target = sizes_per_axis(m.size, len(spatial), "size")
    else:
        target = like_size(call, spatial)
    rules = [
        Rule(
            o <= i,
            "crop-size",
            "cannot crop {} down to {}: the crop is larger than its input on axis {}",
            (i, o, a),
            "like" if m.like else "size",
        )
        for a, (i, o) in enumerate(zip(spatial, target, strict=True))
    ]
    begin = tuple(ar.centre_crop_begin(i, o) for i, o in zip(spatial, target, strict=True))
    return Transfer((*call.inputs[0][:2], *target), tuple(rules), {"size": target, "offset": begin})


class Join(Simple):
    """concat and add: the field of the widest input, as each output cell sees every input's cell."""

    def receptive(self, fields: tuple[Field, ...], params: dict[str, Any], input_shape: tuple) -> Field | None:
        rank = len(fields[0][0])
        return (
            tuple(_largest([f[0][a] for f in fields]) for a in range(rank)),
            tuple(_largest([f[1][a] for f in fields]) for a in range(rank)),
        )


def _largest(values: list) -> Any:
    if all(isinstance(v, (int, Fraction)) for v in values):
        return max(values)
    best = values[0]
    for v in values[1:]:
        best = ar.maximum(best, v)
    return best


class Crop(Op):
    name = "crop"

    def axes_apart(self, model: Any, dialect: str) -> bool:
        return model.like is not None  # a `size` lists one value per axis in the model

    def transfer(self, call: Call) -> Transfer:
        return crop(call)

    def data_inputs(self, layer: Layer) -> tuple[str, ...]:
        """A crop's `like` only lends its shape, which the plan fixed."""
        return layer.inputs[:1]
