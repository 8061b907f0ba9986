"""Objectives (SPEC `objective:`): minimise `params`, `flops` or `kernel_sum`, or maximise
`receptive_field`, written once over ints and Z3 terms.

- params: learnable parameters, as PyTorch counts them (weights, biases, batchnorm's scale and shift);
- flops: 2 x multiply-accumulates of convolutions, transposed convolutions and linear layers, at batch 1;
- kernel_sum: the sum of every kernel size on every axis (conv, conv_transpose, pooling);
- receptive_field: of the last layer that still has spatial axes, on its first spatial axis.
"""

from __future__ import annotations

from dataclasses import dataclass
from math import prod
from typing import Any

from planner.arithmetic import Num
from planner.receptive import receptive_fields


@dataclass(frozen=True)
class LayerView:
    """What an objective reads of a layer, in ints or Z3 terms."""

    name: str
    op: str
    inputs: tuple[str, ...]
    params: dict[str, Any]
    input_shape: tuple
    output_shape: tuple
    bias: bool


def _params(ly: LayerView) -> Num:
    if ly.op in ("conv", "conv_transpose"):
        c_in, c_out, g = ly.input_shape[1], ly.params["out_channels"], ly.params["groups"]
        return c_in * (c_out // g) * prod(ly.params["kernel"]) + (c_out if ly.bias else 0)
    if ly.op == "linear":
        c_in, c_out = ly.params["in_features"], ly.params["out_features"]
        return c_in * c_out + (c_out if ly.bias else 0)
    if ly.op == "batchnorm":
        return 2 * ly.input_shape[1]
    return 0


def _flops(ly: LayerView) -> Num:
    if ly.op == "conv":
        per_output = (ly.input_shape[1] // ly.params["groups"]) * prod(ly.params["kernel"])
        return 2 * prod(ly.output_shape[1:]) * per_output
    if ly.op == "conv_transpose":
        per_input = (ly.params["out_channels"] // ly.params["groups"]) * prod(ly.params["kernel"])
        return 2 * prod(ly.input_shape[1:]) * per_input
    if ly.op == "linear":
        return 2 * ly.params["in_features"] * ly.params["out_features"]
    return 0


def objective_value(kind: str, layers: list[LayerView], rank: int) -> Num:
    """The objective's value for these layers (ints, or a Z3 term)."""
    if kind == "params":
        return sum((_params(ly) for ly in layers), 0)
    if kind == "flops":
        return sum((_flops(ly) for ly in layers), 0)
    if kind == "kernel_sum":
        return sum((sum(ly.params["kernel"]) for ly in layers if "kernel" in ly.params), 0)
    assert kind == "receptive_field", kind
    fields = receptive_fields([(ly.name, ly.op, ly.inputs, ly.params, ly.input_shape) for ly in layers], rank)
    last = [fields[ly.name] for ly in layers if fields[ly.name] is not None]
    return last[-1][0][0] if last else 1


def plan_value(network, plan) -> int | float:
    """The network's objective for a solved plan."""
    kind = network.objective[1]
    layers = [LayerView(ly.name, ly.op, ly.inputs, ly.params, ly.input_shape, ly.output_shape,
                        getattr(network.node(ly.name).model, "bias", True)) for ly in plan.layers]
    value = objective_value(kind, layers, network.rank)
    return int(value) if value == int(value) else float(value)


def encoded_value(enc) -> Num:
    """The network's objective as a Z3 term of an encoding."""
    network = enc.network
    layers = [LayerView(node.name, node.op, node.inputs, enc.params[node.name], enc.shapes[node.inputs[0]],
                        enc.shapes[node.name], getattr(node.model, "bias", True)) for node in network.nodes]
    return objective_value(network.objective[1], layers, network.rank)
