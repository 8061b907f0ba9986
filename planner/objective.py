"""Objectives (SPEC `objective:`): minimise `params`, `flops` or `kernel_sum`, or maximise
`receptive_field`, written once over ints and Z3 terms.

- params: learnable parameters, as PyTorch counts them (weights, biases, batchnorm's scale and shift);
- flops: 2 x multiply-accumulates of convolutions, transposed convolutions and linear layers, at batch 1;
- kernel_sum: the sum of every kernel size on every axis (conv, conv_transpose, pooling);
- receptive_field: of the last layer that still has spatial axes, on its first spatial axis.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from planner.arithmetic import Num
from planner.ops import OPS, Layer
from planner.receptive import receptive_fields


@dataclass(frozen=True)
class LayerView:
    """What an objective reads of a layer, in ints or Z3 terms (the fields of a LayerPlan it needs)."""

    name: str
    op: str
    inputs: tuple[str, ...]
    params: dict[str, Any]
    input_shape: tuple
    output_shape: tuple
    attrs: dict[str, Any]


def objective_value(kind: str, layers: Sequence[Layer], rank: int) -> Num:
    """The objective's value for these layers (ints, or a Z3 term)."""
    if kind == "params":
        return sum((OPS[ly.op].params_count(ly) for ly in layers), 0)
    if kind == "flops":
        return sum((2 * OPS[ly.op].macs(ly) for ly in layers), 0)
    if kind == "kernel_sum":
        return sum((sum(ly.params["kernel"]) for ly in layers if "kernel" in ly.params), 0)
    assert kind == "receptive_field", kind
    fields = receptive_fields([(ly.name, ly.op, ly.inputs, ly.params, ly.input_shape) for ly in layers], rank)
    last = [field for ly in layers if (field := fields[ly.name]) is not None]
    return last[-1][0][0] if last else 1


def plan_value(network, plan) -> int | float:
    """The network's objective for a solved plan."""
    kind = network.objective[1]
    value = objective_value(kind, plan.layers, network.rank)
    return int(value) if value == int(value) else float(value)


def encoded_value(enc) -> Num:
    """The network's objective as a Z3 term of an encoding."""
    network = enc.network
    layers = [
        LayerView(
            node.name,
            node.op,
            node.inputs,
            enc.params[node.name],
            enc.shapes[node.inputs[0]],
            enc.shapes[node.name],
            OPS[node.op].attributes(node.model),
        )
        for node in network.nodes
    ]
    return objective_value(network.objective[1], layers, network.rank)
