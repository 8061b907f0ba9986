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
from collections.abc import Mapping
from dataclasses import dataclass, field

import z3

from planner.arithmetic import Num
from planner.constraints import FIELDS, Ref, evaluate, lookup_in
from planner.domains import Unknown
from planner.errors import ConstraintError, FieldUnsupported, LayerError, SpecError
from planner.graph import Network, Node
from planner.ops import Shape
from planner.receptive import receptive_fields
from planner.walk import layer_transfer, located

SPLIT_PARAMS = ("stride", "dilation")
MAX_CASES = 256  # per layer


@dataclass
class Encoding:
    """Z3 terms and constraints of one copy of the network.

    Each layer's constraint is split into `definitions` (what its output sizes and derived
    parameters are) and `requirements` (its rules, `expect`): checking a plan for every
    input size negates only the requirements. A copy's input sizes can be fixed (`sizes`),
    which is how a for-all spec is sampled; `tag` keeps the copies' size variables apart.
    """

    network: Network
    ctx: z3.Context
    tag: str = ""
    variables: dict[Unknown, z3.ArithRef] = field(default_factory=dict)
    domains: list[z3.BoolRef] = field(default_factory=list)  # always assumed
    definitions: dict[str, z3.BoolRef] = field(default_factory=dict)
    requirements: dict[str, z3.BoolRef] = field(default_factory=dict)  # per layer, tracked for explanations
    shapes: dict[str, Shape] = field(default_factory=dict)
    params: dict[str, dict] = field(default_factory=dict)  # per layer, its reported params as terms
    constraints: dict[int, z3.BoolRef] = field(default_factory=dict)  # `constraints:` by position

    def var(self, unknown: Unknown) -> z3.ArithRef:
        return self.variables[unknown]

    def layer(self, name: str) -> z3.BoolRef:
        return z3.And(self.definitions[name], self.requirements[name])

    def all(self, *conditions) -> z3.BoolRef:
        """The conjunction, in this encoding's context (Python bools and no arguments included)."""
        return z3.And(*conditions, self.ctx)

    def assignment(self, model: z3.ModelRef) -> dict[Unknown, int]:
        return {u: model.eval(self.variables[u], model_completion=True).as_long() for u in self.network.unknowns}

    def all_constraints(self) -> list[z3.BoolRef]:
        return [*self.domains, *(self.layer(n) for n in self.definitions), *self.constraints.values()]


def is_linear(constraints: list[z3.BoolRef]) -> bool:
    """True when no product of two terms and no division by a term occurs (division by a number is linear)."""
    seen: set[int] = set()
    stack = [c for c in constraints if isinstance(c, z3.ExprRef)]
    while stack:
        e = stack.pop()
        if e.get_id() in seen:
            continue
        seen.add(e.get_id())
        if z3.is_app(e):
            kind = e.decl().kind()
            args = e.children()
            if kind == z3.Z3_OP_MUL and sum(not z3.is_int_value(a) for a in args) > 1:
                return False
            if kind in (z3.Z3_OP_IDIV, z3.Z3_OP_MOD, z3.Z3_OP_DIV, z3.Z3_OP_REM) and not z3.is_int_value(args[1]):
                return False
            stack.extend(args)
    return True


def new_solver(constraints: list[z3.BoolRef], ctx: z3.Context) -> z3.Solver:
    """A solver holding `constraints`: Z3's linear-integer solver when they are linear (several times
    faster on these encodings), its general one otherwise."""
    solver = z3.SolverFor("QF_LIA", ctx=ctx) if is_linear(constraints) else z3.Solver(ctx=ctx)
    solver.add(*constraints)
    return solver


def domain_constraint(var: z3.ArithRef, unknown: Unknown) -> z3.BoolRef:
    d = unknown.domain
    if d.values is not None:
        return z3.Or([var == v for v in d.members()])
    parts = [var >= d.lo, var <= d.hi]
    if d.step != 1:
        parts.append(var % d.step == 0)
    return z3.And(parts)


