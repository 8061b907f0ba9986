"""Networks solved one spatial axis at a time, where their axes are apart.

When every layer's op keeps its axes apart (`Op.axes_apart`: conv, pooling, joins, pointwise
ops), the height and the width of each tensor depend only on the height and the width of the
input and on the layers' height and width parameters. The plans are then, for each value of
the *shared* unknowns (those used on two axes, such as one kernel written for both, or on no
axis, such as a batch size), every combination of a plan of each axis. The pass runs once per
axis and value of the shared unknowns over a 1-D projection of the network, with a number of
states per layer that is the sum of the axes' instead of their product:

- the count is the sum over the shared values of the product of the axes' counts;
- the first plan is the smallest of the merged first plans over the shared values;
- the plan of rank r picks the shared value by the cumulative counts, then each axis's plan by
  the mixed-radix digits of what is left: a bijection onto the plans, so uniform ranks give
  uniform samples (its order is not the lexicographic one, which only samples need not keep).

A projection is exact: the rules every layer has on whole shapes (element counts within int64)
are left out, so the bound pass must show no tensor can come near them.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, replace
from typing import Any

from planner.arithmetic import INT64_MAX
from planner.deadline import Deadline
from planner.domains import ForAllSize, Unknown
from planner.graph import Network, Node
from planner.ops import OPS
from planner.solver.bounds import Bounds
from planner.solver.reach import Reach
from planner.solver.states import Declined, unknowns_in

MAX_SHARED = 4096  # values of the shared unknowns, each solved apart


@dataclass(frozen=True)
class _Axis:
    """The pass of one axis: perhaps another axis's, when their projections are alike, so its plans are read
    through `rename` (the solved projection's unknowns -> this axis's)."""

    reach: Reach
    rename: dict[Unknown, Unknown]

    def read(self, plan: dict[Unknown, int]) -> dict[Unknown, int]:
        return {self.rename[u]: v for u, v in plan.items()}


@dataclass(frozen=True)
class _Case:
    """One value of the shared unknowns and the pass of each axis under it."""

    shared: dict[Unknown, int]
    axes: tuple[_Axis, ...]
    counts: tuple[int, ...]

    @property
    def count(self) -> int:
        return math.prod(self.counts)


class Axes:
    """The reachable-state pass of each axis apart; answers count, first and plan_at like `Reach`."""

    def __init__(self, network: Network, bounds: Bounds | None, deadline: Deadline, *, strict: bool = False):
        if not apart(network, bounds):
            raise Declined("the axes are not apart")
        self.network = network
        shared = shared_unknowns(network)
        if math.prod(u.domain.size() for u in shared) > MAX_SHARED:
            raise Declined("too many values of the shared unknowns")
        passes: dict[tuple, Reach] = {}  # projections that are alike (square kernels) solved once
        self.cases: list[_Case] = []
        self.blocked: tuple[int, Reach] | None = None  # the first axis with no plan: what its pass says
        for values in itertools.product(*(u.domain.members() for u in shared)):
            fixed = dict(zip(shared, values, strict=True))
            axes = []
            for axis in range(network.rank):
                projected = project(network, axis, fixed)
                key = _signature(projected)
                if key not in passes:
                    passes[key] = Reach(projected, deadline, counting=True, strict=strict)
                solved = passes[key].network.unknowns
                axes.append(_Axis(passes[key], dict(zip(solved, projected.unknowns, strict=True))))
            counts = tuple(a.reach.count() for a in axes)
            if all(counts):
                self.cases.append(_Case(fixed, tuple(axes), counts))
            elif self.blocked is None:
                axis = counts.index(0)
                self.blocked = (axis, axes[axis].reach)

    @property
    def feasible(self) -> bool:
        return bool(self.cases)

    def count(self) -> int:
        return sum(case.count for case in self.cases)

    def dead_end_message(self) -> tuple[Node | None, str]:
        """Where the first axis with no plan stops (for the first value of the shared unknowns)."""
        if self.feasible or self.blocked is None:
            return None, ""
        axis, reach = self.blocked
        node, message = reach.dead_end_message()
        return node, message.replace(": ", f": on spatial axis {axis} (dims [N, C, that axis]): ", 1)

    def first(self) -> dict[Unknown, int]:
        """The lexicographically smallest plan: the smallest of each shared value's merged first plans."""
        merged = [self._merge(case, [a.read(a.reach.first()) for a in case.axes]) for case in self.cases]
        return min(merged, key=lambda a: tuple(a[u] for u in self.network.unknowns))

    def plan_at(self, rank: int) -> dict[Unknown, int]:
        """The plan of this rank in the order of the cases, then of the axes' ranks (mixed radix)."""
        for case in self.cases:
            if rank < case.count:
                ranks = []
                for count in reversed(case.counts):
                    rank, digit = divmod(rank, count)
                    ranks.append(digit)
                digits = reversed(ranks)
                return self._merge(case, [a.read(a.reach.plan_at(r)) for a, r in zip(case.axes, digits, strict=True)])
            rank -= case.count
        raise IndexError(rank)

    def _merge(self, case: _Case, plans: list[dict[Unknown, int]]) -> dict[Unknown, int]:
        merged = dict(case.shared)
        for plan in plans:
            merged.update(plan)
        return {u: merged[u] for u in self.network.unknowns}


