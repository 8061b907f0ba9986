"""The first plan of a network by the quickest engine that decides it, without Z3.

The explanations of an infeasible spec ask many variants of it (a window of input sizes, a
widened domain) whether they have a plan. Each question goes, in order, to the bound pass
(proves at once that an `expect` is out of reach), the descent (the first plan along one
path, where the whole pass would be wide) and the reachable-state pass (exact). Where none
of them applies (`constraints:`, an op not written for arrays, states that would explode)
the caller asks Z3.
"""

from __future__ import annotations

from planner.deadline import Deadline
from planner.domains import Unknown
from planner.graph import Network
from planner.solver.bounds import bound_pass
from planner.solver.descent import descend, worth_descending
from planner.solver.reach import build
from planner.solver.states import Declined


def first_plan(network: Network, deadline: Deadline) -> dict[Unknown, int] | None:
    """The assignment of the network's lexicographically first plan, or None when it has none. Raises
    Declined where the pass does not apply and GaveUp past the deadline."""
    bounds = bound_pass(network, deadline)
    if bounds is not None and bounds.proof is not None:
        return None
    if bounds is not None and worth_descending(network, bounds):
        found = descend(network, bounds, deadline)
        if found is not None:
            return found.assignment
    engine = build(network, deadline)
    if engine is None:
        raise Declined("the pass does not apply")
    return engine.first() if engine.feasible else None
