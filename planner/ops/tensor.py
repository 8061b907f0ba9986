"""Ops that cut, reduce or rearrange a tensor's axes: slice, mean, permute, pixel_shuffle, pixel_unshuffle."""

from __future__ import annotations

from math import prod
from typing import Any, cast

from planner import arithmetic as ar
from planner.errors import LayerError
from planner.ops.base import Call, Field, Layer, Op, Rule, Shape, Transfer
from planner.spec import models


def _axis(axis: int, rank: int, key: str) -> int:
    """A dim index (negative counts from the end), checked against the rank."""
    if not -rank <= axis < rank:
        raise LayerError("rank", f"'{key}' is {axis}, but the input has {rank} dims (0 to {rank - 1})", key)
    return axis % rank


def slice_(call: Call) -> Transfer:
    """x[..., start:end:step] on one axis, as Python and PyTorch slice: a negative bound counts from the end,
    bounds are clipped to the axis, and the result must not be empty."""
    shape, m = call.inputs[0], cast(models.Slice, call.model)
    axis = _axis(m.axis, len(shape), "axis")
    if axis == 0:
        raise LayerError("value", "slice cuts a channel or spatial axis, not the batch axis (axis 0)", "axis")
    size = shape[axis]
    begin = ar.slice_bound(m.start, size)
    end = size if m.end is None else ar.slice_bound(m.end, size)
    length = ar.slice_length(begin, end, m.step)
    stop = "" if m.end is None else m.end
    rule = Rule(
        length >= 1,
        "empty-slice",
        "the slice [{}:{}:{}] of axis {} (size {}) is empty",
        (m.start, stop, m.step, axis, size),
        "end" if "end" in m.model_fields_set else "start",
    )
    out = (*shape[:axis], length, *shape[axis + 1 :])
    return Transfer(out, (rule,), {"axis": axis, "start": begin, "end": end, "step": m.step})


class Slice(Op):
    """One axis cut down; on a spatial axis, the field stays and the jump grows by the step."""

    name = "slice"
    monotone = False  # x[-1:5] is empty once the axis is longer than 5

    def transfer(self, call: Call) -> Transfer:
        return slice_(call)

    def attributes(self, model: Any) -> dict[str, Any]:
        """The bounds as written: back ends slice with them, so Python's and PyTorch's reading checks ours."""
        return {"written": (model.start, model.end, model.step)}

    def receptive(self, fields: tuple[Field, ...], params: dict[str, Any], input_shape: tuple) -> Field | None:
        (r, j), a = fields[0], params["axis"] - 2
        if a < 0:
            return fields[0]
        return r, tuple(jump * params["step"] if n == a else jump for n, jump in enumerate(j))


def split(call: Call) -> Transfer:
    """torch.split with `sizes` (they must add up to the axis) or torch.chunk with `chunks` (every piece
    at least 1): one output per piece, `name[0]`, `name[1]`, ...; the layer's own shape is the first."""
    shape, m = call.inputs[0], cast(models.Split, call.model)
    axis = _axis(m.axis, len(shape), "axis")
    if axis == 0:
        raise LayerError("value", "split cuts a channel or spatial axis, not the batch axis (axis 0)", "axis")
    if (m.sizes is None) == (m.chunks is None):
        raise LayerError(
            "value", "split needs exactly one of 'sizes' (torch.split) and 'chunks' (torch.chunk)", "sizes"
        )
    size = shape[axis]
    if m.sizes is not None:
        sizes: tuple = tuple(m.sizes)
        rules = [
            Rule(
                sum(sizes) == size,
                "split-sizes",
                "the split sizes add up to {}, but axis {} has {}",
                (sum(sizes), axis, size),
                "sizes",
            )
        ]
    else:
        sizes = ar.chunk_sizes(size, m.chunks or 2)
        rules = [
            Rule(
                piece >= 1,
                "split-chunks",
                "axis {} of size {} makes fewer than {} chunks (chunk {} would be empty)",
                (axis, size, m.chunks, k),
                "chunks",
            )
            for k, piece in enumerate(sizes)
        ]
    pieces = tuple((*shape[:axis], piece, *shape[axis + 1 :]) for piece in sizes)
    return Transfer(pieces[0], tuple(rules), {"axis": axis, "sizes": sizes}, pieces=pieces)


