"""Plans: one assignment of a network's unknowns, and every layer's shapes under it.

`layer_transfer` is the one walk step shared by the Z3 encoding and the concrete plan
calculator: it instantiates a layer's terms, applies its op's transfer, and adds the
rules every layer has (sizes at least 1, element counts within int64, `expect`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from planner.arithmetic import Bool, Num, all_of
from planner.constraints import Ref, evaluate, lookup_in
from planner.constraints import shown as quoted
from planner.errors import ConstraintError, Diagnostic, InfeasibleError, LayerError, SpecError, UnknownLayer
from planner.graph import Network, Node, Unknown
from planner.ops import OPS, Call, Rule, Shape, Transfer
from planner.receptive import receptive_fields

INT64_MAX = 2**63 - 1  # no framework holds a size or an element count beyond int64


def instantiate(value: Any, env: Callable[[Unknown], Num]) -> Any:
    """Replace every Unknown inside a parameter value (tuples nest) by env(unknown)."""
    if isinstance(value, Unknown):
        return env(value)
    if isinstance(value, tuple):
        return tuple(instantiate(v, env) for v in value)
    return value


def layer_transfer(
    network: Network,
    node: Node,
    inputs: tuple[Shape, ...],
    env: Callable[[Unknown], Num],
    overrides: Mapping[Unknown, int] | None = None,
) -> Transfer:
    """The node's transfer with the rules every layer has; raises LayerError for structural problems."""
    lookup = env if not overrides else (lambda u: overrides[u] if u in overrides else env(u))
    params = {key: instantiate(value, lookup) for key, value in node.params.items()}
    op = OPS[node.op]
    transfer = op.transfer(Call(params, node.model, inputs, network.dialect))
    rules = list(transfer.rules)
    rules += [
        Rule(size >= 1, "size", "output size on axis {} is {}; every size must be at least 1", (a, size))
        for a, size in enumerate(transfer.shape[2:])
        if not isinstance(size, int) or size < 1
    ]
    if "input" in node.inputs:  # an input shape known in the spec is checked when it is loaded
        fits = fits_int64(inputs[node.inputs.index("input")])
        if fits is not True:
            rules.append(
                Rule(
                    fits,
                    "size-range",
                    "the input shape {} has more elements than int64 holds (2**63 - 1); no framework can hold it",
                    (inputs[node.inputs.index("input")],),
                )
            )
    fits = fits_int64(transfer.shape)
    if fits is not True:
        rules.append(
            Rule(
                fits,
                "size-range",
                "output shape {} has more elements than int64 holds (2**63 - 1); no framework can hold it",
                (transfer.shape,),
            )
        )
    if node.expect is not None:
        if len(node.expect) != len(transfer.shape):
            raise LayerError(
                "expect",
                f"'expect' has {len(node.expect)} entries but the layer's output has rank {len(transfer.shape)}",
                "expect",
            )
        shown = [("?" if e is None else e) for e in node.expect]
        rules += [
            Rule(
                got == want, "expect", "expected output shape {}, the layer gives {}", (shown, transfer.shape), "expect"
            )
            for got, want in zip(transfer.shape, node.expect, strict=True)
            if want is not None
        ]
    return Transfer(transfer.shape, tuple(rules), transfer.params, op.attributes(node.model))


def fits_int64(shape: Shape) -> Bool:
    """The tensor's element count is at most INT64_MAX: exact over ints and for one Z3 term among ints;
    for several Z3 terms, each at most the root of the bound that is left (enough, and linear)."""
    known, terms = 1, []
    for size in shape:
        if isinstance(size, int):
            known *= size
        else:
            terms.append(size)
    if known <= 0 or not terms:
        return known <= INT64_MAX
    left = INT64_MAX // known
    if len(terms) == 1:
        return terms[0] <= left
    root = _iroot(left, len(terms))
    return all_of(*(t <= root for t in terms))


def _iroot(n: int, k: int) -> int:
    """The largest r with r**k <= n (n >= 0)."""
    r = int(round(n ** (1 / k)))
    while r**k > n:
        r -= 1
    while (r + 1) ** k <= n:
        r += 1
    return r


def broken_rules(transfer: Transfer) -> list[Rule]:
    """The rules an int transfer breaks: the causes, not their symptoms, each said once for all axes it breaks on."""
    broken = [r for r in transfer.rules if not r.holds]
    broken = [r for r in broken if r.code != "size"] or broken  # a size below 1 is the symptom of the others
    merged: dict[tuple, tuple[Rule, list[str]]] = {}
    for rule in broken:
        match = _AXIS.search(rule.message)
        key = (rule.code, rule.param, _AXIS.sub("", rule.message))
        merged.setdefault(key, (rule, match, []))[2].extend([match.group(2)] if match else [])
    result = []
    for (code, param, message), (rule, match, axes) in merged.items():
        if len(axes) > 1:
            plural = {"axis": "axes", "dim": "dims"}[match.group(1)]
            rule = Rule(rule.holds, code, "{} on {} {}", (message, plural, ", ".join(axes)), param)
        result.append(rule)
    return result


_AXIS = re.compile(r" on (axis|dim) (\d+)$")


def located(network: Network, node: Node, code: str, message: str, param: str | None) -> Diagnostic:
    """A diagnostic pointing at the layer's key `param` when the spec writes it, else at the layer."""
    data = network.loaded.source.data["layers"][node.index]
    path = (*node.path, param) if param and param in data else node.path
    return network.diagnostic(path, code, f"{node.name}: {message}", layer=node.name)


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
    objective: int | None = None
    for_all: bool = False  # the plan holds for every size of the spec's for_all input axes

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
            values = ", ".join(f"{ref}={lookup(ref)}" for ref in dict.fromkeys(constraint.refs()))
            message = f"constraint '{quoted(constraint.text)}' does not hold ({values})"
            raise InfeasibleError(network.diagnostic(("constraints", constraint.position), "constraint", message))
    values = {u.name: assignment[u] for u in network.unknowns}
    return Plan(input_shape, tuple(layers), values)
