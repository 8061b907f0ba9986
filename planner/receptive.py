"""Receptive fields and jumps (the distance in input units between neighbouring outputs),
per layer and per spatial axis, over ints (exact fractions) or Z3 terms.

    r_out = r_in + (k_eff - 1) * j_in,   j_out = j_in * s        (conv, pooling)

A transposed convolution is the direct convolution over its stretched input, whose jump
is j_in / s; upsampling by f divides the jump by f. Joins (concat, add) take the larger
field. Fractions only arise there, so over Z3 terms those ops are refused.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any

import z3

from planner import arithmetic as ar
from planner.arithmetic import Num, is_int
from planner.errors import FieldUnsupported

SLIDING = ("conv", "maxpool", "avgpool")
SAME_FIELD = ("pad", "crop", "relu", "sigmoid", "tanh", "batchnorm", "dropout", "identity")

Field = tuple[tuple[Num, ...], tuple[Num, ...]]  # (receptive field per axis, jump per axis)




def _divide(j: Num, by: Num) -> Num:
    if is_int(j, by) or isinstance(j, Fraction) and is_int(by):
        return Fraction(j) / by
    raise FieldUnsupported("receptive fields through transposed convolutions or upsampling are only computed "
                           "for solved plans, not inside constraints")


def receptive_fields(layers: list[tuple[str, str, tuple[str, ...], dict[str, Any], tuple]], rank: int
                     ) -> dict[str, Field | None]:
    """Each layer's field, from (name, op, inputs, params, input shape) in order; None once the axes are gone."""
    fields: dict[str, Field | None] = {"input": ((1,) * rank, (1,) * rank)}
    for name, op, inputs, params, in_shape in layers:
        incoming = [fields[i] for i in inputs]
        field = incoming[0]
        if field is None or op in ("flatten", "linear"):
            fields[name] = None
            continue
        r, j = field
        if op in SLIDING:
            k, s = params["kernel"], params["stride"]
            d = params.get("dilation", (1,) * rank)
            steps = [ar.receptive_step(r[a], j[a], k[a], s[a], d[a]) for a in range(rank)]
            fields[name] = (tuple(x for x, _ in steps), tuple(y for _, y in steps))
        elif op == "conv_transpose":
            k, s, d = params["kernel"], params["stride"], params["dilation"]
            jumps = tuple(_divide(j[a], s[a]) for a in range(rank))
            fields[name] = (tuple(r[a] + (ar.effective_kernel(k[a], d[a]) - 1) * jumps[a] for a in range(rank)), jumps)
        elif op == "upsample":
            out = params.get("size") or tuple(i * params["scale_factor"] for i in in_shape[2:])
            fields[name] = (r, tuple(_divide(j[a] * in_shape[2 + a], out[a]) for a in range(rank)))
        elif op == "adaptive_avgpool":
            out = params["output_size"]
            bins = [ar.ceil_div(in_shape[2 + a], out[a]) for a in range(rank)]
            fields[name] = (tuple(r[a] + (bins[a] - 1) * j[a] for a in range(rank)),
                            tuple(_divide(j[a] * in_shape[2 + a], out[a]) for a in range(rank)))
        elif op in ("concat", "add"):
            live = [f for f in incoming if f is not None]
            fields[name] = (tuple(_largest([f[0][a] for f in live]) for a in range(rank)),
                            tuple(_largest([f[1][a] for f in live]) for a in range(rank)))
        else:
            assert op in SAME_FIELD, op
            fields[name] = field
    return fields


def _largest(values: list[Num]) -> Num:
    if not any(isinstance(v, z3.ArithRef) for v in values):
        return max(values)
    best = values[0]
    for v in values[1:]:
        best = ar.maximum(best, v)
    return best


def plan_fields(plan) -> dict[str, Field | None]:
    """Receptive fields of a solved plan's layers (exact; jumps may be fractions)."""
    rank = len(plan.input_shape) - 2
    return receptive_fields([(ly.name, ly.op, ly.inputs, ly.params, ly.input_shape) for ly in plan.layers], rank)


def show_field(value: Num) -> str:
    return str(value) if not isinstance(value, Fraction) or value.denominator != 1 else str(value.numerator)

