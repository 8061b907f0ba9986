"""The best plans under the spec's objective, ties broken by the smallest assignment.

The objective is a Z3 term of the encoding (`planner.objective.encoded_value`). The
search finds a plan and measures it exactly; then it asks for a plan better by a step
that doubles after each success and halves after each failure, between the best so far
and what is proven (an objective is never negative): the optimum takes a number of Z3
calls logarithmic in the distance to it, not one per improvement, and each call asks
for a little more than was found, which Z3's non-linear search answers fastest. Among the
plans of the best value, the one whose unknowns, in the spec's order, are
lexicographically smallest is taken, so the answer does not depend on the order in which
Z3 finds plans.
"""

from __future__ import annotations

import math
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
PROBE_BUDGET = 0.5  # seconds for a probe past the next better value
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
        if _step(solver, deadline) != z3.sat:
            break
        start = enc.assignment(solver.model())
        solver.push()  # the bounds this round proves hold for its plans only
        best, best_assignment = _bisect(solver, enc, term, minimize, start, value_of, deadline)
        solver.add(term == best)
        found.append(_smallest(solver, enc, best_assignment, deadline))
        solver.pop()
        solver.add(block(enc, found[-1]))
    return found


def _bisect(
    solver: z3.Solver,
    enc: Encoding,
    term: z3.ArithRef,
    minimize: bool,
    start: Assignment,
    value_of: Callable[[Assignment], int | float],
    deadline: Deadline,
) -> tuple[int | float, Assignment]:
    """The best value the solver allows and a plan with it, from a plan `start`: a search on whole-number
    bounds between the best value found and the proven one, then, for fractional values, strict
    improvements to finish."""
    best, best_assignment = value_of(start), start

    def better(bound: int | float, strictly: bool = False, budget: float = STEP_BUDGET) -> bool | None:
        """Is there a plan at least as good as `bound`? True (the best is updated) or False, each kept as a
        constraint so that Z3 learns from every call; None when a probe past the next value (a short
        budget) is not answered in time."""
        nonlocal best, best_assignment
        probe = z3.FreshBool("probe", enc.ctx)  # an assumption, not a push: what Z3 learns stays
        if minimize:
            solver.add(z3.Implies(probe, term < bound if strictly else term <= bound))
        else:
            solver.add(z3.Implies(probe, term > bound if strictly else term >= bound))
        try:
            sat = _step(solver, deadline, budget, probe) == z3.sat
        except OptimizerStuck:
            if budget == STEP_BUDGET:
                raise
            return None
        if sat:
            best_assignment = enc.assignment(solver.model())
            best = value_of(best_assignment)
        if sat:
            solver.add(term <= best if minimize else term >= best)
        elif minimize:
            solver.add(term > bound if not strictly else term >= bound)
        else:
            solver.add(term < bound if not strictly else term <= bound)
        return sat

    # a step from the best so far toward the proven bound that doubles after each success and halves after
    # each failure: O(log) calls. A probe past the next value has a short budget (Z3's non-linear search
    # can take long to refute a far target); the next value itself, the old single step, has the full one.
    step = 1
    if minimize:
        proven = 0  # every objective is at least 0: no plan has a value below `proven`
        while proven < math.floor(best):
            target = max(proven, math.floor(best) - step)
            far = target < math.floor(best) - 1
            answer = better(target, budget=PROBE_BUDGET if far else STEP_BUDGET)
            if answer:
                step *= 2
            else:
                proven, step = (target + 1 if answer is False else proven), max(1, step // 2)
    else:
        proven = None  # once found: no plan has a value of `proven` or more
        while proven is None or math.ceil(best) + 1 < proven:
            target = math.ceil(best) + step if proven is None else min(proven - 1, math.ceil(best) + step)
            far = target > math.ceil(best) + 1
            answer = better(target, budget=PROBE_BUDGET if far else STEP_BUDGET)
            if answer:
                step *= 2
            else:
                proven, step = (target if answer is False else proven), max(1, step // 2)
    while best != int(best) and better(best, strictly=True):  # a fraction: what lies past the last integer
        pass
    return best, best_assignment


def _step(
    solver: z3.Solver, deadline: Deadline, budget: float = STEP_BUDGET, *assumptions: z3.BoolRef
) -> z3.CheckSatResult:
    try:
        return deadline.within(budget).check(solver, *assumptions)
    except GaveUp:
        if deadline.passed():
            raise
        raise OptimizerStuck(f"an improving step took more than {budget:g} s") from None


def _smallest(solver: z3.Solver, enc: Encoding, start: Assignment, deadline: Deadline) -> Assignment:
    """The lexicographically smallest assignment the solver allows (unknowns in the spec's order), from
    `start`, one it allows: each unknown in turn bisected between its domain's least value and its value
    in the best assignment so far, then fixed (asking Z3 for it again can be needlessly slow)."""
    current = dict(start)
    for unknown in enc.network.unknowns:
        var, proven = enc.var(unknown), unknown.domain.lo  # no value below the domain's least
        while proven < current[unknown]:
            middle = (proven + current[unknown]) // 2
            solver.push()
            solver.add(var <= middle)
            if _step(solver, deadline) == z3.sat:
                current = enc.assignment(solver.model())
            else:
                proven = middle + 1
            solver.pop()
        solver.add(var == current[unknown])
    return current
