"""Solve an encoded network: one plan, N plans, or all of them with their count.

Outcomes are a `Status`, never a bool: a Z3 give-up is `unknown`, never "infeasible".
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from enum import Enum

import z3

from planner.errors import Diagnostic, InfeasibleError, InternalError, SpecError
from planner.graph import Network, Unknown
from planner.plan import Plan, broken_rules, compute_plan, layer_transfer, located
from planner.solver.encode import Encoding, encode


class Status(str, Enum):
    SOLVED = "solved"
    INFEASIBLE = "infeasible"
    UNKNOWN = "unknown"
    INVALID = "invalid"


@dataclass
class SolveResult:
    """What `solve` found for one spec."""

    spec: str
    status: Status
    plans: list[Plan] = field(default_factory=list)
    count: int | None = None  # number of distinct plans, when counted
    diagnostics: list[Diagnostic] = field(default_factory=list)
    network: Network | None = None

    def to_dict(self, with_count: bool = False) -> dict:
        d: dict = {"spec": self.spec, "status": self.status.value}
        if with_count and self.count is not None:
            d["count"] = self.count
        d["solutions"] = [p.to_dict() for p in self.plans]
        d["diagnostics"] = [x.to_dict() for x in self.diagnostics]
        return d


class Deadline:
    def __init__(self, seconds: float | None):
        self.end = None if seconds is None else time.monotonic() + seconds

    def milliseconds(self) -> int | None:
        """Milliseconds left (at least 1), or None without a deadline."""
        return None if self.end is None else max(1, int((self.end - time.monotonic()) * 1000))

    def passed(self) -> bool:
        return self.end is not None and time.monotonic() >= self.end


def solve_network(network: Network, *, max_solutions: int | None = 1, count: bool = False,
                  timeout: float | None = None) -> SolveResult:
    """Find up to `max_solutions` plans (None: all); with `count`, count every plan."""
    if not network.unknowns:
        return _solve_known(network)
    enc = encode(network)
    solver = z3.Solver()
    solver.add(*enc.domains)
    for name, constraint in enc.layers.items():
        solver.assert_and_track(constraint, z3.Bool(f"layer {name}"))
    deadline = Deadline(timeout)
    plans: list[Plan] = []
    found = 0
    while max_solutions is None or count or found < max_solutions:
        outcome = _check(solver, deadline)
        if outcome == z3.unknown:
            reason = "timeout" if deadline.passed() else solver.reason_unknown()
            diag = network.diagnostic((), "unknown", f"the solver gave up ({reason}) after {found} plan(s); "
                                      "try --timeout with more seconds or smaller domains")
            return SolveResult(network.file, Status.UNKNOWN, plans, None, [diag], network)
        if outcome == z3.unsat:
            break
        assignment = enc.assignment(solver.model())
        found += 1
        if max_solutions is None or len(plans) < max_solutions:
            plans.append(_plan(network, assignment))
        solver.add(z3.Or([enc.var(u) != v for u, v in assignment.items()]))
    if not plans:
        return SolveResult(network.file, Status.INFEASIBLE, [], 0, explain_infeasible(enc, deadline), network)
    return SolveResult(network.file, Status.SOLVED, plans, found if (count or max_solutions is None) else None,
                       [], network)


def _check(solver: z3.Solver, deadline: Deadline) -> z3.CheckSatResult:
    ms = deadline.milliseconds()
    if ms is not None:
        solver.set("timeout", ms)
    return solver.check()


def _plan(network: Network, assignment: dict[Unknown, int]) -> Plan:
    try:
        return compute_plan(network, assignment)
    except SpecError as e:
        raise InternalError(f"the Z3 encoding and the plan calculator disagree: {e}") from None


def _solve_known(network: Network) -> SolveResult:
    try:
        plan = compute_plan(network, {})
    except InfeasibleError as e:
        return SolveResult(network.file, Status.INFEASIBLE, [], 0, e.diagnostics, network)
    return SolveResult(network.file, Status.SOLVED, [plan], 1, [], network)


def explain_infeasible(enc: Encoding, deadline: Deadline) -> list[Diagnostic]:
    """Name the first layer at which no choice of the unknowns works, with what breaks there.

    Layers are added in order until the prefix becomes unsatisfiable; a model of the
    prefix before it shows, in ints, which of that layer's rules fail.
    """
    network = enc.network
    solver = z3.Solver()
    solver.add(*enc.domains)
    last_model = None
    for node in network.nodes:
        solver.add(enc.layers[node.name])
        outcome = _check(solver, deadline)
        if outcome == z3.sat:
            last_model = solver.model()
            continue
        if outcome == z3.unknown:
            break
        return [_explain_layer(enc, node, last_model)]
    return [network.diagnostic((), "infeasible", "no assignment of the unknowns satisfies the spec")]


def _explain_layer(enc: Encoding, node, model: z3.ModelRef | None) -> Diagnostic:
    network = enc.network
    head = (f"no choice of the unknowns makes the network valid up to this layer"
            if network.unknowns else "this layer is invalid")
    if model is None:
        return located(network, node, "infeasible", head, None)
    assignment = enc.assignment(model)
    example = {u: v for u, v in assignment.items()}
    env = example.__getitem__
    shapes = {"input": tuple(env(t) if isinstance(t, Unknown) else t for t in network.input_shape)}
    for other in network.nodes:
        inputs = tuple(shapes[n] for n in other.inputs)
        transfer = layer_transfer(network, other, inputs, env)
        if other is node:
            broken = broken_rules(transfer)
            if broken:
                rule = broken[0]
                chosen = ", ".join(f"{u.name}={v}" for u, v in example.items()
                                   if any(u in _unknowns_of(n) for n in network.nodes[: node.index + 1]))
                where = f" (e.g. with {chosen})" if chosen else ""
                return located(network, node, "infeasible", f"{head}: {rule.message}{where}", rule.param)
            break
        shapes[other.name] = transfer.shape
    return located(network, node, "infeasible", head, None)


def _unknowns_of(node) -> set[Unknown]:
    found: set[Unknown] = set()

    def visit(value):
        if isinstance(value, Unknown):
            found.add(value)
        elif isinstance(value, tuple):
            for v in value:
                visit(v)

    visit(tuple(node.params.values()))
    return found
