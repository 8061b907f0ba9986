"""The states of the reachable-state pass (`planner.solver.reach`) and the array helpers it works with.

A *state* between two layers holds the shapes of the tensors later layers still read and the values of
the unknowns later layers still use; a dim is a Python int when every state has the same, else an int64
array with one row per state and one column per lane (a size of a for_all set). A *step* is one layer
(or the input) with the values of the unknowns it is the first to use.
"""

from __future__ import annotations

import functools
import itertools
import math
from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np

from planner.domains import Domain, ForAllSize, Unknown
from planner.errors import InternalError
from planner.graph import Network, Node

MAX_STATES = 250_000  # states between two layers
MAX_CHOICES = 50_000  # values of one layer's fresh unknowns
MAX_CELLS = 8_000_000  # states x choices x lanes evaluated in one call
MAX_ARRIVALS = 2_000_000  # moves kept from a forward pass, over all its steps (`Stage.arrivals`)
MAX_LANES = 20_000  # sizes of a for_all set served together
MAX_VALUE = 2**31  # larger sizes or values could overflow int64 products: Z3 handles them
SAFE = 2**62  # counts below this add up in int64 without overflow
NO_COMPLETION = np.iinfo(np.int64).max  # the best value of a state no plan passes through
ONE, NONE = np.ones(1, np.int64), np.zeros(0, np.int64)
ONE.flags.writeable = NONE.flags.writeable = False


T = TypeVar("T")


def need(value: T | None) -> T:
    """A value the pass has computed by now (a count, a rank, a back-pointer): None here is a bug."""
    if value is None:
        raise InternalError("the reachable-state pass reads a value it has not computed")
    return value


class Declined(Exception):
    """The pass does not apply to this network; Z3 does the work."""


@dataclass
class Stage:
    """The states after one step: each live tensor's dims and each kept unknown's value, per state.

    A dim is a Python int when every state has the same, else an int64 array of shape (S, M),
    one column per lane. `keys` are the states' distinct rows; `forward` counts partial plans."""

    tensors: dict[str, tuple[Any, ...]]
    kept: dict[Unknown, np.ndarray]
    keys: np.ndarray
    size: int
    forward: np.ndarray | None = None  # partial plans reaching each state, when counting
    code: Code | Hashed | None = None  # how key rows map to states: sorted int64 codes, or hashes
    backward: np.ndarray | None = None
    best: np.ndarray | None = None  # best objective value of a completion from each state
    rank: np.ndarray | None = None  # of each state's lexicographically smallest partial plan among the stage's
    by_rank: np.ndarray | None = None  # the states in the order of their ranks
    back: tuple[np.ndarray, np.ndarray] | None = None  # that plan's last move: parent state and choice
    reached: np.ndarray | None = None  # with an objective: the best value of a partial plan reaching each state
    arrivals: Arrivals | None = None  # the moves into it, kept from the forward pass while they are few enough
    _index: dict[bytes, int] | None = field(default=None, repr=False)

    def index_of(self, rows: np.ndarray) -> np.ndarray:
        """The state index of each key row (-1 for a row that is no state)."""
        if self.code is not None:
            return self.code.find(rows)
        if self._index is None:
            self._index = {row.tobytes(): n for n, row in enumerate(self.keys)}
        return np.array([self._index.get(row.tobytes(), -1) for row in rows], dtype=np.int64)


def radix_scale(spans: np.ndarray) -> np.ndarray:
    """The place value of each column in the mixed radix of these spans, the last column fastest."""
    scale = np.ones(len(spans), np.int64)
    scale[:-1] = np.cumprod(spans[:0:-1])[::-1]
    return scale


