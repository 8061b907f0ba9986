"""Layer tables: a layer that repeats, evaluated once over a box of input sizes.

A chain of search often repeats one layer: the same op, parameters and domains of unknowns
on inputs of the same layout. The pass (`planner.solver.reach`) evaluates each layer over its
states x choices, and for a few hundred states most of that time is the fixed cost of the
ops' arithmetic, not the cells. A layer whose *signature* (everything its evaluation reads
but the sizes of its inputs) occurs more than once is evaluated instead over every
combination of its varying input sizes within a box, once; each later layer with that
signature reads its states' cells out of the table. A box that misses some state grows to
cover it, by at least its own width on each side it grows, so a chain whose sizes drift
rebuilds its table a logarithmic number of times.

Only layers that read no kept unknown (their grid is their choices alone) and serve one lane
(no for_all set) are tabulated; a table never holds more than `SLACK` times the cells of a
direct evaluation, and the box never reaches below size 1 (no state has a smaller size).
"""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from planner.domains import Unknown
from planner.errors import SpecError
from planner.graph import Node
from planner.solver.states import MAX_CELLS, NONE, Code, Declined, pick, radix_scale

SLACK = 4  # a table holds at most this many times the cells of the states it serves (plus FLOOR)
FLOOR = 64  # input cells a table may hold whatever the states


def static_signature(node: Node, choices: tuple[Unknown, ...]) -> tuple | None:
    """What a layer's evaluation reads besides its input sizes (`Node.signature`, with the places of its
    unknowns among its choices), or None when it reads unknowns other than its `choices` (kept ones,
    whose values vary over the states)."""
    if len(node.unknowns) != len(choices) or set(node.unknowns) != set(choices):
        return None
    return (node.signature, tuple(choices.index(u) for u in node.unknowns))


def repeated(layers: list[tuple[Node, tuple[Unknown, ...]]]) -> dict[int, int]:
    """For each layer (by `Node.index`, with the unknowns it chooses) whose static signature some other layer
    shares, a number for that signature (a cheap key: signatures are deep tuples)."""
    signatures = {node.index: static_signature(node, choices) for node, choices in layers}
    counts = Counter(s for s in signatures.values() if s is not None)
    numbers: dict[tuple, int] = {}
    return {n: numbers.setdefault(s, len(numbers)) for n, s in signatures.items() if s is not None and counts[s] > 1}


def layout(node: Node, tensors: dict[str, tuple]) -> tuple:
    """Each input dim's value where every state has the same (an int), None where it varies."""
    return tuple(tuple(d if isinstance(d, int) else None for d in tensors[name]) for name in dict.fromkeys(node.inputs))


def varying_rows(node: Node, tensors: dict[str, tuple], states: np.ndarray) -> np.ndarray:
    """The states' varying input sizes, one row per state (one lane: each array dim is (S, 1))."""
    columns = [d for name in dict.fromkeys(node.inputs) for d in tensors[name] if not isinstance(d, int)]
    if len(columns) == 1:
        return columns[0][states]
    return np.concatenate(columns, axis=1)[states] if columns else np.zeros((len(states), 0), np.int64)


