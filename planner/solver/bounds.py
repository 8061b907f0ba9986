"""Sound bound passes over monotone networks: what sizes each tensor can have, and must have.

`bound_pass` goes forward: every dim of every tensor lies in an interval, and the first
`expect` outside its interval is proven unreachable at once. `required` goes backward from
the `expect`s: the sizes of each tensor from which the later `expect`s stay within reach.
Both are necessary conditions, never sufficient: the exact pass (`planner.solver.reach`)
decides what they allow, and the descent (`planner.solver.descent`) prunes with them.

Every op here is monotone (`Op.monotone`): an output dim never shrinks as an input dim grows.
So when each input dim lies in [lo, hi], the output of each value of the unknowns lies
between its value at the all-lo and at the all-hi corner, and over all values between the
least and the largest of these; and the sizes of one input dim that can still give an
output in [L, H] form an interval, found by a search over that dim with the other dims at
their extremes. Validity rules and ties between layers only narrow what is reachable.

Layers with one signature (`Node.signature`: a chain of search repeats one layer) share their
evaluations: each corner a layer asks is evaluated once, together with guesses of the corners
the next layers of that signature will ask (`_Seen`), so a 200-layer chain costs a few calls
of the ops' transfers, not 200.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from planner.deadline import Deadline
from planner.domains import Unknown
from planner.errors import FieldUnsupported, LayerError
from planner.graph import Network, Node
from planner.ops import OPS
from planner.solver.states import MAX_CHOICES, MAX_VALUE, choice_columns, lift
from planner.walk import op_transfer

Interval = tuple[int, int]
PROBES = 64  # sizes tried at once in each round of the interval search
GUESSES = 64  # corners guessed ahead in one evaluation of the forward pass, at most
CELLS = 4096  # corners x values of the unknowns in one evaluation, at most (the guesses give way)
# what an op's transfer raises where it does not evaluate (sizes it refuses, an op not written for arrays)
NOT_EVALUATED = (LayerError, FieldUnsupported, TypeError, ValueError, AttributeError)


@dataclass(frozen=True)
class Unreachable:
    """A layer whose output cannot have the size its `expect` asks, whatever the unknowns: proven from bounds."""

    node: Node
    dim: int
    lower: int
    upper: int
    wanted: int

    @property
    def message(self) -> str:
        return (
            f"{self.node.name}: whatever the unknowns, dim {self.dim} of its output lies in "
            f"{self.lower}..{self.upper}, and 'expect' asks for {self.wanted}"
        )


@dataclass(frozen=True)
class Bounds:
    """Each tensor's dims: an int (whatever the unknowns), or an interval (lo, hi), its all-lo and all-hi corners."""

    shapes: dict[str, tuple[int | Interval, ...]]
    proof: Unreachable | None  # the first `expect` outside its bounds (the pass stops there)


def cells(network: Network, bounds: Bounds) -> int:
    """About how many (size, choice) cells the reachable-state pass evaluates: per layer, the sizes its output
    can have on its widest dim, times the values of its unknowns."""
    total = 0
    for node in network.nodes:
        widths = [d[1] - d[0] + 1 for d in bounds.shapes.get(node.name, ()) if not isinstance(d, int)]
        choices = math.prod(u.domain.size() for u in node.unknowns)
        total += max(widths, default=1) * choices  # the widest dim: axes are mostly tied (square sizes)
    return total


def unreachable(network: Network, deadline: Deadline) -> Unreachable | None:
    """The first `expect` no plan can meet, found from each dim's bounds, or None when the bounds allow it."""
    bounds = bound_pass(network, deadline)
    return bounds.proof if bounds is not None else None


def applies(network: Network) -> bool:
    return not network.constraints and all(OPS[node.op].monotone for node in network.nodes)


def bound_pass(network: Network, deadline: Deadline) -> Bounds | None:
    """The forward bounds of every tensor, or None where the pass does not apply (constraints, an op that
    is not monotone, too many values, an op not written for arrays, a dim with no size of at least 1)."""
    if not applies(network):
        return None
    corners: list[int | Interval] = []
    for term in network.input_shape:
        if isinstance(term, int):
            corners.append(term)
        else:
            values = term.domain.members() if term.domain.size() <= MAX_CHOICES else [term.domain.lo, term.domain.hi]
            corners.append((min(values), max(values)))
    shapes: dict[str, tuple[int | Interval, ...]] = {"input": tuple(corners)}
    seen: dict[tuple, _Seen] = {}
    for node in network.nodes:
        deadline.ensure()
        inputs = tuple(shapes[name] for name in node.inputs)
        fixed = tuple(tuple(d if isinstance(d, int) else None for d in shape) for shape in inputs)
        ends = [tuple(d[end] for shape in inputs for d in shape if not isinstance(d, int)) for end in (0, 1)]
        found = seen.setdefault((node.signature, fixed), _Seen()).extremes(network, node, fixed, ends)
        if found is None:
            return None
        at_lo, at_hi = found
        if node.expect is not None and len(node.expect) != len(at_lo):
            return None  # the exact pass says what is wrong with the `expect`
        shape: list[int | Interval] = []
        for d, (least, largest) in enumerate(zip(at_lo, at_hi, strict=True)):
            if isinstance(least, int):
                shape.append(least)
                continue
            lower, upper = max(1, least[0]), largest[1]
            if upper < lower:  # no output of at least 1: the exact pass names the rule that breaks
                return None
            wanted = _wanted(node, d)
            if wanted is not None:
                if not lower <= wanted <= upper:
                    return Bounds(shapes, Unreachable(node, d, lower, upper, wanted))
                lower = upper = wanted
            shape.append((lower, upper))
        shapes[node.name] = tuple(shape)
    return Bounds(shapes, None)