class Split(Op):
    """A cut of one axis into pieces; on a spatial axis each piece keeps the field and the jump."""

    name = "split"
    monotone = False  # a chunk's last piece shrinks as the axis grows (chunk(6, 3) = 2, 2, 2; chunk(7, 3) = 3, 3, 1)

    def transfer(self, call: Call) -> Transfer:
        return split(call)

    def attributes(self, model: Any) -> dict[str, Any]:
        """`sizes` or `chunks` as written: the back ends cut with them, so NumPy and torch check the pieces."""
        return {"written": (model.sizes, model.chunks)}


def _mean_axes(call: Call) -> tuple[int, ...]:
    shape, m = call.inputs[0], cast(models.Mean, call.model)
    if m.axes is None:
        if len(shape) < 3:
            raise LayerError("rank", "mean over the spatial axes needs an input that has some; give 'axes'", "axes")
        return tuple(range(2, len(shape)))
    axes = tuple(_axis(a, len(shape), "axes") for a in m.axes)
    if len(set(axes)) != len(axes):
        raise LayerError("value", f"'axes' names a dim twice: {list(m.axes)}", "axes")
    if 0 in axes and not m.keepdim:
        raise LayerError("value", "mean over the batch axis (0) must keep it: set keepdim: true", "axes")
    return tuple(sorted(axes))


def mean(call: Call) -> Transfer:
    """torch.mean over `axes` (default: every spatial axis): each becomes 1 with keepdim, else goes."""
    shape, axes, keepdim = call.inputs[0], _mean_axes(call), cast(models.Mean, call.model).keepdim
    if keepdim:
        out: Shape = tuple(1 if d in axes else size for d, size in enumerate(shape))
    else:
        out = tuple(size for d, size in enumerate(shape) if d not in axes)
    return Transfer(out, (), {"axes": axes, "keepdim": keepdim})


class Mean(Op):
    """A reduction: kept spatial axes it averages see the whole axis (one window of the input's size)."""

    name = "mean"

    def transfer(self, call: Call) -> Transfer:
        return mean(call)

    def spatial_rank(self, model: Any, rank: int) -> int:
        if model.keepdim:
            return rank
        axes = range(2, rank + 2) if model.axes is None else [a % (rank + 2) for a in model.axes]
        return rank - len({a for a in axes if a >= 2})

    def receptive(self, fields: tuple[Field, ...], params: dict[str, Any], input_shape: tuple) -> Field | None:
        (r, j), axes = fields[0], params["axes"]
        if not params["keepdim"]:
            return None  # the dims after the first it drops are no longer where they were
        spatial = [a - 2 for a in axes if a >= 2]
        steps = [
            ar.adaptive_receptive_step(r[a], j[a], input_shape[2 + a], 1) if a in spatial else (r[a], j[a])
            for a in range(len(r))
        ]
        return tuple(x for x, _ in steps), tuple(y for _, y in steps)


def permute(call: Call) -> Transfer:
    """x.permute(dims) that keeps the batch and channel axes first: the spatial axes reordered."""
    shape, given = call.inputs[0], cast(models.Permute, call.model).dims
    dims = tuple(_axis(d, len(shape), "dims") for d in given) if len(given) == len(shape) else ()
    if sorted(dims) != list(range(len(shape))) or dims[:2] != (0, 1):
        raise LayerError(
            "value",
            f"dims {list(given)} must reorder the {len(shape) - 2} spatial axes of the input, keeping 0 and 1 first",
            "dims",
        )
    return Transfer(tuple(shape[d] for d in dims), (), {"dims": dims})


class Permute(Op):
    """The spatial axes reordered: each keeps its field and jump."""

    name = "permute"

    def transfer(self, call: Call) -> Transfer:
        return permute(call)

    def receptive(self, fields: tuple[Field, ...], params: dict[str, Any], input_shape: tuple) -> Field | None:
        (r, j), order = fields[0], [d - 2 for d in params["dims"][2:]]
        return tuple(r[a] for a in order), tuple(j[a] for a in order)