@dataclass(frozen=True)
class Code:
    """Key rows as one int64 each (mixed radix over each column's range), and the states' sorted codes."""

    lo: np.ndarray
    scale: np.ndarray
    hi: np.ndarray
    codes: np.ndarray  # of the states, ascending

    @staticmethod
    def fitting(rows: np.ndarray) -> Code | None:
        lo, hi = rows.min(axis=0), rows.max(axis=0)
        if rows.shape[1] == 1:  # one column: its own code
            return Code(lo, ONE, hi, NONE)
        spans = (hi - lo + 1).astype(np.float64)
        if np.log2(spans).sum() >= 61:  # the product of the spans would not fit an int64
            return None
        return Code(lo, radix_scale(hi - lo + 1), hi, NONE)

    def encode(self, rows: np.ndarray) -> np.ndarray:
        return rows[:, 0] - self.lo[0] if len(self.scale) == 1 else (rows - self.lo) @ self.scale

    def unique(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The sorted distinct codes, one row having each, and each row's position among them."""
        codes = self.encode(rows)
        span = int(codes.max()) + 1
        if span > 4 * len(codes) + 1_000_000:
            codes, first, inverse = np.unique(codes, return_index=True, return_inverse=True)
            return codes, first, inverse.reshape(-1)
        present = np.zeros(span, bool)  # a counting sort: no comparison sort needed
        present[codes] = True
        position = np.cumsum(present) - 1
        inverse = position[codes]
        first = np.empty(int(position[-1]) + 1, np.int64)
        first[inverse] = np.arange(len(codes))  # any row of a state will do: they are equal
        return np.flatnonzero(present), first, inverse

    def find(self, rows: np.ndarray) -> np.ndarray:
        inside = np.asarray(((rows >= self.lo) & (rows <= self.hi)).all(axis=1))
        codes = self.encode(np.where(inside[:, None], rows, self.lo))
        at = np.minimum(np.searchsorted(self.codes, codes), len(self.codes) - 1)
        return np.where(inside & (self.codes[at] == codes), at, -1)


@dataclass(frozen=True)
class Hashed:
    """Key rows too wide for a `Code`: found by a hash of each row, then compared in full."""

    keys: np.ndarray  # the states' rows, in the order of their hashes
    hashes: np.ndarray  # ascending

    @staticmethod
    def unique(rows: np.ndarray) -> tuple[Hashed, np.ndarray, np.ndarray] | None:
        """The distinct rows by hash, one row having each, each row's position; None on a collision."""
        hashes, first, inverse = np.unique(row_hash(rows), return_index=True, return_inverse=True)
        inverse = inverse.reshape(-1)
        if not (rows == rows[first][inverse]).all():  # two rows share a hash: compare them all instead
            return None
        return Hashed(rows[first], hashes), first, inverse

    def find(self, rows: np.ndarray) -> np.ndarray:
        hashes = row_hash(rows)
        at = np.minimum(np.searchsorted(self.hashes, hashes), len(self.hashes) - 1)
        same = (self.hashes[at] == hashes) & (self.keys[at] == rows).all(axis=1)
        return np.where(same, at, -1)


def row_hash(rows: np.ndarray) -> np.ndarray:
    """A 64-bit hash of each row: a dot product with fixed odd multipliers, wrapping modulo 2**64."""
    width = rows.shape[1]
    if width > len(_MULTIPLIERS):
        raise Declined(f"{width} columns in a state")
    with np.errstate(over="ignore"):
        return (rows.astype(np.uint64) * _MULTIPLIERS[:width]).sum(axis=1, dtype=np.uint64)


_MULTIPLIERS = np.random.default_rng(20261204).integers(1, 2**63, size=1 << 16, dtype=np.uint64) | np.uint64(1)


@dataclass(frozen=True)
class Step:
    """One layer (or the input, `node` None): the unknowns it chooses and what stays alive after it."""

    node: Node | None
    fresh: tuple[Unknown, ...]
    choices: np.ndarray  # (C, len(fresh)) values, rows in lexicographic order
    live: tuple[str, ...]  # tensors read after this step
    keep: tuple[Unknown, ...]  # unknowns used after this step


class Arrivals:
    """The moves of one step from every state before it, by parent state then choice: each one's parent,
    choice, the state it leads to and its part of the objective (what the step's evaluation gives, kept,
    so that the backward pass and the plans' walks read them instead of evaluating the step again)."""

    def __init__(self, parent: np.ndarray, choice: np.ndarray, child: np.ndarray, value: np.ndarray | None):
        order = None
        if len(parent) > 1:
            step = np.diff(parent)
            if (step < 0).any() or ((step == 0) & (np.diff(choice) < 0)).any():
                order = np.lexsort((choice, parent))
        self.parent, self.choice, self.child = (a if order is None else a[order] for a in (parent, choice, child))
        self.value = value if value is None or order is None else value[order]

    def of(self, state: int) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """The choices from one parent state, in order, with their child states and values."""
        lo, hi = np.searchsorted(self.parent, [state, state + 1])
        value = None if self.value is None else self.value[lo:hi]
        return self.choice[lo:hi], self.child[lo:hi], value


@dataclass(frozen=True)
class Moves:
    """The valid (state, choice) pairs of one step over some states, and what they lead to."""

    state: np.ndarray  # index into the states evaluated
    choice: np.ndarray  # index into step.choices
    tensors: dict[str, tuple[Any, ...]]  # per move
    kept: dict[Unknown, np.ndarray]
    keys: np.ndarray  # per move: the key row of the state it leads to
    value: np.ndarray | None  # per move: the objective's part of this layer


def lanes(network: Network) -> list[np.ndarray]:
    """[lane index, then each for_all axis's size per lane]: every combination of the sets' sizes."""
    sets = [u.domain.members() for u in network.for_all]
    lanes = math.prod(len(s) for s in sets)
    if lanes > MAX_LANES:
        raise Declined(f"{lanes} for_all sizes")
    if any(v > MAX_VALUE for s in sets for v in s):
        raise Declined("for_all sizes beyond int64-safe products")
    grids = [np.array(g, np.int64).reshape(-1) for g in itertools.product(*sets)] if sets else []
    columns = np.array(grids, np.int64).reshape(lanes, len(sets)) if sets else np.zeros((1, 0), np.int64)
    return [np.arange(lanes), *(columns[:, a] for a in range(len(sets)))]


def unknowns_in(value: Any) -> list[Unknown]:
    if isinstance(value, Unknown):
        return [value]
    if isinstance(value, tuple):
        return [u for v in value for u in unknowns_in(v)]
    return []


def steps_of(network: Network) -> list[Step]:
    order = {u: n for n, u in enumerate(network.unknowns)}
    uses: dict[Unknown, list[int]] = {}
    for node in network.nodes:
        for u in node.unknowns:
            uses.setdefault(u, []).append(node.index)
    last_read = {"input": -1}
    for node in network.nodes:
        for name in node.inputs:
            last_read[name] = node.index
    planned = [u for u in network.unknowns if not isinstance(u, ForAllSize)]
    inputs = [u for u in planned if u not in uses]
    first_used: dict[int, list[Unknown]] = {}
    for u, at in uses.items():
        first_used.setdefault(at[0], []).append(u)
    steps = [step_of(None, inputs, ("input",) if network.nodes else (), ())]
    made: list[str] = ["input"]
    kept: list[Unknown] = []
    for node in network.nodes:
        fresh = sorted(first_used.get(node.index, []), key=order.__getitem__)
        made = [name for name in (*made, *node.outputs) if last_read.get(name, -1) > node.index]
        kept = [u for u in (*kept, *fresh) if uses[u][-1] > node.index]
        steps.append(step_of(node, fresh, tuple(made), tuple(kept)))
    return steps


def step_of(node: Node | None, fresh: list[Unknown], live: tuple[str, ...], keep: tuple[Unknown, ...]) -> Step:
    return Step(node, tuple(fresh), step_choices(tuple(u.domain for u in fresh)), live, keep)


@functools.lru_cache(maxsize=256)
def step_choices(domains: tuple[Domain, ...]) -> np.ndarray:
    """A step's choices (`choice_rows`), checked once per combination of domains: Declined when there are too
    many or their values could overflow int64 products."""
    size = math.prod(d.size() for d in domains)
    if size > MAX_CHOICES:
        raise Declined(f"{size} choices")
    choices = choice_rows(domains)
    if choices.size and np.abs(choices).max() > MAX_VALUE:
        raise Declined("values beyond int64-safe products")
    return choices


@functools.lru_cache(maxsize=256)
def choice_rows(domains: tuple[Domain, ...]) -> np.ndarray:
    """Every combination of the domains' values, one row each, in lexicographic order (read-only: the
    rows are shared by every layer with these domains)."""
    rows = list(itertools.product(*(d.members() for d in domains)))
    choices = np.array(rows, np.int64).reshape(len(rows), len(domains))
    choices.flags.writeable = False
    return choices


@functools.lru_cache(maxsize=256)
def choice_columns(domains: tuple[Domain, ...]) -> tuple[np.ndarray, ...]:
    """The columns of `choice_rows`, each as a (1, C, 1) grid axis: what a layer's transfer is evaluated on."""
    rows = choice_rows(domains)
    return tuple(rows[:, k].reshape(1, -1, 1) for k in range(len(domains)))


def shown_values(dim: Any, most: int = 8) -> str:
    """A dim over the states: its one value, the set of its values, or their range when there are many."""
    if isinstance(dim, int):
        return str(dim)
    values = np.unique(dim)
    if len(values) == 1:
        return str(int(values[0]))
    if len(values) > most:
        return f"{int(values[0])}..{int(values[-1])}"
    return "{" + ", ".join(str(int(v)) for v in values) + "}"


def lift(value: Any) -> Any:
    """An array as (states, choices, lanes), for broadcasting; ints stay ints."""
    if isinstance(value, np.ndarray):
        return value.reshape(value.shape + (1,) * (3 - value.ndim)) if value.ndim < 3 else value
    if isinstance(value, np.generic):
        return value.item()
    return value


def rows_of(dim: Any, index: np.ndarray, squeeze: bool = False) -> Any:
    """A stage's dim for some of its states: (S, M) rows, as (S, 1, M) unless `squeeze`."""
    if isinstance(dim, int):
        return dim
    rows = dim[index]
    return rows if squeeze else rows[:, None, :]


def pick(dim: Any, state: np.ndarray, choice: np.ndarray, n_states: int, n_choices: int) -> Any:
    """An output dim of the evaluated grid at the valid moves, as (moves, lanes)."""
    if isinstance(dim, (int, np.generic)):
        return int(dim)
    dim = lift(dim)
    if dim.shape[:2] != (n_states, n_choices):  # a dim the same for every state or every choice
        dim = np.broadcast_to(dim, (n_states, n_choices, dim.shape[2]))
    return dim[state, choice]


def keys_of(tensors: dict[str, tuple], kept: dict[Unknown, np.ndarray], n: int) -> np.ndarray:
    """One row per move: every array dim's lanes and every kept value (int dims are the same for all)."""
    columns = [d for dims in tensors.values() for d in dims if not isinstance(d, int)]
    columns += [v.reshape(-1, 1) for v in kept.values()]
    if not columns:
        return np.zeros((n, 0), np.int64)
    return np.ascontiguousarray(np.concatenate(columns, axis=1), dtype=np.int64)


def carry(counts: np.ndarray, source: np.ndarray, target: np.ndarray, size: int) -> np.ndarray:
    """For each of `size` targets, the sum of counts[source] over the moves source -> target, exactly.
    Moves that repeat a (source, target) pair (choices with the same outcome) are added as one, times
    their number, where the counts are Python ints and that spares at least half of the additions."""
    if counts.dtype == object and len(source) > 1024:
        sample = source[:256] * np.int64(size) + target[:256]
        if 3 * len(np.unique(sample)) < 256:  # the moves of a few states tell (they come state by state)
            pairs, repeats = np.unique(source * np.int64(size) + target, return_counts=True)
            if 2 * len(pairs) < len(source):
                source, target = pairs // size, pairs % size
                return sum_by(target, counts[source] * repeats.astype(object), size)
    return sum_by(target, counts[source], size)


def sum_by(index: np.ndarray, values: np.ndarray, size: int) -> np.ndarray:
    """Sum values into `size` bins by index, exactly: in float64 while every sum is below 2**53, in
    int64 while it cannot overflow, else in Python ints."""
    if values.dtype != object and len(values):
        bound = int(values.max()) * len(values)
        if bound < 2**53:
            return np.bincount(index, weights=values, minlength=size).astype(np.int64)
        if bound < SAFE:
            out = np.zeros(size, np.int64)
            np.add.at(out, index, values)
            return out
    out = np.zeros(size, object)
    out[:] = 0
    np.add.at(out, index, values if values.dtype == object else values.astype(object))
    return out
