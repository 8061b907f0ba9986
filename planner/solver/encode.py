"""The Z3 encoding of a network: one Int per unknown, bounded by its domain; per layer,
output sizes tied to inputs by the op's transfer and guarded by its rules.

Unknown strides and dilations multiply and divide other unknowns. To keep the encoding
in linear integer arithmetic, a layer whose stride or dilation is unknown is encoded
as a disjunction over their (small) domains; each case instantiates the transfer with
ints there. Domains too large to list stay symbolic (non-linear; Z3 may answer unknown).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field

import z3

from planner.arithmetic import Num
from planner.graph import Network, Node, Unknown
from planner.ops import LayerError, Shape
from planner.constraints import ConstraintError, evaluate, lookup_in
from planner.errors import SpecError
from planner.plan import layer_transfer, located

SPLIT_PARAMS = ("stride", "dilation")
MAX_CASES = 256  # per layer


@dataclass
class Encoding:
    network: Network
    variables: dict[Unknown, z3.ArithRef] = field(default_factory=dict)
    domains: list[z3.BoolRef] = field(default_factory=list)  # always assumed
    layers: dict[str, z3.BoolRef] = field(default_factory=dict)  # per layer, tracked for explanations
    shapes: dict[str, Shape] = field(default_factory=dict)
    params: dict[str, dict] = field(default_factory=dict)  # per layer, its reported params as terms
    constraints: dict[int, z3.BoolRef] = field(default_factory=dict)  # `constraints:` by position

    def var(self, unknown: Unknown) -> z3.ArithRef:
        return self.variables[unknown]

    def assignment(self, model: z3.ModelRef) -> dict[Unknown, int]:
        return {u: model.eval(v, model_completion=True).as_long() for u, v in self.variables.items()}


def domain_constraint(var: z3.ArithRef, unknown: Unknown) -> z3.BoolRef:
    d = unknown.domain
    if d.values is not None:
        return z3.Or([var == v for v in d.members()])
    parts = [var >= d.lo, var <= d.hi]
    if d.step != 1:
        parts.append(var % d.step == 0)
    return z3.And(parts)


def encode(network: Network) -> Encoding:
    """Encode the whole network; raises SpecError for structural layer problems."""
    enc = Encoding(network)
    for u in network.unknowns:
        enc.variables[u] = z3.Int(u.name)
        enc.domains.append(domain_constraint(enc.variables[u], u))
    enc.shapes["input"] = tuple(enc.var(t) if isinstance(t, Unknown) else t for t in network.input_shape)
    for node in network.nodes:
        inputs = tuple(enc.shapes[name] for name in node.inputs)
        try:
            shape, params, constraint = _encode_layer(enc, node, inputs)
        except LayerError as e:
            raise SpecError(located(network, node, e.code, e.message, e.param)) from None
        enc.shapes[node.name], enc.params[node.name], enc.layers[node.name] = shape, params, constraint
    for constraint in network.constraints:
        lookup = lambda ref: lookup_in(enc.params.get(ref.layer, {}), enc.shapes[ref.layer], ref)  # noqa: E731
        try:
            enc.constraints[constraint.position] = evaluate(constraint.expr, lookup)
        except ConstraintError as e:
            raise SpecError(network.diagnostic(("constraints", constraint.position), "constraint", str(e))) from None
    return enc


def _split_unknowns(node: Node) -> list[Unknown]:
    found: list[Unknown] = []
    for key in SPLIT_PARAMS:
        for term in node.params.get(key) or ():
            if isinstance(term, Unknown) and term not in found:
                found.append(term)
    return found


def _encode_layer(enc: Encoding, node: Node, inputs: tuple[Shape, ...]) -> tuple[Shape, dict, z3.BoolRef]:
    split = _split_unknowns(node)
    if math.prod(u.domain.size() for u in split) > MAX_CASES:
        split = []
    cases = [dict(zip(split, values)) for values in itertools.product(*(u.domain.members() for u in split))]
    transfers = [layer_transfer(enc.network, node, inputs, enc.var, overrides) for overrides in cases]
    ties: list[list[z3.BoolRef]] = [[] for _ in cases]

    def merge(name: str, values: list[Num]) -> Num:
        """One term for a value across the cases: the common int, the single case's term, or a tied variable."""
        if all(isinstance(v, int) and v == values[0] for v in values) or len(values) == 1:
            return values[0]
        var = z3.Int(name)
        for tie, value in zip(ties, values):
            tie.append(var == value)
        return var

    shape = tuple(merge(f"{node.name}.shape[{axis}]", [t.shape[axis] for t in transfers])
                  for axis in range(len(transfers[0].shape)))
    params = {key: _merge_nested(f"{node.name}.{key}", [t.params[key] for t in transfers], merge)
              for key in transfers[0].params}
    options = [z3.And(*(enc.var(u) == v for u, v in overrides.items()), *tie, *(r.holds for r in t.rules))
               for overrides, tie, t in zip(cases, ties, transfers)]
    if len(cases) == 1:  # no case split: name non-int sizes so the terms stay small
        shape = tuple(size if isinstance(size, int) else _named(f"{node.name}.shape[{axis}]", size, options)
                      for axis, size in enumerate(shape))
    return shape, params, z3.Or(options) if len(options) > 1 else options[0]


def _named(name: str, term: Num, options: list) -> z3.ArithRef:
    var = z3.Int(name)
    options[0] = z3.And(options[0], var == term)
    return var


def _merge_nested(name: str, values: list, merge) -> object:
    first = values[0]
    if isinstance(first, tuple):
        return tuple(_merge_nested(f"{name}[{i}]", [v[i] for v in values], merge) for i in range(len(first)))
    if isinstance(first, (bool, float)) or not isinstance(first, (int, z3.ArithRef)):
        return first
    return merge(name, values)