def reshape(call: Call) -> Transfer:
    """torch.reshape(x, (N, C, *shape)): the spatial elements keep their count; a -1 takes what is left."""
    shape, target = call.inputs[0], list(cast(models.Reshape, call.model).shape)
    if target.count(-1) > 1 or 0 in target:
        raise LayerError("value", f"'shape' {target} may hold one -1 (inferred) and no 0", "shape")
    elements = prod(shape[2:])
    known = prod(d for d in target if d != -1)
    if -1 in target:
        out: Shape = tuple(ar.floor_div(elements, known) if d == -1 else d for d in target)
        rules = [
            Rule(
                elements % known == 0,
                "reshape",
                "{} spatial elements are no multiple of {}",
                (elements, known),
                "shape",
            )
        ]
    else:
        out = tuple(target)
        rules = [
            Rule(
                elements == known,
                "reshape",
                "{} spatial elements cannot take the shape {}",
                (elements, target),
                "shape",
            )
        ]
    return Transfer((shape[0], shape[1], *out), tuple(rules), {"shape": out})


class Reshape(Op):
    """The spatial axes reshaped; a cell's place on the new axes no longer says where it lies on the input."""

    name = "reshape"

    def transfer(self, call: Call) -> Transfer:
        return reshape(call)

    def attributes(self, model: Any) -> dict[str, Any]:
        """The shape as written: NumPy and torch infer its -1 themselves, a check of the plan's."""
        return {"written": tuple(model.shape)}

    def receptive(self, fields: tuple[Field, ...], params: dict[str, Any], input_shape: tuple) -> Field | None:
        return None

    def spatial_rank(self, model: Any, rank: int) -> int:
        return len(model.shape)


def _two_spatial(call: Call) -> Shape:
    spatial = call.spatial_input()
    if len(spatial) != 2:
        raise LayerError("rank", f"{call.model.op} takes 2 spatial axes [N, C, H, W]; the input has {len(spatial)}")
    return spatial


def pixel_shuffle(call: Call) -> Transfer:
    """nn.PixelShuffle(r): [N, C, H, W] -> [N, C / r^2, H r, W r]; C must be a multiple of r^2."""
    spatial, r = _two_spatial(call), cast(models.PixelShuffle, call.model).upscale_factor
    n, c = call.inputs[0][:2]
    rule = Rule(
        c % (r * r) == 0,
        "channels",
        "pixel_shuffle by {} needs channels divisible by {} (upscale_factor squared), but the input has {}",
        (r, r * r, c),
        "upscale_factor",
    )
    out = (n, ar.shuffled_channels(c, r), *(ar.upsample_output(i, r) for i in spatial))
    return Transfer(out, (rule,), {"upscale_factor": r})


def pixel_unshuffle(call: Call) -> Transfer:
    """nn.PixelUnshuffle(r): [N, C, H, W] -> [N, C r^2, H / r, W / r]; H and W must be multiples of r."""
    spatial, r = _two_spatial(call), cast(models.PixelUnshuffle, call.model).downscale_factor
    n, c = call.inputs[0][:2]
    rules = tuple(
        Rule(
            i % r == 0,
            "size",
            "pixel_unshuffle by {} needs spatial sizes divisible by it, but axis {} has {}",
            (r, a, i),
            "downscale_factor",
        )
        for a, i in enumerate(spatial)
    )
    out = (n, c * r * r, *(ar.floor_div(i, r) for i in spatial))
    return Transfer(out, rules, {"downscale_factor": r})


class PixelShuffle(Op):
    """Channels to pixels: each output cell comes from one input cell; the jump shrinks by r."""

    name = "pixel_shuffle"

    def transfer(self, call: Call) -> Transfer:
        return pixel_shuffle(call)

    def receptive(self, fields: tuple[Field, ...], params: dict[str, Any], input_shape: tuple) -> Field | None:
        (r, j), f = fields[0], params["upscale_factor"]
        return r, tuple(ar.resized_jump(jump, 1, f) for jump in j)

    def channel_unit(self, layer: Layer) -> int:
        return layer.params["upscale_factor"] ** 2


class PixelUnshuffle(Op):
    """Pixels to channels: each output cell holds an r x r block, as a convolution with k = s = r sees it."""

    name = "pixel_unshuffle"

    def transfer(self, call: Call) -> Transfer:
        return pixel_unshuffle(call)

    def receptive(self, fields: tuple[Field, ...], params: dict[str, Any], input_shape: tuple) -> Field | None:
        (r, j), f = fields[0], params["downscale_factor"]
        steps = [ar.receptive_step(r[a], j[a], f, f, 1) for a in range(len(r))]
        return tuple(x for x, _ in steps), tuple(y for _, y in steps)