Extremes = tuple[Any, ...]  # per output dim: an int, or (least, largest) over the values of the unknowns


@dataclass
class _Seen:
    """The corners layers of one signature and input layout were evaluated at (layers with equal
    `Node.signature` give equal outputs on equal inputs), and each one's output extremes.

    A layer asks for its all-lo and its all-hi corner (the values of its varying input dims). A corner
    not seen is evaluated together with guesses of the corners later layers will ask: the corner plus
    1, 2, ... times its step from the one the previous layer asked (a chain's sizes drift evenly: +2 a
    layer, or halving down to 1). Guesses double with each evaluation, up to `GUESSES`, within `CELLS`."""

    known: dict[tuple[int, ...], Extremes] = field(default_factory=dict)
    last: list[tuple[int, ...]] | None = None
    evaluations: int = 0

    def extremes(
        self, network: Network, node: Node, fixed: tuple, ends: list[tuple[int, ...]]
    ) -> tuple[Extremes, Extremes] | None:
        asked = [c for c in dict.fromkeys(ends) if c not in self.known]
        if asked:
            grid = _grid(node)
            if grid is None:
                return None
            guesses = self._guesses(asked, ends, CELLS // _choices(grid) // 2)
            found = _evaluate(network, node, fixed, grid, asked + guesses)
            if found is None and guesses:  # a guess the op refuses: the asked corners alone
                found = _evaluate(network, node, fixed, grid, asked)
            if found is None:
                return None
            self.known.update(found)
            self.evaluations += 1
        self.last = ends
        return self.known[ends[0]], self.known[ends[1]]

    def _guesses(self, asked: list[tuple[int, ...]], ends: list[tuple[int, ...]], most: int) -> list[tuple[int, ...]]:
        if self.last is None:
            return []
        guesses: dict[tuple[int, ...], None] = {}
        for end, before in zip(ends, self.last, strict=True):
            step = tuple(a - b for a, b in zip(end, before, strict=True))
            if end not in asked or not any(step):
                continue
            for t in range(1, min(GUESSES, 2**self.evaluations, most) + 1):
                corner = tuple(a + t * b for a, b in zip(end, step, strict=True))
                if not all(1 <= v <= MAX_VALUE for v in corner):
                    break
                if corner not in self.known:
                    guesses[corner] = None
        return [c for c in guesses if c not in asked]


def _evaluate(
    network: Network, node: Node, fixed: tuple, grid: dict[Unknown, np.ndarray], corners: list[tuple[int, ...]]
) -> dict[tuple[int, ...], Extremes] | None:
    """The output extremes at each corner: the layer evaluated once over corners x values of its unknowns."""
    rows = len(corners)
    columns = iter(np.array(corners, np.int64).reshape(rows, -1).T)
    inputs = tuple(tuple(d if d is not None else next(columns).reshape(rows, 1, 1) for d in dims) for dims in fixed)
    try:
        transfer = op_transfer(network, node, inputs, grid.__getitem__)
    except NOT_EVALUATED:
        return None
    dims: list[Any] = []
    for size in transfer.shape:
        if isinstance(size, (int, np.generic)):
            dims.append([int(size)] * rows)
            continue
        full = np.broadcast_to(lift(size), (rows, _choices(grid), 1))
        dims.append(list(zip(full.min(axis=(1, 2)).tolist(), full.max(axis=(1, 2)).tolist(), strict=True)))
    return {corner: tuple(d[r] for d in dims) for r, corner in enumerate(corners)}


def required(network: Network, bounds: Bounds, deadline: Deadline) -> dict[str, tuple[Interval | None, ...]]:
    """For each tensor, per dim, the sizes (an interval within its forward bounds) from which every later
    `expect` stays within reach; None where that is no narrower than the forward bounds."""
    forward = {name: [None if isinstance(d, int) else d for d in shape] for name, shape in bounds.shapes.items()}
    need: dict[str, list[Interval | None]] = {name: [None] * len(shape) for name, shape in forward.items()}
    for node in reversed(network.nodes):
        deadline.ensure()
        wanted = [_wanted(node, d) for d in range(len(need[node.name]))]
        targets = [(w, w) if w is not None else need[node.name][d] for d, w in enumerate(wanted)]
        if all(t is None for t in targets):
            continue  # nothing asked of this layer's output: nothing asked of its inputs through it
        grid = _grid(node)
        assert grid is not None  # the forward pass got past this layer
        for j, name in enumerate(node.inputs):
            for i, span in enumerate(forward[name]):
                if span is None or span[0] == span[1]:
                    continue
                found = _preimage(network, node, bounds, grid, j, i, targets)
                if found is not None:
                    met = _meet(need[name][i] or span, found)
                    need[name][i] = None if met == span else met
    return {name: tuple(dims) for name, dims in need.items()}


def _preimage(
    network: Network, node: Node, bounds: Bounds, grid: dict[Unknown, np.ndarray], j: int, i: int, targets: list
) -> Interval | None:
    """The sizes of dim i of input j from which some value of the unknowns may give every targeted output dim
    in its interval: [least size whose largest outputs reach every lower end, greatest whose least outputs
    stay under every upper end], the other dims at their extremes. None when the layer does not evaluate."""
    lo, hi = bounds.shapes[node.inputs[j]][i]  # type: ignore[misc]  # an interval: `required` skips ints
    evaluated: dict[tuple, list[np.ndarray] | None] = {}  # both searches begin with the same probes

    def outputs(sizes: np.ndarray, corner: int) -> list[np.ndarray] | None:
        inputs = []
        for k, name in enumerate(node.inputs):
            dims: list[Any] = [d if isinstance(d, int) else d[corner] for d in bounds.shapes[name]]
            if k == j:
                dims[i] = sizes.reshape(-1, 1, 1)
            inputs.append(tuple(dims))
        others = tuple(d for k, given in enumerate(inputs) for n, d in enumerate(given) if (k, n) != (j, i))
        key = (sizes.tobytes(), others)  # the other dims at one corner or the other, often the same
        if key not in evaluated:
            try:
                shape = op_transfer(network, node, tuple(inputs), grid.__getitem__).shape
                evaluated[key] = [np.broadcast_to(lift(d), (len(sizes), _choices(grid), 1))[:, :, 0] for d in shape]
            except NOT_EVALUATED:
                evaluated[key] = None
        return evaluated[key]

    def reaches(sizes: np.ndarray) -> np.ndarray | None:  # the largest outputs reach every lower end
        shape = outputs(sizes, 1)
        if shape is None:
            return None
        ok = np.ones(len(sizes), bool)
        for d, target in enumerate(targets):
            if target is not None:
                ok &= shape[d].max(axis=1) >= target[0]
        return ok

    def passes(sizes: np.ndarray) -> np.ndarray | None:  # the least outputs exceed some upper end
        shape = outputs(sizes, 0)
        if shape is None:
            return None
        over = np.zeros(len(sizes), bool)
        for d, target in enumerate(targets):
            if target is not None:
                over |= shape[d].min(axis=1) > target[1]
        return over

    first = _least(lo, hi, reaches)
    beyond = _least(lo, hi, passes)
    if first is None or beyond is None:
        return None
    return first, beyond - 1


def _least(lo: int, hi: int, test: Callable[[np.ndarray], np.ndarray | None]) -> int | None:
    """The least size in lo..hi where `test` (false, then true, as sizes grow) holds; hi + 1 when nowhere;
    None when the layer does not evaluate. Each round tries PROBES sizes at once."""
    while True:
        if hi - lo + 1 <= PROBES:
            sizes = np.arange(lo, hi + 1, dtype=np.int64)
        else:
            sizes = np.unique(np.linspace(lo, hi, PROBES).round().astype(np.int64))
        holds = test(sizes)
        if holds is None:
            return None
        if not holds.any():
            return hi + 1
        k = int(np.argmax(holds))
        if k == 0 or hi - lo + 1 <= PROBES:
            return int(sizes[k])
        lo, hi = int(sizes[k - 1]) + 1, int(sizes[k])


def _meet(a: Interval, b: Interval) -> Interval:
    return max(a[0], b[0]), min(a[1], b[1])


def _wanted(node: Node, d: int) -> int | None:
    return node.expect[d] if node.expect is not None and d < len(node.expect) else None


def _grid(node: Node) -> dict[Unknown, np.ndarray] | None:
    """Every value of the layer's unknowns, one per column of a (1, C, 1) grid; None when there are too many."""
    unknowns = node.unknowns
    if math.prod(u.domain.size() for u in unknowns) > MAX_CHOICES:
        return None
    return dict(zip(unknowns, choice_columns(tuple(u.domain for u in unknowns)), strict=True))


def _choices(grid: dict[Unknown, np.ndarray]) -> int:
    return next((v.shape[1] for v in grid.values()), 1)
