"""One shape transfer per op: `TRANSFERS[op](call) -> Transfer`."""

from __future__ import annotations

from planner.ops.base import Call, Rule, Shape, Transfer, TransferFn
from planner.ops.conv import conv, conv_transpose
from planner.ops.merge import add, concat, crop
from planner.ops.pool import adaptive_avgpool, avgpool, maxpool
from planner.ops.reshape import flatten, linear, pad, same_shape, upsample

TRANSFERS: dict[str, TransferFn] = {
    "conv": conv,
    "conv_transpose": conv_transpose,
    "maxpool": maxpool,
    "avgpool": avgpool,
    "adaptive_avgpool": adaptive_avgpool,
    "upsample": upsample,
    "pad": pad,
    "crop": crop,
    "concat": concat,
    "add": add,
    "flatten": flatten,
    "linear": linear,
    **{op: same_shape for op in ("relu", "sigmoid", "tanh", "batchnorm", "dropout", "identity")},
}

__all__ = ["TRANSFERS", "Call", "Rule", "Shape", "Transfer"]