@dataclass(frozen=True)
class Box:
    """Every combination of some input dims' sizes within [lo, hi]: cell r is row r of the mixed radix
    numbering (the last dim fastest)."""

    lo: np.ndarray
    hi: np.ndarray

    @property
    def spans(self) -> np.ndarray:
        return self.hi - self.lo + 1

    @property
    def size(self) -> int:
        return int(np.prod(self.spans.astype(np.float64)))

    @functools.cached_property
    def code(self) -> Code:
        """The box's cells as the mixed-radix codes of `planner.solver.states.Code`."""
        return Code(self.lo, radix_scale(self.spans), self.hi, NONE)

    @staticmethod
    def around(rows: np.ndarray, old: Box | None) -> Box:
        """A box holding the rows and the old box, grown by its width on each side that grows, never below 1."""
        lo, hi = rows.min(axis=0), rows.max(axis=0)
        if old is None:
            width = hi - lo + 1
            return Box(np.maximum(lo - width, 1), hi + width)
        width = old.spans
        lo = np.where(lo < old.lo, lo - width, old.lo)
        return Box(np.maximum(lo, 1), np.where(hi > old.hi, hi + width, old.hi))

    def find(self, rows: np.ndarray) -> np.ndarray | None:
        """Each row's cell, or None when some row lies outside the box."""
        if (rows.min(axis=0) < self.lo).any() or (rows.max(axis=0) > self.hi).any():
            return None
        return self.code.encode(rows)

    def inputs(self, node: Node, tensors: dict[str, tuple]) -> dict[str, tuple]:
        """The node's input tensors over the box: each varying dim one (R, 1, 1) column of the cells' sizes."""
        cells = np.arange(self.size)[:, None]
        columns = iter((self.lo + (cells // self.code.scale) % self.spans).T)
        return {
            name: tuple(d if isinstance(d, int) else next(columns).reshape(-1, 1, 1) for d in tensors[name])
            for name in dict.fromkeys(node.inputs)
        }


@dataclass(frozen=True)
class Table:
    """One layer signature's evaluation over a box of its varying input sizes, kept as its valid moves: per
    cell, the valid choices in order (rows `starts[r]` to `starts[r + 1]`), and for each of them every output
    dim (an int where all share it, else one value a move: (moves, 1)) and the objective's value."""

    box: Box
    starts: np.ndarray  # (R + 1,): where each cell's valid choices begin
    choice: np.ndarray  # per valid (cell, choice), in cell order, then choice order
    made: tuple[tuple[Any, ...], ...]  # per output tensor of the layer, in the order of `Node.outputs`
    value: np.ndarray | None

    def moves(self, node: Node, cells: np.ndarray, live: tuple[str, ...]) -> tuple:
        """The valid moves from states at these cells (`Box.find`), in the order of the direct evaluation's
        (state, then choice): each move's state and choice, the live outputs' dims and the objective's value."""
        count = self.starts[cells + 1] - self.starts[cells]
        state = np.repeat(np.arange(len(cells)), count)
        at = np.arange(len(state)) + np.repeat(self.starts[cells] - (np.cumsum(count) - count), count)
        made = {
            name: tuple(d if isinstance(d, int) else d[at] for d in dims)
            for name, dims in zip(node.outputs, self.made, strict=True)
            if name in live
        }
        return state, self.choice[at], made, None if self.value is None else self.value[at]


Evaluate = Callable[[Node, dict[str, tuple], dict], tuple[dict[str, tuple], np.ndarray, Any]]


def build_table(
    node: Node,
    tensors: dict[str, tuple],
    grid: dict,
    rows: np.ndarray,
    old: Table | None,
    n_choices: int,
    evaluate: Evaluate,
) -> Table | None:
    """A table whose box covers `rows` and the old table's box (`Box.around`); None when it would be too
    large for what it serves or does not evaluate there (the caller evaluates directly)."""
    box = Box.around(rows, None if old is None else old.box)
    cells = box.size
    if cells > SLACK * len(rows) + FLOOR or cells * n_choices > MAX_CELLS:
        return None
    try:
        made, valid, value = evaluate(node, box.inputs(node, tensors), grid)
    except (Declined, SpecError):  # at sizes no state has, maybe: the direct evaluation says
        return None
    full = (cells, n_choices)
    cell, choice = np.nonzero(np.broadcast_to(valid[:, :, 0], full))
    starts = np.zeros(cells + 1, np.int64)
    np.cumsum(np.bincount(cell, minlength=cells), out=starts[1:])
    tabled = tuple(
        tuple(int(d) if isinstance(d, (int, np.integer)) else pick(d, cell, choice, *full) for d in made[name])
        for name in node.outputs
    )
    value = None if value is None else np.broadcast_to(value, full)[cell, choice]
    return Table(box, starts, choice, tabled, value)