def apart(network: Network, bounds: Bounds | None) -> bool:
    """Whether the network can be solved one axis at a time: two or more spatial axes, every op keeping its
    axes apart, no constraints or objective, and element counts proven far from int64's limit."""
    if network.rank < 2 or network.constraints or network.objective is not None or bounds is None:
        return False
    if not all(OPS[node.op].axes_apart(node.model, network.dialect) for node in network.nodes):
        return False
    for shape in bounds.shapes.values():
        largest = math.prod(d if isinstance(d, int) else d[1] for d in shape)
        if largest > INT64_MAX:
            return False
    return True


def shared_unknowns(network: Network) -> list[Unknown]:
    """The unknowns used on no spatial axis or on two or more, in the network's order (for_all sizes aside)."""
    axes: dict[Unknown, set[int]] = {}
    for d, term in enumerate(network.input_shape):
        if isinstance(term, Unknown) and not isinstance(term, ForAllSize):
            axes.setdefault(term, set()).add(d - 2 if d >= 2 else -1)
    for node in network.nodes:
        for value in node.params.values():
            per_axis = isinstance(value, tuple) and len(value) == network.rank
            for a, entry in enumerate(value if per_axis else (value,)):
                for u in unknowns_in(entry if isinstance(entry, tuple) else (entry,)):
                    axes.setdefault(u, set()).add(a if per_axis else -1)
    return [u for u in network.unknowns if u in axes and (len(axes[u]) > 1 or -1 in axes[u])]


def project(network: Network, axis: int, fixed: dict[Unknown, int]) -> Network:
    """The 1-D network of one spatial axis, the shared unknowns fixed to these values."""

    def term(value: Any) -> Any:
        if isinstance(value, tuple):
            return tuple(term(v) for v in value)
        return fixed.get(value, value) if isinstance(value, Unknown) else value

    def params(node: Node) -> dict[str, Any]:
        return {
            key: term((value[axis],) if isinstance(value, tuple) and len(value) == network.rank else value)
            for key, value in node.params.items()
        }

    def expect(node: Node) -> tuple[int | None, ...] | None:
        return None if node.expect is None else (*node.expect[:2], node.expect[2 + axis])

    shape = network.input_shape
    nodes = tuple(replace(node, params=params(node), expect=expect(node)) for node in network.nodes)
    projected = replace(network, input_shape=term((*shape[:2], shape[2 + axis])), nodes=nodes)
    used = set(unknowns_in(projected.input_shape)) | {u for n in nodes for u in n.unknowns}
    return replace(projected, unknowns=tuple(u for u in network.unknowns if u in used))


def _signature(network: Network) -> tuple:
    """What a projection's pass depends on, with the unknowns by name: two alike axes give one pass."""

    def named(value: Any) -> Any:
        if isinstance(value, tuple):
            return tuple(named(v) for v in value)
        return (value.domain, value.kind) if isinstance(value, Unknown) else value

    return (
        named(network.input_shape),
        tuple((n.name, tuple((k, named(v)) for k, v in n.params.items()), n.expect) for n in network.nodes),
    )