def encode(
    network: Network, sizes: Mapping[Unknown, int] | None = None, tag: str = "", ctx: z3.Context | None = None
) -> Encoding:
    """Encode the whole network; raises SpecError for structural layer problems.

    for_all input sizes are variables (with their domains) unless `sizes` fixes them.
    Each solve works in a context of its own, so that its answers do not depend on
    what was solved before in the same process.
    """
    enc = Encoding(network, ctx or z3.Context(), tag)
    for u in (*network.unknowns, *network.for_all):
        if sizes and u in sizes:
            enc.variables[u] = z3.IntVal(sizes[u], enc.ctx)
            continue
        enc.variables[u] = z3.Int(u.name, enc.ctx)
        enc.domains.append(domain_constraint(enc.variables[u], u))
    enc.shapes["input"] = tuple(_fixed(enc, t) for t in network.input_shape)
    for node in network.nodes:
        inputs = tuple(enc.shapes[name] for name in node.inputs)
        try:
            shape, pieces, params, definition, requirement = _encode_layer(enc, node, inputs)
        except LayerError as e:
            raise SpecError(located(network, node, e.code, e.message, e.param)) from None
        enc.shapes[node.name], enc.params[node.name] = shape, params
        enc.shapes.update(zip(node.outputs[1:], pieces, strict=True))  # a split's pieces
        enc.definitions[node.name], enc.requirements[node.name] = definition, requirement
    fields: dict = {}
    if any(ref.attr in FIELDS for c in network.constraints for ref in c.refs()):
        try:
            fields = receptive_fields(
                [(n.name, n.op, n.inputs, enc.params[n.name], enc.shapes[n.inputs[0]]) for n in network.nodes],
                network.rank,
            )
        except FieldUnsupported as e:
            raise SpecError(network.diagnostic(("constraints",), "constraint", str(e))) from None

    def lookup(ref: Ref) -> Num:
        return lookup_in(enc.params.get(ref.layer, {}), enc.shapes[ref.layer], ref, fields.get(ref.layer))

    for constraint in network.constraints:
        try:
            holds = evaluate(constraint.expr, lookup)
            enc.constraints[constraint.position] = enc.all(holds)
        except ConstraintError as e:
            raise SpecError(network.diagnostic(("constraints", constraint.position), "constraint", str(e))) from None
    return enc


def _fixed(enc: Encoding, term) -> Num:
    """An input term: an int, or the term of its unknown (a fixed for-all size stays an int)."""
    if not isinstance(term, Unknown):
        return term
    var = enc.var(term)
    return var.as_long() if z3.is_int_value(var) else var


def _split_unknowns(node: Node) -> list[Unknown]:
    found: list[Unknown] = []
    for key in SPLIT_PARAMS:
        for term in node.params.get(key) or ():
            if isinstance(term, Unknown) and term not in found:
                found.append(term)
    return found


def _encode_layer(enc: Encoding, node: Node, inputs: tuple[Shape, ...]):
    """(output shape, a split's pieces, reported params, definitions, requirements) of one layer."""
    split = _split_unknowns(node)
    if math.prod(u.domain.size() for u in split) > MAX_CASES:
        split = []
    members = itertools.product(*(u.domain.members() for u in split))
    cases = [dict(zip(split, values, strict=True)) for values in members]
    transfers = [layer_transfer(enc.network, node, inputs, enc.var, overrides) for overrides in cases]
    ties: list[list[z3.BoolRef]] = [[] for _ in cases]

    def merge(name: str, values: list[Num]) -> Num:
        """One term for a value across the cases: the common int, or a variable tied to it in each case."""
        if all(isinstance(v, int) and v == values[0] for v in values) or len(values) == 1 and z3.is_const(values[0]):
            return values[0]
        var = z3.Int(name + enc.tag, enc.ctx)
        for tie, value in zip(ties, values, strict=True):
            tie.append(var == value)
        return var

    shape = tuple(
        merge(f"{node.name}.shape[{axis}]", [t.shape[axis] for t in transfers])
        for axis in range(len(transfers[0].shape))
    )
    pieces = tuple(
        tuple(merge(f"{out}.shape[{axis}]", [t.pieces[n][axis] for t in transfers]) for axis in range(len(piece)))
        for n, (out, piece) in enumerate(zip(node.outputs[1:], transfers[0].pieces, strict=True))
    )
    params = {
        key: _merge_nested(f"{node.name}.{key}", [t.params[key] for t in transfers], merge)
        for key in transfers[0].params
    }
    selectors = [enc.all(*(enc.var(u) == v for u, v in overrides.items())) for overrides in cases]
    definition = _one_of_cases([enc.all(sel, *tie) for sel, tie in zip(selectors, ties, strict=True)])
    requirement = _one_of_cases(
        [enc.all(sel, *(r.holds for r in t.rules)) for sel, t in zip(selectors, transfers, strict=True)]
    )
    return shape, pieces, params, definition, requirement


def _one_of_cases(options: list[z3.BoolRef]) -> z3.BoolRef:
    return z3.Or(options) if len(options) > 1 else options[0]


def _merge_nested(name: str, values: list, merge) -> object:
    first = values[0]
    if isinstance(first, tuple):
        return tuple(_merge_nested(f"{name}[{i}]", [v[i] for v in values], merge) for i in range(len(first)))
    if isinstance(first, (bool, float)) or not isinstance(first, (int, z3.ArithRef)):
        return first
    return merge(name, values)
