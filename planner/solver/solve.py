"""Solve a network: one plan, N plans, or all of them with their count.

Outcomes are a `Status`, never a bool: a Z3 give-up is `unknown`, never "infeasible".
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from enum import Enum
from typing import TYPE_CHECKING

from planner.deadline import Deadline
from planner.domains import Unknown
from planner.errors import (
    DiagnosedError,
    Diagnostic,
    FieldUnsupported,
    GaveUp,
    InfeasibleError,
    InternalError,
    OptimizerStuck,
)
from planner.graph import Network
from planner.objective import plan_value
from planner.plan import Plan, compute_plan
from planner.solver.encode import encode
from planner.solver.explain import (
    GENERIC,
    HINT_BUDGET,
    domains_too_narrow,
    explain_dead_end,
    explain_for_all,
    explain_infeasible,
    failing_everywhere,
    input_sizes_that_work,
    shared_across_axes,
)
from planner.solver.optimize import best_assignments
from planner.solver.search import ForAllSearch, Search
from planner.walk import located

if TYPE_CHECKING:  # the pass needs NumPy, imported only once a spec is solved
    from planner.solver.axes import Axes
    from planner.solver.bounds import Bounds, Unreachable
    from planner.solver.reach import Reach


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


def solve_network(
    network: Network,
    *,
    max_solutions: int | None = 1,
    count: bool = False,
    sample: int | None = None,
    seed: int = 0,
    timeout: float | None = None,
    explain: bool = True,
    progress: Callable[[int], None] | None = None,
    deadline: Deadline | None = None,
) -> SolveResult:
    """Find up to `max_solutions` plans (None: all; 0: none, with `count`); with `count`, count every plan;
    with `sample`, draw that many distinct plans uniformly at random (`seed` fixes the draw) instead of the
    first ones.

    Plans come in lexicographic order of their assignment (unknowns in the order the spec first
    uses them), or by the objective with ties in that order. The reachable-state pass
    (`planner.solver.reach`) answers where it applies, Z3 elsewhere. `explain=False` skips saying
    why an infeasible spec is infeasible beyond what the pass or the bounds say at once. `progress(found)`
    is called as plans are enumerated.
    """
    deadline = deadline or Deadline(timeout)
    try:
        from planner.solver.bounds import bound_pass
        from planner.solver.descent import worth_descending

        bounds = bound_pass(network, deadline)
        if bounds is not None and bounds.proof is not None:
            return _infeasible(network, deadline, explain, [_proof_diagnostic(network, bounds.proof)])
        result = None
        if max_solutions == 1 and not count and sample is None and network.objective is None and bounds is not None:
            if worth_descending(network, bounds):
                result = _by_descent(network, bounds, deadline)
        if result is None:
            result = _by_reach(network, bounds, max_solutions, count, sample, seed, progress, deadline)
    except GaveUp as e:
        return _gave_up(network, e, 0, [])
    if result is not None:
        if result.status is Status.INFEASIBLE:
            return _infeasible(network, deadline, explain, result.diagnostics)
        return result
    if sample is None:
        return _by_z3(network, max_solutions, count, explain, progress, deadline)
    every = _by_z3(network, None, True, explain, progress, deadline)  # sampled from the full list
    if every.status is Status.SOLVED:
        every.plans = random.Random(seed).sample(every.plans, min(sample, len(every.plans)))
    return every


# objectives the pass optimises: sums over layers, and the receptive field (a sum of growths along a chain)
BY_REACH = {("minimize", "params"), ("minimize", "flops"), ("minimize", "kernel_sum"), ("maximize", "receptive_field")}


def _by_reach(
    network: Network,
    bounds: Bounds | None,
    max_solutions: int | None,
    count: bool,
    sample: int | None,
    seed: int,
    progress: Callable[[int], None] | None,
    deadline: Deadline,
) -> SolveResult | None:
    """Solve with the reachable-state pass (one spatial axis at a time where the joint pass declines, the
    axes are apart and no lexicographic list is asked for), or None where it does not apply."""
    from planner.solver.axes import Axes
    from planner.solver.reach import Reach, build
    from planner.solver.states import Declined

    kind = network.objective[1] if network.objective and max_solutions != 0 else None  # no plan: no order
    if kind is not None and (network.objective not in BY_REACH or sample is not None):
        return None
    listing = max_solutions is None or sample is not None
    first_only = max_solutions == 1 and sample is None  # the pass's back-pointers give it
    by_axes = kind is None and (max_solutions in (0, 1) or sample is not None)

    def make(*, strict: bool = False, ordered: bool = True, counting: bool = False) -> Reach | Axes | None:
        """The joint pass; where it declines (both axes' sizes in one state are too many), the axes apart."""
        joint = build(network, deadline, counting=counting, objective=kind, strict=strict, ordered=ordered)
        if joint is not None or not by_axes:
            return joint
        try:
            return Axes(network, bounds, deadline, strict=strict)
        except (Declined, MemoryError):
            return None

    engine = make(counting=count and not listing, ordered=first_only)
    if engine is None:
        return None
    if not engine.feasible:
        if isinstance(engine, Reach) and not engine.ordered:  # its back-pointers give the example
            engine = make() or engine
        return _dead_end(network, engine)
    strict: Reach | Axes | None = None  # the plans without a degenerate layer, built when the order needs them
    counted = engine.count() if count or listing else None
    if max_solutions == 0 and sample is None:  # the count alone
        made: Iterator[Plan] = iter(())
    elif sample is not None:
        ranks = distinct_ranks(random.Random(seed), engine.count(), sample)
        made = (_plan(network, engine.plan_at(r)) for r in ranks)
    elif kind is not None:
        assert isinstance(engine, Reach)  # objectives are solved by the joint pass
        best = iter([engine.first()]) if max_solutions == 1 else (a for _, a in engine.best(max_solutions))
        made = (_plan(network, a) for a in best)
    elif max_solutions == 1:
        first = _plan(network, engine.first())
        if first.waste():  # the smallest plan is degenerate: the smallest useful one instead
            strict = make(strict=True)
            first = _plan(network, strict.first()) if strict is not None and strict.feasible else first
        made = iter([first])
    else:
        assert isinstance(engine, Reach)  # lists in lexicographic order are the joint pass's
        strict = build(network, deadline, strict=True, ordered=False)
        made = (_plan(network, a) for a in itertools.islice(_useful_first(network, engine, strict), max_solutions))
    plans = []
    for plan in made:
        plans.append(plan)
        if progress is not None:
            progress(len(plans))
    if kind is not None:
        plans = [replace(p, objective=plan_value(network, p)) for p in plans]
    if strict is None and any(p.waste() for p in plans):  # is there a plan without the waste?
        strict = make(strict=True, ordered=False)
    avoidable = strict is not None and strict.feasible
    warnings = _waste_warnings(network, plans) if avoidable else []
    return SolveResult(network.file, Status.SOLVED, plans, counted, warnings, network)


def _by_descent(network: Network, bounds: Bounds, deadline: Deadline) -> SolveResult | None:
    """The first plan by the pruned descent (`planner.solver.descent`), the first without a degenerate layer
    when some plan avoids them; None when the descent gives up or finds no plan (the pass then also says
    where the shapes part)."""
    from planner.solver.descent import descend

    found = descend(network, bounds, deadline)
    if found is None or found.assignment is None:
        return None
    plan = _plan(network, found.assignment)
    if plan.waste():
        useful = descend(network, bounds, deadline, strict=True)
        if useful is None:
            return None
        plan = _plan(network, useful.assignment) if useful.assignment is not None else plan
    return SolveResult(network.file, Status.SOLVED, [plan], None, [], network)


def distinct_ranks(rng: random.Random, count: int, n: int) -> list[int]:
    """min(n, count) distinct ranks of 0..count-1, uniformly: a sample of the range while it has a length,
    else uniform draws with the repeats left out (count is then astronomically larger than n)."""
    if count < 2**62:
        return rng.sample(range(count), min(n, count))
    ranks: dict[int, None] = {}
    while len(ranks) < n:
        ranks.setdefault(rng.randrange(count))
    return list(ranks)


def _useful_first(network: Network, engine: Reach, strict: Reach | None) -> Iterator[dict[Unknown, int]]:
    """Plans in lexicographic order, those without a degenerate layer (`Op.degenerate`) before the others."""
    useful = strict is not None and strict.feasible
    if strict is not None and useful:
        yield from strict.plans()
    for assignment in engine.plans():
        if not useful or _plan(network, assignment).waste():
            yield assignment


def _waste_warnings(network: Network, plans: list[Plan]) -> list[Diagnostic]:
    """One warning per degenerate layer of each returned plan, at the layer's parameter (given only when
    other plans avoid them: a degenerate layer that every plan has is what the spec asks for)."""
    warnings = []
    for n, plan in enumerate(plans, 1):
        for layer, rule in plan.waste():
            node = network.node(layer.name)
            where = located(network, node, rule.code, rule.message, rule.param)
            label = f"plan {n}: " if len(plans) > 1 else ""
            warnings.append(replace(where, message=label + where.message, severity="warning"))
    return warnings


def _proof_diagnostic(network: Network, proof: Unreachable) -> Diagnostic:
    return network.diagnostic((*proof.node.path, "expect"), "infeasible", proof.message, layer=proof.node.name)


def _dead_end(network: Network, engine: Reach | Axes) -> SolveResult:
    """Infeasible, said by the pass: the first layer no state gets past, with the rule it breaks under the
    smallest partial plan that reaches it (an ordered joint pass without for_all sizes), else with the
    sizes that reach it."""
    from planner.solver.reach import Reach

    node, message = engine.dead_end_message()
    found = []
    if node is not None and isinstance(engine, Reach) and engine.ordered and not network.for_all:
        found = explain_dead_end(network, node, engine.example())
    if node is not None and not found:
        found = [network.diagnostic(node.path, "infeasible", message, layer=node.name)]
    return SolveResult(network.file, Status.INFEASIBLE, [], 0, found, network)


EXPLAIN_BUDGET = 5.0  # seconds for saying where the shapes part, before the hints' own budgets


def _infeasible(network: Network, deadline: Deadline, explain: bool, found: Sequence[Diagnostic]) -> SolveResult:
    """The infeasible outcome with what explains it: where the shapes part, `found` (the bound proof, the
    pass's dead end) or else Z3's account; with `explain`, then the hints (`_explain`)."""
    diagnostics = list(found)
    if explain:
        try:
            diagnostics = _explain(network, deadline, found)
        except GaveUp:
            pass
    if diagnostics and any(node.params.get("padding") in ("same", "same_lower") for node in network.nodes):
        same = failing_everywhere(network, "padding-same")  # every layer with it, not the first alone
        if any(d.layer == diagnostics[0].layer for d in same):
            diagnostics[1:1] = [d for d in same if d.layer != diagnostics[0].layer]
    return SolveResult(network.file, Status.INFEASIBLE, [], 0, diagnostics, network)


def _gave_up(network: Network, e: GaveUp, found: int, plans: list[Plan]) -> SolveResult:
    diag = network.diagnostic(
        (),
        "unknown",
        f"the solver gave up ({e.reason}) after {found} plan(s); allow more time with --timeout, or narrow the domains",
    )
    return SolveResult(network.file, Status.UNKNOWN, plans, None, [diag], network)


def _by_z3(
    network: Network,
    max_solutions: int | None,
    count: bool,
    explain: bool,
    progress: Callable[[int], None] | None,
    deadline: Deadline,
) -> SolveResult:
    """Solve by Z3: enumeration with blocking clauses, counterexample-guided for for_all sizes."""
    plans: list[Plan] = []
    found = 0
    ranked = network.objective is not None and max_solutions != 0  # no plan listed: none to rank
    try:
        counted = None
        best = _best(network, max_solutions, deadline) if ranked else None
        if best is not None:  # the objective has a Z3 term: optimised, not enumerated
            plans, found = _ranked(network, best), len(best)
            if count and counted is None:
                counted = sum(1 for _ in _assignments(network, deadline))
        else:
            keep = None if ranked or max_solutions is None else max_solutions  # plans to keep
            for assignment in _assignments(network, deadline):
                found += 1
                if progress is not None:
                    progress(found)
                if keep is None or len(plans) < keep:
                    plans.append(_plan(network, assignment))
                if keep is not None and found >= keep and not (count and counted is None):
                    break
            if ranked:
                plans = _ranked(network, plans)[:max_solutions]
    except GaveUp as e:
        return _gave_up(network, e, found, plans)
    if counted is None and (count or max_solutions is None):
        counted = found
    if not plans and not (max_solutions == 0 and counted):  # with max_solutions 0, no plan is kept
        if counted:
            raise InternalError(f"the counter found {counted} plans where the solver found none")
        return _infeasible(network, deadline, explain, [])
    return SolveResult(network.file, Status.SOLVED, plans, counted, [], network)


def _best(network: Network, max_solutions: int | None, deadline: Deadline) -> list[Plan] | None:
    """The best `max_solutions` plans by optimisation, or None when enumerating and ranking is the way
    (every plan asked for, for_all sizes, an objective Z3 cannot express, or one it makes no progress on)."""
    if network.for_all or max_solutions is None:
        return None
    value_of = lambda a: plan_value(network, _plan(network, a))  # noqa: E731
    try:
        return [_plan(network, a) for a in best_assignments(network, max_solutions, value_of, deadline)]
    except (FieldUnsupported, OptimizerStuck):
        return None


def _ranked(network: Network, plans: list[Plan]) -> list[Plan]:
    """Plans with their objective, best first; ties by the smallest assignment in the spec's order."""
    assert network.objective is not None  # ranking needs one
    sign = 1 if network.objective[0] == "minimize" else -1
    valued = [(plan_value(network, p), p) for p in plans]
    ranked = sorted(valued, key=lambda vp: (sign * vp[0], tuple(vp[1].assignment.values())))
    return [replace(p, objective=value) for value, p in ranked]


def _assignments(network: Network, deadline: Deadline) -> Iterator[dict[Unknown, int]]:
    """Every plan's assignment, each once, in the order Z3 finds them."""
    search = ForAllSearch(network, deadline) if network.for_all else Search(network, deadline)
    while (assignment := search.next()) is not None:
        yield assignment


def _explain(network: Network, deadline: Deadline, found: Sequence[Diagnostic]) -> list[Diagnostic]:
    """Why there is no plan: where the shapes part (`found`, what the bound pass or the pass proved, else
    Z3's account), then the domains too narrow and the input sizes that work, each within its time box."""
    if network.for_all:
        search = ForAllSearch(network, deadline)
        while search.next() is not None:  # grows the samples to the sizes no plan serves together
            pass
        diagnostics = explain_for_all(network, search.samples, deadline)
        generic = diagnostics and diagnostics[0].code == "infeasible" and diagnostics[0].message == GENERIC
        return [*found, *diagnostics[1:]] if found and (generic or not diagnostics) else diagnostics
    if not network.unknowns:
        try:
            compute_plan(network, {})
        except InfeasibleError as e:
            return [*e.diagnostics, *input_sizes_that_work(network, deadline)]
    head = list(found) or explain_infeasible(encode(network), deadline.within(EXPLAIN_BUDGET))
    return [
        *head,
        *domains_too_narrow(network, deadline.within(HINT_BUDGET)),
        *shared_across_axes(network, deadline.within(HINT_BUDGET)),
        *input_sizes_that_work(network, deadline),
    ]


def _plan(network: Network, assignment: dict[Unknown, int]) -> Plan:
    """The plan of an assignment; for a for_all spec, at its smallest sizes (the representative)."""
    sizes: dict[Unknown, int] = {f: f.domain.member(0) for f in network.for_all}
    try:
        plan = compute_plan(network, {**assignment, **sizes})
    except DiagnosedError as e:
        raise InternalError(f"the Z3 encoding and the plan calculator disagree: {e}") from e
    return replace(plan, for_all=bool(sizes))
