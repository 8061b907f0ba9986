"""Plans: one assignment of a network's unknowns, and every layer's shapes under it.

Each layer is walked with `planner.walk.layer_transfer`, the step the solver shares.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from planner.constraints import Ref, evaluate, lookup_in
from planner.constraints import shown as quoted
from planner.domains import Unknown
from planner.errors import ConstraintError, InfeasibleError, LayerError, SpecError, UnknownLayer
from planner.graph import Network
from planner.ops import OPS, Rule
from planner.receptive import receptive_fields
from planner.walk import broken_rules, instantiate, layer_transfer, located


@dataclass(frozen=True)
class LayerPlan:
    name: str
    op: str
    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...]
    params: dict[str, Any]
    solved: frozenset[str] = frozenset()  # names of params that hold an unknown of the spec
    inputs: tuple[str, ...] = ()  # the layers it reads ("input" is the network's input)
    input_shapes: tuple[tuple[int, ...], ...] = ()  # one per input
    attrs: dict[str, Any] = field(default_factory=dict)  # fixed attributes back ends read, unreported: bias, p

    @property
    def params_count(self) -> int:
        """Learnable parameters, as `sum(p.numel() for p in module.parameters())` of the PyTorch layer."""
        return int(OPS[self.op].params_count(self))

    @property
    def macs(self) -> int:
        """Multiply-accumulates at the plan's batch size, as fvcore counts them (one fused multiply-add each)."""
        return int(OPS[self.op].macs(self)) * self.output_shape[0]

    def to_dict(self) -> dict[str, Any]:
        d = {
            "name": self.name,
            "op": self.op,
            "input_shape": list(self.input_shape),
            "output_shape": list(self.output_shape),
            "params": _jsonable(self.params),
            "inputs": list(self.inputs),
        }
        if len(self.input_shapes) > 1:
            d["input_shapes"] = _jsonable(self.input_shapes)
        d["params_count"], d["macs"] = self.params_count, self.macs
        return d


ACTIVATION_BYTES = 4  # float32


@dataclass(frozen=True)
class Plan:
    """One assignment of the spec's unknowns and the shapes it gives every layer."""

    input_shape: tuple[int, ...]
    layers: tuple[LayerPlan, ...]
    assignment: dict[str, int]  # unknown name -> value
    verified: bool | None = None
    verification: str | None = None  # how it was verified, e.g. "executed in NumPy at batch 1"
    objective: int | float | None = None  # a receptive field behind a transposed convolution is a fraction
    for_all: bool = False  # the plan holds for every size of the spec's for_all input axes

    def waste(self) -> list[tuple[LayerPlan, Rule]]:
        """The degenerate layers of the plan (`Op.degenerate`): rows of zeros, windows of padding only."""
        return [(ly, rule) for ly in self.layers for rule in OPS[ly.op].degenerate(ly) if rule.holds]

    def layer(self, name: str) -> LayerPlan:
        """The layer called `name`; raises UnknownLayer (a KeyError) naming the plan's layers."""
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise UnknownLayer(f"no layer named {name!r}; the layers are: {', '.join(ly.name for ly in self.layers)}")

    @property
    def totals(self) -> dict[str, int | float]:
        """The model summary: learnable parameters, multiply-accumulates (FLOPs are 2 x MACs) and the
        activation memory torchinfo calls the forward/backward pass size: every layer's float32 output,
        twice (values and gradients), in MB of 10^6 bytes."""
        outputs = sum(math.prod(ly.output_shape) for ly in self.layers)
        return {
            "params": sum(ly.params_count for ly in self.layers),
            "macs": sum(ly.macs for ly in self.layers),
            "activations_mb": round(2 * ACTIVATION_BYTES * outputs / 1e6, 2),
        }

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "input_shape": list(self.input_shape),
            "layers": [ly.to_dict() for ly in self.layers],
            "totals": self.totals,
        }
        if self.objective is not None:
            d["objective"] = self.objective
        d["verified"] = bool(self.verified)
        if self.for_all:
            d["for_all"] = True
        return d


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (tuple, list)):
        return [_jsonable(v) for v in value]
    return value


def _contains_unknown(value: Any) -> bool:
    if isinstance(value, Unknown):
        return True
    return isinstance(value, tuple) and any(_contains_unknown(v) for v in value)


def compute_plan(network: Network, assignment: Mapping[Unknown, int]) -> Plan:
    """Every layer's shapes under a full assignment, in ints; raises SpecError naming each broken rule."""
    env = assignment.__getitem__
    input_shape = tuple(instantiate(t, env) for t in network.input_shape)
    shapes: dict[str, tuple[int, ...]] = {"input": input_shape}
    layers = []
    for node in network.nodes:
        inputs = tuple(shapes[name] for name in node.inputs)
        try:
            transfer = layer_transfer(network, node, inputs, env)
        except LayerError as e:
            raise SpecError(located(network, node, e.code, e.message, e.param)) from None
        broken = broken_rules(transfer)
        if broken:  # later layers would only repeat the damage
            raise InfeasibleError([located(network, node, r.code, r.message, r.param) for r in broken])
        shapes[node.name] = transfer.shape
        shapes.update(zip(node.outputs[1:], transfer.pieces, strict=True))  # a split's pieces
        solved = frozenset(key for key, value in node.params.items() if _contains_unknown(value))
        layers.append(
            LayerPlan(
                node.name,
                node.op,
                inputs[0],
                transfer.shape,
                transfer.params,
                solved,
                node.inputs,
                inputs,
                transfer.attrs,
            )
        )
    by_name = {layer.name: layer for layer in layers}
    fields = (
        receptive_fields([(ly.name, ly.op, ly.inputs, ly.params, ly.input_shape) for ly in layers], network.rank)
        if network.constraints
        else {}
    )

    def lookup(ref: Ref) -> int:
        if ref.layer == "input":
            return lookup_in({}, input_shape, ref, fields.get("input"))
        return lookup_in(by_name[ref.layer].params, by_name[ref.layer].output_shape, ref, fields.get(ref.layer))

    for constraint in network.constraints:
        try:
            holds = evaluate(constraint.expr, lookup)
        except ConstraintError as e:
            raise SpecError(network.diagnostic(("constraints", constraint.position), "constraint", str(e))) from None
        if not holds:
            shown = ", ".join(f"{ref}={lookup(ref)}" for ref in dict.fromkeys(constraint.refs()))
            message = f"constraint '{quoted(constraint.text)}' does not hold ({shown})"
            raise InfeasibleError(network.diagnostic(("constraints", constraint.position), "constraint", message))
    values = {u.name: assignment[u] for u in network.unknowns}
    return Plan(input_shape, tuple(layers), values)
