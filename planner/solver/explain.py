"""Saying why a spec has no plan, and what would work instead.

- `explain_infeasible`: the first layer (or constraint) at which no choice of the
  unknowns works, with the rule that breaks there under an example assignment.
- `explain_for_all`: which input sizes cannot be served together, and where a plan
  for one of them breaks at another.
- `input_sizes_that_work`: for a spec with fixed input sizes, the nearest sizes that
  make it feasible, and their `multiple_of` rule when they follow one.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import z3

from planner.deadline import Deadline
from planner.domains import Domain, Unknown
from planner.errors import Diagnostic, GaveUp, InfeasibleError, LayerError
from planner.graph import Network, Node
from planner.plan import compute_plan
from planner.sizes import linear_form
from planner.solver.encode import Encoding, encode
from planner.walk import broken_rules, instantiate, layer_transfer, located

MAX_SHOWN = 12  # values of an assignment written out in a message; the rest are counted


def _listed(values: list[str]) -> str:
    """The values, comma-separated, the ones past MAX_SHOWN counted."""
    if len(values) > MAX_SHOWN:
        values = [*values[:MAX_SHOWN], f"and {len(values) - MAX_SHOWN} more"]
    return ", ".join(values)


def _example(network: Network, assignment: dict[Unknown, int], upto: int | None) -> str:
    shown = [
        f"{u.name}={assignment[u]}"
        for u in network.unknowns
        if u in assignment and (upto is None or not (u.path[0] == "layers" and u.path[1] > upto))
    ]
    return f" (the shapes shown are those of {_listed(shown)})" if shown else ""


def explain_dead_end(network: Network, node: Node, example: dict[Unknown, int]) -> list[Diagnostic]:
    """The rule that breaks at the first layer no choice of the unknowns gets past (the pass's dead end),
    under the smallest partial plan that reaches it, its own unknowns and the later ones at their smallest;
    [] when that rule is not at this layer."""
    assignment = {**{u: u.domain.member(0) for u in network.unknowns}, **example}
    broken = [d for d in _broken_at(network, assignment) if d.layer == node.name]
    head = "; no choice of the unknowns makes the network valid up to here" if network.unknowns else ""
    tail = head + _example(network, assignment, node.index)
    return [dataclasses.replace(d, code="infeasible", message=d.message + tail) for d in broken]


def _broken_at(network: Network, assignment: dict[Unknown, int]) -> list[Diagnostic]:
    try:
        compute_plan(network, assignment)
    except InfeasibleError as e:
        return e.diagnostics
    return []


def explain_infeasible(enc: Encoding, deadline: Deadline) -> list[Diagnostic]:
    """Add layers, then constraints, in order until no assignment satisfies them; explain that step
    with the rule an assignment that satisfied everything before it breaks there."""
    network = enc.network
    solver = z3.Solver(ctx=enc.ctx)
    solver.add(*enc.domains)
    steps: list[tuple[int | None, z3.BoolRef]] = [(node.index, enc.layer(node.name)) for node in network.nodes]
    steps += [(None, c) for c in enc.constraints.values()]  # a constraint: after every layer
    head = "; no choice of the unknowns makes the network valid up to here" if network.unknowns else ""
    try:
        if deadline.check(solver) == z3.unsat:
            return _generic(network)
        for upto, constraint in steps:
            model = solver.model()
            solver.add(constraint)
            if deadline.check(solver) == z3.sat:
                continue
            example = enc.assignment(model)
            broken = _broken_at(network, {**example, **_sizes(enc, model)})
            tail = head + _example(network, example, upto)
            first = [dataclasses.replace(d, code="infeasible", message=d.message + tail) for d in broken]
            first = first or _generic(network)
            return first + minimal_conflict(enc, deadline.within(HINT_BUDGET))
    except GaveUp:
        pass
    return _generic(network)


def minimal_unsat_subset(solver: z3.Solver, literals: list[z3.BoolRef], deadline: Deadline) -> list[z3.BoolRef]:
    """A subset of the literals that the solver cannot satisfy together, and every smaller part of which
    it can (deletion-based, from Z3's unsat core, as CPMpy's `mus`); [] when all of them are satisfiable.
    Pure over the literals: it knows nothing of specs. Raises GaveUp past the deadline."""
    if deadline.check(solver, *literals) != z3.unsat:
        return []
    core = list(solver.unsat_core())
    for literal in list(core):
        trial = [c for c in core if not c.eq(literal)]
        if deadline.check(solver, *trial) == z3.unsat:
            core = trial
    return sorted(core, key=lambda c: [str(x) for x in literals].index(str(c)))


def minimal_conflict(enc: Encoding, deadline: Deadline) -> list[Diagnostic]:
    """A note naming a smallest set of layers (and constraints) that no plan satisfies together: one
    literal per layer's requirements (and per constraint), shrunk by `minimal_unsat_subset`, then
    mapped back to where the spec writes them. Empty when that set is a single layer (the first
    diagnostic has said it all)."""
    network = enc.network
    solver = z3.Solver(ctx=enc.ctx)
    solver.add(*enc.domains, *enc.definitions.values())
    where: dict[str, tuple] = {}
    literals = []
    parts: list[tuple[str, tuple, str | None, z3.BoolRef]] = [
        (f"layer {n.name}", n.path, n.name, enc.requirements[n.name]) for n in network.nodes
    ]
    parts += [(f"constraint {p + 1}", ("constraints", p), None, c) for p, c in enc.constraints.items()]
    for label, path, layer, requirement in parts:
        literal = z3.Bool(label, enc.ctx)
        solver.add(z3.Implies(literal, requirement))
        literals.append(literal)
        where[label] = (path, layer)
    try:
        core = minimal_unsat_subset(solver, literals, deadline)
    except GaveUp:
        return []
    if len(core) < 2:
        return []
    labels = [str(c) for c in core]
    lines = ", ".join(f"{label} (line {network.diagnostic(where[label][0], '', '').line})" for label in labels)
    path, layer = where[labels[0]]
    return [
        network.diagnostic(
            path,
            "conflict",
            f"no plan satisfies these together, though any smaller part of them can be satisfied: {lines}",
            layer=layer,
            severity="note",
        )
    ]


def _sizes(enc: Encoding, model: z3.ModelRef) -> dict[Unknown, int]:
    return {f: model.eval(enc.var(f), model_completion=True).as_long() for f in enc.network.for_all}


GENERIC = "no assignment of the unknowns satisfies the spec"


def failing_everywhere(network: Network, code: str) -> list[Diagnostic]:
    """Every layer whose rule `code` fails at the smallest value of each unknown, the shapes walked on past
    the layers that fail: for rules such as `padding-same` (PyTorch refuses 'same' with a stride above 1),
    which only larger values break, one error per layer at once rather than the first alone."""
    env = {u: u.domain.member(0) for u in (*network.unknowns, *network.for_all)}
    shapes: dict[str, tuple] = {"input": tuple(instantiate(t, env.__getitem__) for t in network.input_shape)}
    found: list[Diagnostic] = []
    for node in network.nodes:
        try:
            transfer = layer_transfer(network, node, tuple(shapes[n] for n in node.inputs), env.__getitem__)
        except LayerError:
            return found
        found += [located(network, node, r.code, r.message, r.param) for r in broken_rules(transfer) if r.code == code]
        shapes[node.name] = transfer.shape
        shapes.update(zip(node.outputs[1:], transfer.pieces, strict=True))
    return found


def _generic(network: Network) -> list[Diagnostic]:
    return [network.diagnostic(("layers",), "infeasible", GENERIC)]


def explain_for_all(network: Network, samples: list[dict[Unknown, int]], deadline: Deadline) -> list[Diagnostic]:
    """Why no plan serves every sampled size: a size with no plan at all, or two sizes no plan serves together."""
    sizes_text = lambda sizes: "x".join(str(sizes[f]) for f in network.for_all)  # noqa: E731
    where = ("input", "shape", network.input_shape.index(network.for_all[0]))
    plans = []
    for sizes in samples:
        enc = encode(network, sizes)
        solver = z3.Solver(ctx=enc.ctx)
        solver.add(*enc.all_constraints())
        try:
            if deadline.check(solver) == z3.unsat:
                return [
                    dataclasses.replace(d, message=f"at input size {sizes_text(sizes)}: {d.message}")
                    for d in explain_infeasible(enc, deadline)
                ]
        except GaveUp:
            break
        plans.append((sizes, enc.assignment(solver.model())))
    for sizes, plan in plans:
        for other in samples:
            broken = _broken_at(network, {**plan, **other})
            if broken:
                chosen = ", ".join(f"{u.name}={plan[u]}" for u in network.unknowns)
                intro = (
                    f"no plan holds for every input size of the for_all set: the plan for input size "
                    f"{sizes_text(sizes)} ({chosen or 'no unknowns'}) breaks at {sizes_text(other)}: "
                )
                return [network.diagnostic(where, "for-all", intro + broken[0].message, layer=broken[0].layer)]
    return [
        network.diagnostic(
            where,
            "for-all",
            "no plan holds for every input size of the for_all set (sizes "
            + ", ".join(sizes_text(s) for s in samples)
            + " cannot all be served)",
        )
    ]


HINT_BUDGET = 2.0  # seconds for each hint (a minimal conflict, input sizes that work): not worth a long wait


def input_sizes_that_work(network: Network, deadline: Deadline, *, around: int = 4) -> list[Diagnostic]:
    """Notes naming the feasible input sizes nearest to each fixed spatial input size: asked of the first
    plan of windows of sizes (`planner.solver.first`), or of Z3 where the pass does not apply."""
    from planner.solver.states import Declined

    fixed = {axis: size for axis, size in enumerate(network.input_shape[2:], 2) if isinstance(size, int)}
    if not fixed:
        return []
    groups: dict[int, Unknown] = {}  # equal sizes stay equal: a square image stays square
    for size in sorted(set(fixed.values())):
        axes = [a for a, s in fixed.items() if s == size]
        radius = max(64, size)
        groups[size] = Unknown(
            f"input.shape[{axes[0]}]", "size", Domain(max(1, size - radius), size + radius), ("input", "shape", axes[0])
        )
    shape = tuple(
        groups[t] if axis in fixed and isinstance(t, int) else t for axis, t in enumerate(network.input_shape)
    )
    shape = (network.input_shape[0], network.input_shape[1], *shape[2:])
    variant = dataclasses.replace(network, input_shape=shape, unknowns=(*groups.values(), *network.unknowns))
    budget = deadline.within(HINT_BUDGET)
    try:
        return _size_notes(network, fixed, groups, _window_by_pass(variant, budget), around)
    except Declined:  # the pass does not apply: Z3
        return _size_notes(network, fixed, groups, _window_by_z3(variant, budget), around)


def _size_notes(
    network: Network, fixed: dict[int, int], groups: dict[int, Unknown], window: Window, around: int
) -> list[Diagnostic]:
    notes = []
    for size, unknown in groups.items():
        try:
            found = sorted(_nearest(window, unknown, size, -1, around) + _nearest(window, unknown, size, +1, around))
        except GaveUp:
            break
        if not found:  # the input size is not what breaks the spec
            continue
        shown_axes = ", ".join(str(a) for a, s in fixed.items() if s == size)
        rule = _rule(found)
        message = f"input sizes that work near {size} (axis {shown_axes}): {', '.join(map(str, found))}" + (
            f"; they are {rule}" if rule else ""
        )
        notes.append(network.diagnostic(unknown.path, "sizes-that-work", message, severity="note"))
    return notes


Window = Callable[[Unknown, int, int], int | None]  # the smallest feasible value of an input size in lo..hi


def _window_by_pass(network: Network, deadline: Deadline) -> Window:
    """A window asked of the first plan (`planner.solver.first`) of the network with the size's domain
    narrowed to lo..hi and its unknown first in order (raises Declined where the pass does not apply)."""
    from planner.solver.first import first_plan

    def window(unknown: Unknown, lo: int, hi: int) -> int | None:
        narrowed = dataclasses.replace(unknown, domain=unknown.domain.restrict(lo, hi))
        variant = _with_unknowns(network, {unknown: narrowed})
        variant = dataclasses.replace(variant, unknowns=(narrowed, *(u for u in variant.unknowns if u is not narrowed)))
        plan = first_plan(variant, deadline)
        return None if plan is None else plan[narrowed]

    return window


def _window_by_z3(network: Network, deadline: Deadline) -> Window:
    """A window asked of one Z3 solver over the network: some feasible value, then a bisection down."""
    enc = encode(network)
    solver = z3.Solver(ctx=enc.ctx)
    solver.add(*enc.all_constraints())

    def some(var: z3.ArithRef, lo: int, hi: int) -> int | None:
        solver.push()
        solver.add(var >= lo, var <= hi)
        try:
            if deadline.check(solver) == z3.unsat:
                return None
            return solver.model().eval(var).as_long()
        finally:
            solver.pop()

    def window(unknown: Unknown, lo: int, hi: int) -> int | None:
        var = enc.var(unknown)
        value = some(var, lo, hi)
        while value is not None and lo < value:  # the smallest: bisect lo..value
            mid = (lo + value) // 2
            hit = some(var, lo, mid)
            lo, value = (mid + 1, value) if hit is None else (lo, hit)
        return value

    return window


def _nearest(window: Window, unknown: Unknown, size: int, direction: int, count: int) -> list[int]:
    """Up to `count` feasible values of the unknown nearest to `size`, going down (-1) or up (+1): a galloping
    search for a window that holds one (its smallest is the nearest above), then going down a bisection
    for the highest."""
    domain = unknown.domain
    found: list[int] = []
    bound = size
    while len(found) < count:
        width = 1
        while True:
            lo, hi = (
                (max(domain.lo, bound - width), bound - 1)
                if direction < 0
                else (bound + 1, min(domain.hi, bound + width))
            )
            value = window(unknown, lo, hi) if lo <= hi else None
            if value is not None or lo <= domain.lo and direction < 0 or hi >= domain.hi and direction > 0:
                break
            width *= 2
        if value is None:
            break
        if direction < 0:  # the highest feasible value in value..hi
            while value < hi:
                mid = (value + hi + 1) // 2
                hit = window(unknown, mid, hi)
                value, hi = (value, mid - 1) if hit is None else (hit, hi)
        found.append(value)
        bound = value
    return found


def _rule(sizes: list[int]) -> str:
    """The period the sizes follow, e.g. '16k + 12' or '16k or 16k + 15', when they are every number
    between the smallest and the largest with a few residues modulo some m; else ''."""
    if len(sizes) < 3:
        return ""
    for m in range(2, (sizes[-1] - sizes[0]) // 2 + 1):
        residues = sorted({s % m for s in sizes})
        if len(residues) * 2 > m:
            continue
        if [s for s in range(sizes[0], sizes[-1] + 1) if s % m in residues] == sizes:
            if residues == [0]:
                return f"the multiples of {m}"
            return "of the form " + " or ".join(linear_form(m, r) for r in residues)
    return ""


WIDEN = 4  # a relaxed domain reaches WIDEN times its largest value (at least 16 more)
MAX_DOMAIN_NOTES = 3


def domains_too_narrow(network: Network, deadline: Deadline) -> list[Diagnostic]:
    """Notes naming the domains that alone make the spec infeasible: with one domain source relaxed at a
    time (its largest value widened), the spec has a plan; each note says which values that plan needs,
    where the domain comes from and how to widen it. Asked of the first plan of widened variants
    (`planner.solver.first`), or of Z3 where the pass does not apply. Strides and dilations are not
    relaxed: Z3's encoding splits into cases over their values."""
    from planner.solver.states import Declined

    groups: dict[tuple[str, ...], list[Unknown]] = {}
    for unknown in network.unknowns:
        if unknown.kind not in ("stride", "dilation"):
            groups.setdefault(_domain_source(network, unknown), []).append(unknown)
    every = [u for unknowns in groups.values() for u in unknowns]
    trials = [*groups.items(), *([(("all",), every)] if len(groups) > 1 else [])]  # one at a time, then all
    try:
        return _domain_notes(network, trials, _least_by_pass(network, deadline), deadline)
    except Declined:  # the pass does not apply: Z3
        return _domain_notes(network, trials, _least_by_z3(encode(network), deadline), deadline)


Least = Callable[[list[Unknown]], list[tuple[Unknown, int]] | None]  # values a plan needs past the domains


def _domain_notes(
    network: Network, trials: list[tuple[tuple[str, ...], list[Unknown]]], least: Least, deadline: Deadline
) -> list[Diagnostic]:
    notes: list[Diagnostic] = []
    try:
        for source, unknowns in trials:
            if len(notes) >= MAX_DOMAIN_NOTES or deadline.passed() or notes and source == ("all",):
                break
            needed = least(unknowns)
            if not needed:
                continue
            if source == ("all",):  # several domains at once: one note per domain that must grow
                by_source: dict[tuple[str, ...], list[tuple[Unknown, int]]] = {}
                for u, v in needed:
                    by_source.setdefault(_domain_source(network, u), []).append((u, v))
                notes += [_domain_note(network, src, group, together=True) for src, group in by_source.items()]
            else:
                notes.append(_domain_note(network, source, needed))
    except GaveUp:
        pass
    return notes


def _widest(unknown: Unknown) -> int:
    return max(unknown.domain.hi * WIDEN, unknown.domain.hi + 16)


def _least_by_pass(network: Network, deadline: Deadline) -> Least:
    """With the unknowns' largest values raised by one amount, the least amount that gives a plan (a
    bisection, each step the first plan of a widened variant), and that plan's values past the domains;
    None when the widest gives none. Raises Declined where the pass does not apply."""
    from planner.solver.first import first_plan

    def plan_at(unknowns: list[Unknown], extra: int) -> dict[Unknown, int] | None:
        widened = {
            u: dataclasses.replace(u, domain=Domain(u.domain.lo, min(u.domain.hi + extra, _widest(u))))
            for u in unknowns
        }
        plan = first_plan(_with_unknowns(network, widened), deadline)
        return None if plan is None else {u: plan[widened.get(u, u)] for u in network.unknowns}

    def least(unknowns: list[Unknown]) -> list[tuple[Unknown, int]] | None:
        lo, hi = 1, max(_widest(u) - u.domain.hi for u in unknowns)
        plan = plan_at(unknowns, hi)
        while plan is not None and lo < hi:
            mid = (lo + hi) // 2
            found = plan_at(unknowns, mid)
            lo, hi, plan = (mid + 1, hi, plan) if found is None else (lo, mid, found)
        return None if plan is None else [(u, plan[u]) for u in unknowns if plan[u] not in u.domain]

    return least


def _least_by_z3(enc: Encoding, deadline: Deadline) -> Least:
    """With the unknowns' domains widened, some plan's values past the domains, each brought down to the
    nearest value that still has a plan (the ones before held there); None when the widest gives none."""
    rest = [c for c in enc.all_constraints() if not any(c.eq(d) for d in enc.domains)]
    domains = dict(zip((*enc.network.unknowns, *enc.network.for_all), enc.domains, strict=True))

    def least(unknowns: list[Unknown]) -> list[tuple[Unknown, int]] | None:
        solver = z3.Solver(ctx=enc.ctx)
        solver.add(*rest, *(d for u, d in domains.items() if u not in unknowns))
        for u in unknowns:
            solver.add(enc.var(u) >= u.domain.lo, enc.var(u) <= _widest(u))
        if deadline.check(solver) != z3.sat:
            return None
        return _least_needed(solver, enc, unknowns, deadline)

    return least


def _with_unknowns(network: Network, swapped: dict[Unknown, Unknown]) -> Network:
    """The network with some unknowns replaced (by ones of other domains) wherever they are used."""

    def swap(value: Any) -> Any:
        return instantiate(value, lambda u: swapped.get(u, u))

    nodes = tuple(
        dataclasses.replace(n, params={k: swap(v) for k, v in n.params.items()})
        if any(u in swapped for u in n.unknowns)
        else n
        for n in network.nodes
    )
    return dataclasses.replace(
        network, nodes=nodes, input_shape=swap(network.input_shape), unknowns=swap(network.unknowns)
    )


def shared_across_axes(network: Network, deadline: Deadline) -> list[Diagnostic]:
    """Notes naming a "?" shared by the spatial axes of a layer that makes the spec infeasible: with one
    unknown per axis instead (`["?", "?"]`), the spec has a plan, whose values per axis the note gives.
    Tried one shared unknown at a time, by the first plan (`planner.solver.first`), within the deadline."""
    from planner.solver.first import first_plan
    from planner.solver.states import Declined

    notes: list[Diagnostic] = []
    for node in network.nodes:
        for key, value in node.params.items():
            if not (isinstance(value, tuple) and len(value) > 1 and isinstance(value[0], Unknown)):
                continue
            if any(v is not value[0] for v in value) or type(value[0]) is not Unknown or deadline.passed():
                continue
            shared = value[0]
            per_axis = tuple(dataclasses.replace(shared, name=f"{shared.name}[{a}]") for a in range(len(value)))
            params = {**node.params, key: per_axis}
            nodes = tuple(dataclasses.replace(n, params=params) if n is node else n for n in network.nodes)
            unknowns = tuple(u for u in network.unknowns if u is not shared)
            elsewhere = [
                k
                for n in network.nodes
                for k, v in n.params.items()
                if (n, k) != (node, key) and shared in _flat_terms({k: v})
            ]
            if elsewhere:  # also another parameter's (a pool's stride is its kernel) or layer's: not this one's
                continue
            variant = dataclasses.replace(network, nodes=nodes, unknowns=(*unknowns, *per_axis))
            try:
                plan = first_plan(variant, deadline)
            except (Declined, GaveUp):
                continue
            if plan is None:
                continue
            shown = " and ".join(str(plan[u]) for u in per_axis)
            one_each = ", ".join(['"?"'] * len(value))
            message = (
                f'{node.name}: its {key} is one "?" for all {len(value)} axes, but a plan needs {shown} on them; '
                f"write {key}: [{one_each}] for one unknown per axis"
            )
            notes.append(network.diagnostic((*node.path, key), "per-axis", message, layer=node.name, severity="note"))
    return notes


def _flat_terms(params: dict) -> list:
    out: list = []
    for value in params.values():
        stack = [value]
        while stack:
            item = stack.pop()
            if isinstance(item, tuple):
                stack.extend(item)
            else:
                out.append(item)
    return out


def _domain_source(network: Network, unknown: Unknown) -> tuple[str, ...]:
    """Where an unknown's domain is written: ("defaults", kind), ("variables", name), ("builtin", kind) for a
    "?" under the built-in defaults, or ("layer", name) for a range or one_of written at the layer."""
    if unknown.path and unknown.path[0] in ("defaults", "variables"):
        return (unknown.path[0], str(unknown.path[1]))
    written = network.loaded.source.data
    for part in unknown.path:
        written = written[part]
    if written != "?":
        return ("layer", unknown.name)
    return ("defaults" if unknown.kind in network.loaded.spec.defaults.model_fields_set else "builtin", unknown.kind)


def _least_needed(
    solver: z3.Solver, enc: Encoding, unknowns: list[Unknown], deadline: Deadline
) -> list[tuple[Unknown, int]]:
    """The unknowns a plan must take outside their domains, each with the value nearest its domain that a
    plan allows (the others held where the plan before put them)."""
    model = solver.model()
    outside = [u for u in unknowns if model.eval(enc.var(u), model_completion=True).as_long() not in u.domain]
    needed = []
    for u in outside:
        var = enc.var(u)
        value = model.eval(var, model_completion=True).as_long()
        lo = u.domain.hi + 1
        while lo < value:  # bisection for the smallest value past the domain that still has a plan
            mid = (lo + value) // 2
            solver.push()
            solver.add(var >= lo, var <= mid)
            if deadline.check(solver) == z3.sat:
                value = solver.model().eval(var, model_completion=True).as_long()
            else:
                lo = mid + 1
            solver.pop()
        needed.append((u, value))
        solver.add(var == value)
    return needed


def _domain_note(
    network: Network, source: tuple[str, ...], needed: list[tuple[Unknown, int]], together: bool = False
) -> Diagnostic:
    first = needed[0][0]
    kind, domain = first.kind, first.domain
    widened = f"{{min: {domain.lo}, max: {max(v for _, v in needed)}}}"
    values = _listed([f"{u.name} = {v}" for u, v in needed])
    where, fix, path = {
        "defaults": (f"defaults.{kind} allows {domain}", f"defaults: {{{kind}: {widened}}}", ("defaults", kind)),
        "variables": (
            f"variables.{source[1]} allows {domain}",
            f"variables: {{{source[1]}: {widened}}}",
            ("variables", source[1]),
        ),
        "builtin": (f'"?" takes the built-in {kind} domain {domain}', f"defaults: {{{kind}: {widened}}}", first.path),
        "layer": (f"its domain is {domain}", f"{widened} there", first.path),
    }[source[0]]
    layer = None if first.name.startswith("$") else first.name.split(".")[0]
    message = f"a plan exists with {values}, outside the domain: {where}; widen it with {fix}" + (
        " (together with the other domains named here: no single one suffices)" if together else ""
    )
    return network.diagnostic(path, "domain", message, layer=layer, severity="note")
