"""One object per op: `OPS[op]` is its `Op` (shape transfer and rules, receptive field, cost).

Adding an op: write its `Op` in the module of its family (or a new module here) and give it one
entry below; then one entry per back end (`planner.executor.run.LAYERS`, `planner.export`'s
`@exports`)."""

from __future__ import annotations

from planner.ops.base import Call, Field, Layer, Op, Rule, Shape, Simple, Transfer
from planner.ops.conv import Conv, ConvTranspose
from planner.ops.merge import Crop, Join, broadcast, concat
from planner.ops.pointwise import Activation, GroupNorm, InstanceNorm, LayerNorm, softmax
from planner.ops.pool import AdaptiveAvgPool, AdaptiveMaxPool, AvgPool, MaxPool
from planner.ops.reshape import BatchNorm, Dropout, Flatten, Linear, Upsample, pad, same_shape
from planner.ops.tensor import Mean, Permute, PixelShuffle, PixelUnshuffle, Reshape, Slice, Split

_ALL: tuple[Op, ...] = (
    Conv(),
    ConvTranspose(),
    MaxPool(),
    AvgPool(),
    AdaptiveAvgPool(),
    AdaptiveMaxPool(),
    Upsample(),
    Simple("pad", pad),
    Crop(),
    Join("concat", concat, apart=True),
    Join("add", broadcast, apart=True),
    Join("mul", broadcast, apart=True),
    Slice(),
    Split(),
    Reshape(),
    Mean(),
    Permute(),
    PixelShuffle(),
    PixelUnshuffle(),
    Flatten(),
    Linear(),
    Simple("relu", same_shape, apart=True),
    Simple("sigmoid", same_shape, apart=True),
    Simple("tanh", same_shape, apart=True),
    Simple("silu", same_shape, apart=True),
    Simple("hardswish", same_shape, apart=True),
    Simple("hardsigmoid", same_shape, apart=True),
    Simple("relu6", same_shape, apart=True),
    Activation("gelu", ("approximate",), apart=True),
    Activation("leaky_relu", ("negative_slope",), apart=True),
    Activation("elu", ("alpha",), apart=True),
    Simple("softmax", softmax),
    BatchNorm("batchnorm", same_shape, apart=True),
    LayerNorm(),
    GroupNorm(),
    InstanceNorm(),
    Dropout("dropout", same_shape, apart=True),
    Simple("identity", same_shape, apart=True),
)
OPS: dict[str, Op] = {op.name: op for op in _ALL}

__all__ = ["OPS", "Call", "Field", "Layer", "Op", "Rule", "Shape", "Transfer"]
