"""One object per op: `OPS[op]` is its `Op` (shape transfer and rules, receptive field, cost).

Adding an op: write its `Op` in the module of its family (or a new module here) and give it one
entry below; then one entry per back end (`planner.executor.run.LAYERS`, `planner.export`'s
`@exports`)."""

from __future__ import annotations

from planner.ops.base import Call, Field, Layer, Op, Rule, Shape, Simple, Transfer
from planner.ops.conv import Conv, ConvTranspose
from planner.ops.merge import Crop, Join, add, concat
from planner.ops.pool import AdaptiveAvgPool, AvgPool, MaxPool
from planner.ops.reshape import BatchNorm, Dropout, Flatten, Linear, Upsample, pad, same_shape

_ALL: tuple[Op, ...] = (
    Conv(),
    ConvTranspose(),
    MaxPool(),
    AvgPool(),
    AdaptiveAvgPool(),
    Upsample(),
    Simple("pad", pad),
    Crop(),
    Join("concat", concat),
    Join("add", add),
    Flatten(),
    Linear(),
    Simple("relu", same_shape),
    Simple("sigmoid", same_shape),
    Simple("tanh", same_shape),
    Simple("silu", same_shape),
    BatchNorm("batchnorm", same_shape),
    Dropout("dropout", same_shape),
    Simple("identity", same_shape),
)
OPS: dict[str, Op] = {op.name: op for op in _ALL}

__all__ = ["OPS", "Call", "Field", "Layer", "Op", "Rule", "Shape", "Transfer"]
