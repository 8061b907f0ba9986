"""The best plans under the spec's objective, ties broken by the smallest assignment.

The objective is a Z3 term of the encoding (`planner.objective.encoded_value`); the
search finds a plan, measures it exactly in ints, asks for a strictly better one, and
stops when there is none. Among the plans of the best value, the one whose unknowns,
in the spec's order, are lexicographically smallest is taken, so the answer does not
depend on the order in which Z3 finds plans.
"""

from __future__ import annotations

from collections.abc import Callable

import z3

from planner.deadline import Deadline
from planner.domains import Unknown
from planner.errors import GaveUp, OptimizerStuck
from planner.graph import Network
from planner.objective import encoded_value
from planner.solver.encode import Encoding, encode, new_solver
from planner.solver.search import block

Assignment = dict[Unknown, int]
STEP_BUDGET = 3.0  # seconds for one improving step; past it Z3's non-linear search is stuck, and ranking
# every plan is the surer way (the caller falls back to it on OptimizerStuck)


def best_assignments(
    network: Network, count: int, value_of: Callable[[Assignment], int | float], deadline: Deadline
) -> list[Assignment]:
    """Up to `count` assignments, best first: each the best of what the earlier ones leave."""
    enc = encode(network)
    term = encoded_value(enc)
    assert network.objective is not None  # optimising needs one
    minimize = network.objective[0] == "minimize"
    solver = new_solver(enc.all_constraints(), enc.ctx)
    found: list[Assignment] = []
    while len(found) < count:
        solver.push()
        best, best_assignment = None, None
        while _step(solver, deadline) == z3.sat:
            best_assignment = enc.assignment(solver.model())
            best = value_of(best_assignment)
            solver.add(term < best if minimize else term > best)
        solver.pop()
        if best is None or best_assignment is None:
            break
        solver.push()
        solver.add(term == best)
        found.append(_smallest(solver, enc, best_assignment, deadline))
        solver.pop()
        solver.add(block(enc, found[-1]))
    return found


def _step(solver: z3.Solver, deadline: Deadline) -> z3.CheckSatResult:
    try:
        return deadline.within(STEP_BUDGET).check(solver)
    except GaveUp:
        if deadline.passed():
            raise
        raise OptimizerStuck(f"an improving step took more than {STEP_BUDGET:g} s") from None


def _smallest(solver: z3.Solver, enc: Encoding, start: Assignment, deadline: Deadline) -> Assignment:
    """The lexicographically smallest assignment the solver allows (unknowns in the spec's order),
    descending from `start`, one the solver allows (asking Z3 for it again can be needlessly slow)."""
    current = dict(start)
    for unknown in enc.network.unknowns:
        var = enc.var(unknown)
        while True:
            solver.push()
            solver.add(var < current[unknown])
            if _step(solver, deadline) == z3.unsat:
                solver.pop()
                break
            current = enc.assignment(solver.model())
            solver.pop()
        solver.add(var == current[unknown])
    return current
