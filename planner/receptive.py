"""Receptive fields and jumps (the distance in input units between neighbouring outputs),
per layer and per spatial axis, over ints (exact fractions) or Z3 terms.

    r_out = r_in + (k_eff - 1) * j_in,   j_out = j_in * s        (conv, pooling)

A transposed convolution is the direct convolution over its stretched input, whose jump
is j_in / s; upsampling by f divides the jump by f. Joins (concat, add) take the larger
field. Fractions only arise there, so over Z3 terms those ops are refused. Each op's step
is its `Op.receptive` (planner/ops).
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any

from planner.arithmetic import Num
from planner.graph import layer_of
from planner.ops import OPS, Field


def receptive_fields(
    layers: list[tuple[str, str, tuple[str, ...], dict[str, Any], tuple]], rank: int
) -> dict[str, Field | None]:
    """Each layer's field, from (name, op, inputs, params, input shape) in order; None once the axes are gone."""
    fields: dict[str, Field | None] = {"input": ((1,) * rank, (1,) * rank)}
    for name, op, inputs, params, in_shape in layers:
        incoming = [fields[layer_of(i)] for i in inputs]  # a split's piece `s[i]` has the field of `s`
        if incoming[0] is None:
            fields[name] = None
            continue
        live = tuple(f for f in incoming if f is not None)
        fields[name] = OPS[op].receptive(live, params, in_shape)
    return fields


def plan_fields(plan) -> dict[str, Field | None]:
    """Receptive fields of a solved plan's layers (exact; jumps may be fractions)."""
    rank = len(plan.input_shape) - 2
    return receptive_fields([(ly.name, ly.op, ly.inputs, ly.params, ly.input_shape) for ly in plan.layers], rank)


def show_field(value: Num | Fraction) -> str:
    return str(value) if not isinstance(value, Fraction) or value.denominator != 1 else str(value.numerator)
