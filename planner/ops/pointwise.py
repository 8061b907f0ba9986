"""Shape-preserving ops beyond relu and batchnorm: activations with a parameter, softmax, and the norms
(layernorm, groupnorm, instancenorm) with the rules PyTorch's modules check."""

from __future__ import annotations

from math import prod
from typing import Any, cast

from planner import arithmetic as ar
from planner.arithmetic import Num
from planner.errors import LayerError
from planner.ops.base import Call, Layer, Rule, Simple, Transfer, TransferFn
from planner.ops.reshape import same_shape
from planner.ops.tensor import _axis
from planner.spec import models


class Activation(Simple):
    """A shape-preserving op whose fixed settings (negative_slope, alpha, ...) back ends read."""

    def __init__(
        self, name: str, settings: tuple[str, ...] = (), transfer: TransferFn = same_shape, *, apart: bool = False
    ):
        super().__init__(name, transfer, apart=apart)
        self.settings = settings

    def attributes(self, model: Any) -> dict[str, Any]:
        return {key: getattr(model, key) for key in self.settings}


def softmax(call: Call) -> Transfer:
    """Softmax along `dim` (the channels by default)."""
    shape = call.inputs[0]
    return Transfer(shape, (), {"dim": _axis(cast(models.Softmax, call.model).dim, len(shape), "dim")})


def layernorm(call: Call) -> Transfer:
    """nn.LayerNorm(normalized_shape): the input's last dims must be `normalized_shape`."""
    shape, given = call.inputs[0], cast(models.LayerNorm, call.model).normalized_shape
    dims = (given,) if isinstance(given, int) else tuple(given)
    if len(dims) >= len(shape):
        raise LayerError(
            "rank",
            f"normalized_shape {list(dims)} names {len(dims)} trailing dims, but the input has only "
            f"{len(shape) - 1} besides the batch axis",
            "normalized_shape",
        )
    first = len(shape) - len(dims)
    rules = tuple(
        Rule(
            shape[first + n] == d,
            "normalized-shape",
            "normalized_shape {} must be the input's last dims, but its shape is {} on dim {}",
            (list(dims), shape, first + n),
            "normalized_shape",
        )
        for n, d in enumerate(dims)
    )
    return Transfer(shape, rules, {"normalized_shape": dims})


def groupnorm(call: Call) -> Transfer:
    """nn.GroupNorm(num_groups, C): the channels split into num_groups equal groups."""
    shape, g = call.inputs[0], cast(models.GroupNorm, call.model).num_groups
    if len(shape) < 2:
        raise LayerError("rank", "groupnorm needs an input with a channel axis")
    rule = Rule(
        shape[1] % g == 0,
        "groups",
        "groupnorm needs channels divisible by num_groups ({}), but its input has {} channels",
        (g, shape[1]),
        "num_groups",
    )
    return Transfer(shape, (rule,), {"num_groups": g})


def instancenorm(call: Call) -> Transfer:
    """nn.InstanceNormNd: statistics per sample and channel, so more than one spatial cell is needed."""
    spatial = call.spatial_input()
    rule = Rule(
        ar.any_of(*(i > 1 for i in spatial)),
        "size",
        "instancenorm needs more than one spatial cell per channel (PyTorch refuses spatial size {})",
        (list(spatial),),
    )
    return Transfer(call.inputs[0], (rule,))


class LayerNorm(Activation):
    def __init__(self) -> None:
        super().__init__("layernorm", ("eps", "elementwise_affine", "bias"), layernorm)

    def params_count(self, layer: Layer) -> Num:
        if not layer.attrs["elementwise_affine"]:
            return 0
        return prod(layer.params["normalized_shape"]) * (2 if layer.attrs["bias"] else 1)


class GroupNorm(Activation):
    def __init__(self, name: str = "groupnorm", transfer: TransferFn = groupnorm) -> None:
        super().__init__(name, ("eps", "affine"), transfer)

    def params_count(self, layer: Layer) -> Num:
        return 2 * layer.input_shape[1] if layer.attrs["affine"] else 0

    def channel_unit(self, layer: Layer) -> int:
        return layer.params["num_groups"]


class InstanceNorm(GroupNorm):
    def __init__(self) -> None:
        super().__init__("instancenorm", instancenorm)

    def channel_unit(self, layer: Layer) -> int:
        return 1
