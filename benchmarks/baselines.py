"""The baselines of benchmarks/search.py: what people write today to answer the same questions.

Each engine answers a problem in one form, so that search.py can compare them:

    count                  the number of plans (an int)
    first, infeasible      a plan, or None when there is none
    min_params, max_rf     (the optimum, a plan reaching it), or None when there is no plan
    for_all                every plan, sorted

A chain plan is a tuple of (kernel, stride, padding) per layer; a for_all plan is the tuple
of its unknowns' values. An engine that stops without an answer raises GaveUp: `cap` when
its time budget ran out, or the solver's reason (Z3's `unknown` on nonlinear arithmetic).

    brute   itertools.product over every unknown, sizes walked layer by layer;
    dp      a hand-written dynamic programme over the sizes between layers;
    z3      naive Z3: one Int per unknown and per size, the output formula written as it is
            (integer division by the unknown stride), blocking clauses to count, z3.Optimize;
    cpsat   OR-tools CP-SAT: AddDivisionEquality for the floor division, one model per task.
"""

from __future__ import annotations

import itertools
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass

import z3

try:
    from ortools.sat.python import cp_model
except ImportError:  # optional: `pip install -e .[bench]`
    cp_model = None

Plan = tuple[tuple[int, int, int], ...]


class GaveUp(Exception):
    """An engine stopped before it had an answer."""


# --- the problems ----------------------------------------------------------------------


@dataclass(frozen=True)
class Chain:
    """A chain of 1-D convolutions, kernel, stride and padding unknown in every layer, ending at `target`."""

    layers: int
    size: int
    target: int
    kernel: tuple[int, int]  # inclusive domains
    stride: tuple[int, int]
    padding: tuple[int, int]
    channels: int = 1  # in and out channels of every layer (params depend on the kernel through them)

    def steps(self) -> list[tuple[int, int, int]]:
        """Every (kernel, stride, padding) one layer may take."""
        return list(
            itertools.product(
                range(self.kernel[0], self.kernel[1] + 1),
                range(self.stride[0], self.stride[1] + 1),
                range(self.padding[0], self.padding[1] + 1),
            )
        )

    def assignments(self) -> int:
        return len(self.steps()) ** self.layers

    def max_size(self) -> int:
        """No size between layers exceeds this (kernel 1, stride 1 and the widest padding grow the most)."""
        return self.size + 2 * self.padding[1] * self.layers


def out_size(i: int, k: int, s: int, p: int) -> int | None:
    """The guide's Relationship 6 (no dilation): floor((i + 2p - k) / s) + 1; None when the kernel does not fit."""
    return (i + 2 * p - k) // s + 1 if i + 2 * p >= k else None


def final_size(chain: Chain, plan: Plan) -> int | None:
    i = chain.size
    for k, s, p in plan:
        i = out_size(i, k, s, p)
        if i is None:
            return None
    return i


def holds(chain: Chain, plan: Plan) -> bool:
    """The plain-Python checker: every layer fits its input, the last gives the target size."""
    ranges = (chain.kernel, chain.stride, chain.padding)
    in_domains = all(lo <= v <= hi for step in plan for v, (lo, hi) in zip(step, ranges, strict=True))
    return len(plan) == chain.layers and in_domains and final_size(chain, plan) == chain.target


def params(chain: Chain, plan: Plan) -> int:
    """Learnable parameters of the chain: weights c * c * k and c biases per layer."""
    c = chain.channels
    return sum(c * c * k + c for k, _, _ in plan)


def receptive_field(plan: Plan) -> int:
    """r_out = r_in + (k - 1) * j_in, j_out = j_in * s, from r = j = 1 at the input."""
    r, j = 1, 1
    for k, s, _ in plan:
        r, j = r + (k - 1) * j, j * s
    return r


def _deadline(cap: float) -> Callable[[], None]:
    end = time.perf_counter() + cap

    def tick() -> None:
        if time.perf_counter() > end:
            raise GaveUp("cap")

    return tick


# --- brute force: every assignment --------------------------------------------------------


def _every_plan(chain: Chain, cap: float):
    tick = _deadline(cap)
    for n, plan in enumerate(itertools.product(chain.steps(), repeat=chain.layers)):
        if n % 65536 == 0:
            tick()
        if final_size(chain, plan) == chain.target:
            yield plan


def brute_count(chain: Chain, cap: float) -> int:
    return sum(1 for _ in _every_plan(chain, cap))


def brute_first(chain: Chain, cap: float) -> Plan | None:
    return next(_every_plan(chain, cap), None)


def brute_min_params(chain: Chain, cap: float) -> tuple[int, Plan] | None:
    return min(((params(chain, p), p) for p in _every_plan(chain, cap)), default=None)


def brute_max_rf(chain: Chain, cap: float) -> tuple[int, Plan] | None:
    best = None
    for plan in _every_plan(chain, cap):
        if best is None or receptive_field(plan) > best[0]:
            best = (receptive_field(plan), plan)
    return best


# --- a hand-written dynamic programme over the sizes between layers -----------------------


def dp_count(chain: Chain, cap: float) -> int:
    """Size -> number of ways to reach it, layer by layer."""
    tick, steps = _deadline(cap), chain.steps()
    ways = {chain.size: 1}
    for _ in range(chain.layers):
        tick()
        following: dict[int, int] = defaultdict(int)
        for i, n in ways.items():
            for k, s, p in steps:
                if i + 2 * p >= k:
                    following[(i + 2 * p - k) // s + 1] += n
        ways = following
    return ways.get(chain.target, 0)


def _backtrack(layers: list[dict], key) -> Plan:
    """Follow (previous key, step) links from the last layer's `key` back to the input."""
    plan = []
    for reached in reversed(layers[1:]):
        key, step = reached[key][-2:]
        plan.append(step)
    return tuple(reversed(plan))


def dp_first(chain: Chain, cap: float) -> Plan | None:
    """Size -> (previous size, step) of the first way found to reach it."""
    tick, steps = _deadline(cap), chain.steps()
    layers: list[dict] = [{chain.size: None}]
    for _ in range(chain.layers):
        tick()
        reached: dict[int, tuple] = {}
        for i in layers[-1]:
            for k, s, p in steps:
                if i + 2 * p >= k:
                    reached.setdefault((i + 2 * p - k) // s + 1, (i, (k, s, p)))
        layers.append(reached)
    return _backtrack(layers, chain.target) if chain.target in layers[-1] else None


def dp_min_params(chain: Chain, cap: float) -> tuple[int, Plan] | None:
    """Size -> (fewest params to reach it, previous size, step)."""
    tick, steps, c = _deadline(cap), chain.steps(), chain.channels
    layers: list[dict] = [{chain.size: (0,)}]
    for _ in range(chain.layers):
        tick()
        reached: dict[int, tuple] = {}
        for i, (cost, *_) in layers[-1].items():
            for k, s, p in steps:
                if i + 2 * p >= k:
                    o, total = (i + 2 * p - k) // s + 1, cost + c * c * k + c
                    if o not in reached or total < reached[o][0]:
                        reached[o] = (total, i, (k, s, p))
        layers.append(reached)
    if chain.target not in layers[-1]:
        return None
    return layers[-1][chain.target][0], _backtrack(layers, chain.target)


def dp_max_rf(chain: Chain, cap: float) -> tuple[int, Plan] | None:
    """(size, jump) -> (largest receptive field reaching it, previous state, step)."""
    tick, steps = _deadline(cap), chain.steps()
    layers: list[dict] = [{(chain.size, 1): (1,)}]
    for _ in range(chain.layers):
        tick()
        reached: dict[tuple, tuple] = {}
        for (i, j), (r, *_) in layers[-1].items():
            for k, s, p in steps:
                if i + 2 * p >= k:
                    state, field = ((i + 2 * p - k) // s + 1, j * s), r + (k - 1) * j
                    if state not in reached or field > reached[state][0]:
                        reached[state] = (field, (i, j), (k, s, p))
        layers.append(reached)
    ends = [(v[0], state) for state, v in layers[-1].items() if state[0] == chain.target]
    if not ends:
        return None
    field, state = max(ends)
    return field, _backtrack(layers, state)


# --- naive Z3 -------------------------------------------------------------------------------


def z3_chain(chain: Chain) -> tuple[list[z3.BoolRef], list[tuple[z3.ArithRef, ...]]]:
    """Constraints and (kernel, stride, padding) variables: one Int per unknown and per size."""
    constraints, layers = [], []
    size = z3.IntVal(chain.size)
    for n in range(chain.layers):
        k, s, p, out = z3.Ints(f"k{n} s{n} p{n} o{n}")
        for var, (lo, hi) in zip((k, s, p), (chain.kernel, chain.stride, chain.padding), strict=True):
            constraints += [var >= lo, var <= hi]
        constraints += [size + 2 * p >= k, out == (size + 2 * p - k) / s + 1]  # Z3's / is floor for s > 0
        layers.append((k, s, p))
        size = out
    constraints.append(size == chain.target)
    return constraints, layers


def _z3_plan(model: z3.ModelRef, layers) -> Plan:
    return tuple(tuple(model.eval(v, model_completion=True).as_long() for v in step) for step in layers)


def _z3_check(solver, cap: float) -> z3.CheckSatResult:
    solver.set("timeout", max(1, int(cap * 1000)))
    outcome = solver.check()
    if outcome == z3.unknown:
        reason = solver.reason_unknown()
        raise GaveUp("cap" if "timeout" in reason or "canceled" in reason else f"z3: {reason}")
    return outcome


def z3_count(chain: Chain, cap: float) -> int:
    constraints, layers = z3_chain(chain)
    solver = z3.Solver()
    solver.add(*constraints)
    end, found = time.perf_counter() + cap, 0
    while _z3_check(solver, end - time.perf_counter()) == z3.sat:
        found += 1
        model = solver.model()
        solver.add(z3.Or([v != model.eval(v, model_completion=True) for step in layers for v in step]))
    return found


def z3_first(chain: Chain, cap: float) -> Plan | None:
    constraints, layers = z3_chain(chain)
    solver = z3.Solver()
    solver.add(*constraints)
    return _z3_plan(solver.model(), layers) if _z3_check(solver, cap) == z3.sat else None


def _z3_optimum(chain: Chain, cap: float, objective: Callable, maximize: bool) -> tuple[int, Plan] | None:
    constraints, layers = z3_chain(chain)
    opt = z3.Optimize()
    opt.add(*constraints)
    term = objective(layers)
    (opt.maximize if maximize else opt.minimize)(term)
    if _z3_check(opt, cap) == z3.unsat:
        return None
    model = opt.model()
    return model.eval(term).as_long(), _z3_plan(model, layers)


def z3_min_params(chain: Chain, cap: float) -> tuple[int, Plan] | None:
    c = chain.channels
    return _z3_optimum(chain, cap, lambda layers: z3.Sum([c * c * k + c for k, _, _ in layers]), maximize=False)


def z3_max_rf(chain: Chain, cap: float) -> tuple[int, Plan] | None:
    def field(layers):
        r, j = z3.IntVal(1), z3.IntVal(1)
        for k, s, _ in layers:
            r, j = r + (k - 1) * j, j * s  # products of unknowns: nonlinear
        return r

    return _z3_optimum(chain, cap, field, maximize=True)


def z3_holds(chain: Chain, plan: Plan) -> bool:
    """The Z3 model as a checker: is the plan a model of it?"""
    constraints, layers = z3_chain(chain)
    solver = z3.Solver()
    solver.add(*constraints)
    for step, values in zip(layers, plan, strict=True):
        solver.add(*(var == value for var, value in zip(step, values, strict=True)))
    return solver.check() == z3.sat


# --- OR-tools CP-SAT --------------------------------------------------------------------------


def cpsat_chain(chain: Chain):
    """A CP-SAT model and its (kernel, stride, padding) variables; floor division by AddDivisionEquality
    (it rounds towards zero, which is floor here: the dividend i + 2p - k is kept >= 0)."""
    model = cp_model.CpModel()
    hi, layers = chain.max_size(), []
    size = chain.size
    for n in range(chain.layers):
        k = model.new_int_var(*chain.kernel, f"k{n}")
        s = model.new_int_var(*chain.stride, f"s{n}")
        p = model.new_int_var(*chain.padding, f"p{n}")
        span = model.new_int_var(0, hi + 2 * chain.padding[1], f"span{n}")  # >= 0: the kernel fits
        model.add(span == size + 2 * p - k)
        quotient = model.new_int_var(0, hi, f"q{n}")
        model.add_division_equality(quotient, span, s)
        size = quotient + 1
        layers.append((k, s, p))
    model.add(size == chain.target)
    return model, layers


def _cpsat_solve(model, cap: float, workers: int, callback=None, enumerate_all: bool = False):
    solver = cp_model.CpSolver()
    solver.parameters.max_time_in_seconds = cap
    solver.parameters.num_workers = 1 if enumerate_all else workers
    solver.parameters.enumerate_all_solutions = enumerate_all
    status = solver.solve(model, callback)
    if status == cp_model.MODEL_INVALID:
        raise RuntimeError("CP-SAT: invalid model: " + model.validate())
    if status == cp_model.UNKNOWN or (enumerate_all and status == cp_model.FEASIBLE):
        raise GaveUp("cap")
    return solver, status


def _cpsat_plan(solver, layers) -> Plan:
    return tuple(tuple(solver.value(v) for v in step) for step in layers)


class _Collect(cp_model.CpSolverSolutionCallback if cp_model else object):
    """Counts (and keeps, when asked) the solutions CP-SAT enumerates."""

    def __init__(self, variables=None):
        super().__init__()
        self.found, self.variables, self.solutions = 0, variables, []

    def on_solution_callback(self) -> None:
        self.found += 1
        if self.variables is not None:
            self.solutions.append(tuple(self.value(v) for v in self.variables))


def cpsat_count(chain: Chain, cap: float, workers: int) -> int:
    model, _ = cpsat_chain(chain)
    counter = _Collect()
    _, status = _cpsat_solve(model, cap, workers, counter, enumerate_all=True)
    return 0 if status == cp_model.INFEASIBLE else counter.found


def cpsat_first(chain: Chain, cap: float, workers: int) -> Plan | None:
    model, layers = cpsat_chain(chain)
    solver, status = _cpsat_solve(model, cap, workers)
    return None if status == cp_model.INFEASIBLE else _cpsat_plan(solver, layers)


def _cpsat_optimum(model, layers, term, cap: float, workers: int) -> tuple[int, Plan] | None:
    solver, status = _cpsat_solve(model, cap, workers)
    if status == cp_model.INFEASIBLE:
        return None
    if status != cp_model.OPTIMAL:  # a plan, not proved optimal in time
        raise GaveUp(f"cap: best found {int(solver.value(term))}, not proved optimal")
    return int(solver.value(term)), _cpsat_plan(solver, layers)


def cpsat_min_params(chain: Chain, cap: float, workers: int) -> tuple[int, Plan] | None:
    model, layers = cpsat_chain(chain)
    c = chain.channels
    total = sum(c * c * k + c for k, _, _ in layers)
    model.minimize(total)
    return _cpsat_optimum(model, layers, total, cap, workers)


def cpsat_max_rf(chain: Chain, cap: float, workers: int) -> tuple[int, Plan] | None:
    model, layers = cpsat_chain(chain)
    field, jump, jump_max = 1, 1, 1
    k_max = chain.kernel[1]
    for n, (k, s, _) in enumerate(layers):
        grow = model.new_int_var(0, (k_max - 1) * jump_max, f"grow{n}")  # (k - 1) * jump
        model.add_multiplication_equality(grow, [k - 1, jump])
        jump_max *= chain.stride[1]
        next_jump = model.new_int_var(1, jump_max, f"jump{n}")
        model.add_multiplication_equality(next_jump, [jump, s])
        field, jump = field + grow, next_jump
    model.maximize(field)
    return _cpsat_optimum(model, layers, field, cap, workers)


def cpsat_holds(chain: Chain, plan: Plan) -> bool:
    """The CP-SAT model as a checker: is the plan a solution of it?"""
    model, layers = cpsat_chain(chain)
    for step, values in zip(layers, plan, strict=True):
        for var, value in zip(step, values, strict=True):
            model.add(var == value)
    _, status = _cpsat_solve(model, 60.0, 1)
    return status in (cp_model.OPTIMAL, cp_model.FEASIBLE)


# --- for_all specs, written out by hand on one spatial axis -----------------------------------


@dataclass(frozen=True)
class ForAll:
    """A for_all spec's unknowns (name, min, max) and its sizes; `axis(div, need, i, *unknowns)` states
    what must hold at input size i, with `div` for floor division and `need` for each rule."""

    unknowns: tuple[tuple[str, int, int], ...]
    sizes: tuple[int, ...]
    axis: Callable


def unet_same_axis(div, need, i, k, p, a) -> None:
    """specs/unet_same.yaml: same-padded 3x3 convs keep sizes, each maxpool 2 gives floor(x / 2), and each
    stride-2 conv_transpose, s(x - 1) + k - 2p + a, must give back its skip's size (concat)."""
    skips, x = [], i
    for _ in range(4):
        skips.append(x)
        x = div(x, 2)
    for skip in reversed(skips):
        x = 2 * (x - 1) + k - 2 * p + a
        need(x == skip)  # equal to a size >= 1, so the crop leaves at least one cell
    need(a < 2)  # output_padding < stride


def for_all_1d_axis(div, need, i, p_down, p_up, a) -> None:
    """tests/specs/valid/for_all_1d.yaml: a conv k3 s2 then a conv_transpose k3 s2 added to the input."""
    need(i + 2 * p_down >= 3)  # the kernel fits
    down = div(i + 2 * p_down - 3, 2) + 1
    need(a < 2)  # output_padding < stride
    need(2 * (down - 1) + 3 - 2 * p_up + a == i)  # add: equal to the input's size


def brute_for_all(problem: ForAll, cap: float) -> tuple[tuple[int, ...], ...]:
    class Broken(Exception):
        pass

    def need(condition: bool) -> None:
        if not condition:
            raise Broken

    tick, plans = _deadline(cap), []
    for values in itertools.product(*(range(lo, hi + 1) for _, lo, hi in problem.unknowns)):
        tick()
        try:
            for i in problem.sizes:
                problem.axis(lambda a, b: a // b, need, i, *values)
        except Broken:
            continue
        plans.append(values)
    return tuple(sorted(plans))


def z3_for_all(problem: ForAll, cap: float) -> tuple[tuple[int, ...], ...]:
    """Every size's rules in one solver (the for_all unrolled), every plan by blocking clauses."""
    solver = z3.Solver()
    unknowns = [z3.Int(name) for name, _, _ in problem.unknowns]
    for var, (_, lo, hi) in zip(unknowns, problem.unknowns, strict=True):
        solver.add(var >= lo, var <= hi)
    for i in problem.sizes:
        problem.axis(lambda a, b: a // b if isinstance(a, int) else a / b, solver.add, i, *unknowns)
    end, plans = time.perf_counter() + cap, []
    while _z3_check(solver, end - time.perf_counter()) == z3.sat:
        model = solver.model()
        plans.append(tuple(model.eval(v, model_completion=True).as_long() for v in unknowns))
        solver.add(z3.Or([v != x for v, x in zip(unknowns, plans[-1], strict=True)]))
    return tuple(sorted(plans))


def cpsat_for_all(problem: ForAll, cap: float, workers: int) -> tuple[tuple[int, ...], ...]:
    model = cp_model.CpModel()
    unknowns = [model.new_int_var(lo, hi, name) for name, lo, hi in problem.unknowns]

    def div(a, b: int):
        if isinstance(a, int):
            return a // b
        quotient = model.new_int_var(-(10**6), 10**6, "")
        model.add_division_equality(quotient, a, b)  # towards zero: floor where the rules keep a >= 0
        return quotient

    def need(condition) -> None:
        if isinstance(condition, bool):
            if not condition:
                model.add_bool_or([])  # false
        else:
            model.add(condition)

    for i in problem.sizes:
        problem.axis(div, need, i, *unknowns)
    collect = _Collect(unknowns)
    _, status = _cpsat_solve(model, cap, workers, collect, enumerate_all=True)
    return () if status == cp_model.INFEASIBLE else tuple(sorted(set(collect.solutions)))
