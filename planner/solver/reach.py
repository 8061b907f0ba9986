"""The reachable-state pass: every state a network's layers can reach, with how many partial plans reach it.

Layers are visited in order. A *state* between two layers holds the shapes of the tensors
that later layers still read and the values of the unknowns that later layers still use.
A layer maps each state, under each value of the unknowns it is the first to use (its
*choices*), to the next state. The pass evaluates a layer once for all its states and
choices together: the ops' transfers and rules run over NumPy integer arrays (the third
kind of number of `planner.arithmetic`), so one call covers a grid of sizes x values.

For `for_all` input sizes, every state carries one shape per size of the set (a *lane*),
and a choice is valid when its rules hold in every lane: a plan must serve them all.

From the forward counts (partial plans reaching each state) and the backward counts
(completions from each state), without Z3:
- the number of plans, exactly, at any magnitude (Python ints once int64 could overflow);
- infeasibility, with the first layer that no state gets past;
- plans in lexicographic order of their assignment (unknowns in order of first use), by
  a depth-first walk that never enters a state without completions;
- the plan of any rank, hence uniformly random plans (a uniform rank, unranked);
- the best plans of an objective that adds up over layers (params, flops, kernel_sum),
  from the best completion of each state, ties in lexicographic order.

`build` returns None where the pass does not apply (`constraints:` tie distant layers, a
layer's values or the states would explode, an op not written for arrays); the caller
then uses Z3.
"""

from __future__ import annotations

import heapq
import itertools
import math
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from planner.deadline import Deadline
from planner.domains import ForAllSize, Unknown
from planner.errors import FieldUnsupported, GaveUp, LayerError, SpecError
from planner.graph import Network, Node
from planner.objective import LayerView, objective_value
from planner.ops import OPS
from planner.walk import instantiate, layer_transfer, located

MAX_STATES = 250_000  # states between two layers
MAX_CHOICES = 50_000  # values of one layer's fresh unknowns
MAX_CELLS = 8_000_000  # states x choices x lanes evaluated in one call
MAX_LANES = 20_000  # sizes of a for_all set served together
MAX_VALUE = 2**31  # larger sizes or values could overflow int64 products: Z3 handles them
SAFE = 2**62  # counts below this add up in int64 without overflow
NO_COMPLETION = np.iinfo(np.int64).max  # the best value of a state no plan passes through


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
    code: Code | None = None  # how keys map to sorted int64 codes, when they fit one
    backward: np.ndarray | None = None
    best: np.ndarray | None = None  # best objective value of a completion from each state
    rank: np.ndarray | None = None  # of each state's lexicographically smallest partial plan among the stage's
    back: tuple[np.ndarray, np.ndarray] | None = None  # that plan's last move: parent state and choice
    reached: np.ndarray | None = None  # with an objective: the best value of a partial plan reaching each state
    _index: dict[bytes, int] | None = field(default=None, repr=False)

    def index_of(self, rows: np.ndarray) -> np.ndarray:
        """The state index of each key row (-1 for a row that is no state)."""
        if self.code is not None:
            return self.code.find(rows)
        if self._index is None:
            self._index = {row.tobytes(): n for n, row in enumerate(self.keys)}
        return np.array([self._index.get(row.tobytes(), -1) for row in rows], dtype=np.int64)


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
        scale, total = [], 1
        for low, h in zip(lo[::-1], hi[::-1], strict=True):
            scale.append(total)
            total *= int(h) - int(low) + 1
            if total >= SAFE:
                return None
        return Code(lo, np.array(scale[::-1], np.int64), hi, np.zeros(0, np.int64))

    def encode(self, rows: np.ndarray) -> np.ndarray:
        return (rows - self.lo) @ self.scale

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
        inside = ((rows >= self.lo) & (rows <= self.hi)).all(axis=1)
        codes = self.encode(np.where(inside[:, None], rows, self.lo))
        at = np.minimum(np.searchsorted(self.codes, codes), len(self.codes) - 1)
        return np.where(inside & (self.codes[at] == codes), at, -1)


@dataclass(frozen=True)
class Step:
    """One layer (or the input, `node` None): the unknowns it chooses and what stays alive after it."""

    node: Node | None
    fresh: tuple[Unknown, ...]
    choices: np.ndarray  # (C, len(fresh)) values, rows in lexicographic order
    live: tuple[str, ...]  # tensors read after this step
    keep: tuple[Unknown, ...]  # unknowns used after this step


@dataclass(frozen=True)
class Moves:
    """The valid (state, choice) pairs of one step over some states, and what they lead to."""

    state: np.ndarray  # index into the states evaluated
    choice: np.ndarray  # index into step.choices
    tensors: dict[str, tuple[Any, ...]]  # per move
    kept: dict[Unknown, np.ndarray]
    keys: np.ndarray  # per move: the key row of the state it leads to
    value: np.ndarray | None  # per move: the objective's part of this layer


class Reach:
    """The pass over one network; see the module's docstring."""

    def __init__(
        self,
        network: Network,
        deadline: Deadline,
        *,
        counting: bool = False,
        objective: str | None = None,
        strict: bool = False,
    ):
        self.network = network
        self.deadline = deadline
        self.counting = counting  # forward counts, for `count` without listing plans
        self.objective = objective
        self.strict = strict  # leave out degenerate layers (`Op.degenerate`)
        self.jumps = objective == "receptive_field"  # states carry each tensor's jump
        self.lanes = _lanes(network)
        self.steps = _steps(network)
        self.stages: list[Stage] = []
        self._forward()

    # --- the passes ---------------------------------------------------------------------

    def _forward(self) -> None:
        root = Stage({}, {}, np.zeros((1, 0), np.int64), 1, np.ones(1, np.int64), rank=np.zeros(1, np.int64))
        root.reached = np.zeros(1, np.int64) if self.objective else None
        self.stages = [root]
        for step in self.steps:
            self.deadline.ensure()
            stage = self.stages[-1]
            moves = self._moves(step, stage, np.arange(stage.size))
            counts = stage.forward[moves.state] if self.counting else None
            self.stages.append(self._merge(moves, counts, stage, len(step.choices)))
            if self.stages[-1].size == 0:
                break

    @property
    def feasible(self) -> bool:
        return len(self.stages) == len(self.steps) + 1 and self.stages[-1].size > 0

    @property
    def dead_end(self) -> Node | None:
        """The first layer no state gets past (None when the network is feasible or its input is)."""
        if self.feasible:
            return None
        return self.steps[len(self.stages) - 2].node

    def dead_end_message(self) -> tuple[Node | None, str]:
        """The first layer no state gets past and what reaches it: each input's sizes over every partial plan
        ("'up3' gives [1, 64, {24, 26}, {24, 26}]; 'enc3' gives [1, 64, 25, 25]")."""
        node = self.dead_end
        if node is None:
            return None, ""
        stage = self.stages[-2]
        shown = []
        for name in dict.fromkeys(node.inputs):
            dims = stage.tensors[name][:-1] if self.jumps else stage.tensors[name]
            shown.append(f"'{name}' gives [{', '.join(_values(d) for d in dims)}]")
        head = "no choice of the unknowns gets past this layer" if self.network.unknowns else "the shapes do not fit"
        return node, f"{node.name}: {head}; what reaches it: {'; '.join(shown)}"

    def count(self) -> int:
        """The number of plans: from the forward counts, else from the completions of the input."""
        if not self.feasible:
            return 0
        if self.counting:
            return int(sum(int(c) for c in self.stages[-1].forward))
        self._backward(counts=True)
        return int(self.stages[0].backward[0])

    def _backward(self, counts: bool = False) -> None:
        """Which states have completions (with `counts`, how many), and with an objective the best one's value."""
        done = self.stages[0].backward
        if not self.feasible or done is not None and (done.dtype != bool or not counts):
            return
        last = self.stages[-1]
        last.backward = np.ones(last.size, np.int64 if counts else bool)
        last.best = np.zeros(last.size, np.int64) if self.objective else None
        for n in range(len(self.steps) - 1, -1, -1):
            self.deadline.ensure()
            stage, after = self.stages[n], self.stages[n + 1]
            moves = self._moves(self.steps[n], stage, np.arange(stage.size))
            child = after.index_of(moves.keys)
            alive = np.asarray(after.backward[np.maximum(child, 0)] != 0) & (child >= 0)
            state, child = moves.state[alive], child[alive]
            if counts:
                stage.backward = _sum_by(state, after.backward[child], stage.size)
            else:
                stage.backward = np.zeros(stage.size, bool)
                stage.backward[state] = True
            if self.objective is not None:
                best = np.full(stage.size, NO_COMPLETION, np.int64)
                np.minimum.at(best, state, moves.value[alive] + after.best[child])
                stage.best = best

    # --- one step -----------------------------------------------------------------------

    def _moves(self, step: Step, stage: Stage, states: np.ndarray) -> Moves:
        """Evaluate the step over the given states and every choice at once; keep the valid moves."""
        n_states, n_choices = len(states), len(step.choices)
        if n_states * n_choices * len(self.lanes[0]) > MAX_CELLS:
            raise Declined(f"{n_states} states x {n_choices} choices")
        grid = {u: step.choices[:, k].reshape(1, -1, 1) for k, u in enumerate(step.fresh)}
        grid.update({u: values[states].reshape(-1, 1, 1) for u, values in stage.kept.items()})
        tensors = {name: tuple(_rows(d, states) for d in dims) for name, dims in stage.tensors.items()}
        if step.node is None:
            shape, valid = self._input(grid), np.ones((1, n_choices, 1), bool)
            value = None if self.objective is None else np.zeros((1, n_choices), np.int64)
        else:
            shape, valid, value = self._layer(step.node, tensors, grid)
        valid = np.broadcast_to(valid, (n_states, n_choices, valid.shape[-1])).all(axis=2)
        state, choice = np.nonzero(valid)
        out_tensors = {}
        for name in step.live:
            if step.node is not None and name == step.node.name or step.node is None and name == "input":
                out_tensors[name] = tuple(_pick(d, state, choice, n_states, n_choices) for d in shape)
            else:
                out_tensors[name] = tuple(_rows(d, states[state], squeeze=True) for d in stage.tensors[name])
        kept = {}
        for u in step.keep:
            if u in step.fresh:
                kept[u] = step.choices[choice, step.fresh.index(u)]
            else:
                kept[u] = stage.kept[u][states[state]]
        keys = _keys(out_tensors, kept, len(state))
        if value is not None:
            value = np.broadcast_to(value, (n_states, n_choices))[state, choice]
        return Moves(state, choice, out_tensors, kept, keys, value)

    def _input(self, grid: dict[Unknown, np.ndarray]) -> tuple:
        lanes = iter(self.lanes[1:])
        dims = []
        for term in self.network.input_shape:
            if isinstance(term, ForAllSize):
                dims.append(next(lanes).reshape(1, 1, -1))
            else:
                dims.append(instantiate(term, grid.__getitem__))
        return (*dims, 1) if self.jumps else tuple(dims)  # the input's jump is 1

    def _layer(self, node: Node, tensors: dict[str, tuple], grid: dict[Unknown, np.ndarray]) -> tuple:
        inputs = tuple(tuple(_lift(d) for d in tensors[name]) for name in node.inputs)
        if self.jumps:  # each tensor's last entry is its jump on the first spatial axis (0 once the axes are gone)
            jump, inputs = inputs[0][-1], tuple(shape[:-1] for shape in inputs)
        try:
            transfer = layer_transfer(self.network, node, inputs, grid.__getitem__)
        except LayerError as e:
            raise SpecError(located(self.network, node, e.code, e.message, e.param)) from None
        except (FieldUnsupported, TypeError, ValueError, AttributeError) as e:  # an op not written for arrays
            raise Declined(f"{node.op}: {e}") from None
        valid = np.ones((1, 1, 1), bool)
        for rule in transfer.rules:
            holds = rule.holds
            if isinstance(holds, (bool, np.bool_)):
                if not holds:
                    return transfer.shape, np.zeros((1, 1, 1), bool), None
                continue
            valid = valid & _lift(holds)
        for d in transfer.shape:
            if not isinstance(d, int) and np.abs(d).max(initial=0) > MAX_VALUE:
                raise Declined(f"{node.name}: sizes beyond {MAX_VALUE}")
        view = LayerView(node.name, node.op, node.inputs, transfer.params, inputs[0], transfer.shape, transfer.attrs)
        if self.strict:
            for rule in OPS[node.op].degenerate(view):
                if isinstance(rule.holds, (bool, np.bool_)):
                    if rule.holds:
                        return transfer.shape, np.zeros((1, 1, 1), bool), None
                    continue
                valid = valid & ~_lift(rule.holds)
        if self.jumps:
            field, jump = self._receptive_step(node, transfer.params, inputs[0], jump)
            return (*transfer.shape, jump), valid, field
        value = None
        if self.objective is not None:
            try:
                value = np.asarray(_lift(objective_value(self.objective, [view], self.network.rank)), np.int64)
            except (FieldUnsupported, TypeError, ValueError, AttributeError, KeyError) as e:
                raise Declined(f"{self.objective} of {node.op}: {e}") from None
            value = value.reshape(value.shape + (1,) * (3 - value.ndim))
            if value.shape[2] != 1:
                raise Declined("an objective that varies over for_all sizes")
            value = value[:, :, 0]
        return transfer.shape, valid, value

    def _receptive_step(self, node: Node, params: dict[str, Any], input_shape: tuple, jump: Any) -> tuple[Any, Any]:
        """The layer's growth of the receptive field on the first spatial axis, negated (the pass minimises),
        and the jump after it: the op's receptive step from a field of 0 (r' = r + growth, for single-input
        ops), with the jumps of the state. Fractional jumps (transposed convolutions, resizing) decline."""
        if len(OPS[node.op].data_inputs(node)) > 1:
            raise Declined("the receptive field of a join is a maximum, not a sum")
        rank = self.network.rank
        try:
            after = OPS[node.op].receptive((((0,) * rank, (jump,) * rank),), params, input_shape)
        except (FieldUnsupported, TypeError, ValueError) as e:
            raise Declined(f"receptive field of {node.op}: {e}") from None
        gone = np.equal(jump, 0)
        if after is None:
            return np.zeros((1, 1), np.int64), 0
        growth, new_jump = after[0][0], after[1][0]
        if not all(isinstance(v, (int, np.ndarray, np.generic)) for v in (growth, new_jump)):
            raise Declined("a fractional jump")
        growth = np.where(gone, 0, np.asarray(_lift(growth), np.int64))
        new_jump = np.where(gone, 0, np.asarray(_lift(new_jump), np.int64))
        if np.abs(new_jump).max(initial=0) > MAX_VALUE:
            raise Declined("jumps beyond int64-safe products")
        return -growth.reshape(growth.shape + (1,) * (3 - growth.ndim))[:, :, 0], new_jump

    def _merge(self, moves: Moves, counts: np.ndarray | None, before: Stage, n_choices: int) -> Stage:
        """The distinct states the moves lead to, each with the partial plans that reach it (when counted)
        and the smallest of them in lexicographic order (its last move, and its rank among the states'):
        with an objective, the smallest of those with the best value so far."""
        rows = moves.keys
        code = Code.fitting(rows) if rows.shape[1] and len(rows) else None
        if len(rows) == 0:
            first, inverse = np.zeros(0, np.int64), np.zeros(0, np.int64)
        elif rows.shape[1] == 0:
            first, inverse = np.zeros(1, np.int64), np.zeros(len(rows), np.int64)
        elif code is not None:
            codes, first, inverse = code.unique(rows)
            code = replace(code, codes=codes)
        else:
            _, first, inverse = np.unique(rows, axis=0, return_index=True, return_inverse=True)
            inverse = inverse.reshape(-1)
        if len(first) > MAX_STATES:
            raise Declined(f"{len(first)} states")
        tensors = {name: tuple(_rows(d, first, squeeze=True) for d in dims) for name, dims in moves.tensors.items()}
        kept = {u: v[first] for u, v in moves.kept.items()}
        forward = None if counts is None else _sum_by(inverse, counts, len(first))
        # paths to the states of a stage have one length, so (rank of the parent's smallest, choice) orders them
        order, into, reached = before.rank[moves.state] * n_choices + moves.choice, inverse, None
        if before.reached is not None:  # the best value reaching each state, then the smallest path with it
            total = before.reached[moves.state] + moves.value
            reached = np.full(len(first), NO_COMPLETION, np.int64)
            np.minimum.at(reached, inverse, total)
            best = total == reached[inverse]
            order, into = order[best], inverse[best]
        smallest = np.full(len(first), np.iinfo(np.int64).max, np.int64)
        np.minimum.at(smallest, into, order)
        by_rank = np.argsort(before.rank)
        parent, choice = by_rank[smallest // n_choices], smallest % n_choices
        rank = np.empty(len(first), np.int64)
        rank[np.argsort(smallest)] = np.arange(len(first))
        stage = Stage(tensors, kept, rows[first], len(first), forward, code, rank=rank, back=(parent, choice))
        stage.reached = reached
        return stage

    # --- plans ----------------------------------------------------------------------------

    def _children(self, n: int, state: int) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """Step n's valid choices from one state of stage n, in order, with their child states (alive only)."""
        self.deadline.ensure()
        moves = self._moves(self.steps[n], self.stages[n], np.array([state]))
        child = self.stages[n + 1].index_of(moves.keys)
        alive = child >= 0
        if self.stages[n + 1].backward is not None:
            alive &= np.asarray(self.stages[n + 1].backward[np.maximum(child, 0)] != 0)
        value = moves.value[alive] if moves.value is not None else None
        return moves.choice[alive], child[alive], value

    def _assignment(self, path: list[int]) -> dict[Unknown, int]:
        chosen = {}
        for step, c in zip(self.steps, path, strict=True):
            chosen.update({u: int(v) for u, v in zip(step.fresh, step.choices[c], strict=True)})
        return {u: chosen[u] for u in self.network.unknowns if u in chosen}

    def accepted_inputs(self, size: Unknown, top: int) -> list[bool]:
        """accepted[i]: some plan has the input unknown `size` (used by no layer) at i, for i in 0..top."""
        accepted = [False] * (top + 1)
        self._backward()
        if not self.feasible:
            return accepted
        step = self.steps[0]
        column = step.fresh.index(size)
        moves = self._moves(step, self.stages[0], np.array([0]))
        child = self.stages[1].index_of(moves.keys)
        alive = (child >= 0) & np.asarray(self.stages[1].backward[np.maximum(child, 0)] != 0)
        for value in np.unique(step.choices[moves.choice[alive], column]):
            accepted[int(value)] = True
        return accepted

    def first(self) -> dict[Unknown, int]:
        """The lexicographically smallest plan (with an objective: of the best ones), walked back from the
        forward pass (no backward pass)."""
        last = self.stages[-1]
        if last.reached is None:
            state = int(np.argmin(last.rank))
        else:
            state = int(np.lexsort((last.rank, last.reached))[0])
        path = []
        for stage in self.stages[:0:-1]:
            parent, choice = stage.back
            path.append(int(choice[state]))
            state = int(parent[state])
        return self._assignment(path[::-1])

    def plans(self) -> Iterator[dict[Unknown, int]]:
        """Every plan's assignment, in lexicographic order (unknowns in order of first use)."""
        self._backward()
        if not self.feasible:
            return
        path: list[int] = []
        stack = [self._children(0, 0)]
        while stack:
            choices, children, _ = stack[-1]
            if len(choices) == 0:
                stack.pop()
                if path:
                    path.pop()
                continue
            stack[-1] = (choices[1:], children[1:], None)
            path.append(int(choices[0]))
            if len(path) == len(self.steps):
                yield self._assignment(path)
                path.pop()
            else:
                stack.append(self._children(len(path), int(children[0])))

    def plan_at(self, rank: int) -> dict[Unknown, int]:
        """The plan of this rank (0-based) in the order of `plans`."""
        self._backward(counts=True)
        if not 0 <= rank < self.count():
            raise IndexError(rank)
        path, state = [], 0
        for n in range(len(self.steps)):
            choices, children, _ = self._children(n, state)
            ways = np.cumsum(np.asarray(self.stages[n + 1].backward[children], dtype=object))
            pick = int(np.searchsorted(ways, rank, side="right"))
            rank -= int(ways[pick - 1]) if pick else 0
            path.append(int(choices[pick]))
            state = int(children[pick])
        return self._assignment(path)

    def best(self, limit: int | None) -> Iterator[tuple[int, dict[Unknown, int]]]:
        """Plans by the objective, smallest value first (the caller negates to maximise), ties in
        lexicographic order: a best-first search whose bound (value so far + best completion) is exact."""
        self._backward()
        if not self.feasible:
            return
        heap: list[tuple[int, tuple[int, ...], int, int]] = [(int(self.stages[0].best[0]), (), 0, 0)]
        found = 0
        while heap and (limit is None or found < limit):
            bound, path, state, so_far = heapq.heappop(heap)
            n = len(path)
            if n == len(self.steps):
                found += 1
                yield bound, self._assignment(list(path))
                continue
            choices, children, values = self._children(n, state)
            after = self.stages[n + 1].best
            for c, child, v in zip(choices, children, values, strict=True):
                total = so_far + int(v)
                heapq.heappush(heap, (total + int(after[child]), (*path, int(c)), int(child), total))


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


def unreachable(network: Network, deadline: Deadline) -> Unreachable | None:
    """The first `expect` no plan can meet, found from each dim's bounds, or None when the bounds allow it.

    Every op is monotone (`Op.monotone`): an output dim never shrinks as an input dim grows. So when
    each input dim lies in [lo, hi], the output of each value of the unknowns lies between its value at
    the all-lo and at the all-hi corner, and over all values between the least and the largest of these;
    validity rules and ties between layers only narrow what is reachable. Sound, not complete: the
    exact pass decides what the bounds allow."""
    if network.constraints or any(not OPS[node.op].monotone for node in network.nodes):
        return None
    corners = []
    for term in network.input_shape:
        if isinstance(term, int):
            corners.append(term)
        else:
            members = term.domain.members() if term.domain.size() <= MAX_CHOICES else [term.domain.lo, term.domain.hi]
            corners.append(np.array([min(members), max(members)], np.int64).reshape(2, 1, 1))
    shapes: dict[str, tuple] = {"input": tuple(corners)}
    for node in network.nodes:
        deadline.ensure()
        unknowns = list(dict.fromkeys(_unknowns_in(tuple(node.params.values()))))
        if math.prod(u.domain.size() for u in unknowns) > MAX_CHOICES:
            return None
        members = [u.domain.members() for u in unknowns]
        rows = list(itertools.product(*members))
        values = np.array(rows, np.int64).reshape(len(rows), len(unknowns))
        grid = {u: values[:, k].reshape(1, -1, 1) for k, u in enumerate(unknowns)}
        inputs = tuple(shapes[name] for name in node.inputs)
        try:
            transfer = layer_transfer(network, node, inputs, grid.__getitem__)
        except (LayerError, FieldUnsupported, TypeError, ValueError, AttributeError):
            return None
        shape = []
        for d, size in enumerate(transfer.shape):
            if isinstance(size, (int, np.generic)):
                shape.append(int(size))
                continue
            size = np.broadcast_to(_lift(size), (2, len(rows), 1))
            lower, upper = max(1, int(size[0].min())), int(size[1].max())
            if upper < lower:
                return Unreachable(node, d, lower, upper, lower) if node.expect is None else None
            wanted = node.expect[d] if node.expect is not None and d < len(node.expect) else None
            if wanted is not None:
                if not lower <= wanted <= upper:
                    return Unreachable(node, d, lower, upper, wanted)
                lower = upper = wanted
            shape.append(np.array([lower, upper], np.int64).reshape(2, 1, 1))
        shapes[node.name] = tuple(shape)
    return None


def build(
    network: Network, deadline: Deadline, *, counting: bool = False, objective: str | None = None, strict: bool = False
) -> Reach | None:
    """The pass over the network, or None where it does not apply (Z3 then does the work)."""
    if network.constraints:
        return None
    try:
        return Reach(network, deadline, counting=counting, objective=objective, strict=strict)
    except Declined:
        return None
    except MemoryError:
        return None
    except GaveUp:
        raise


# --- helpers ------------------------------------------------------------------------------


def _lanes(network: Network) -> list[np.ndarray]:
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


def _unknowns_in(value: Any) -> list[Unknown]:
    if isinstance(value, Unknown):
        return [value]
    if isinstance(value, tuple):
        return [u for v in value for u in _unknowns_in(v)]
    return []


def _steps(network: Network) -> list[Step]:
    order = {u: n for n, u in enumerate(network.unknowns)}
    uses: dict[Unknown, list[int]] = {}
    for node in network.nodes:
        for u in dict.fromkeys(_unknowns_in(tuple(node.params.values()))):
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
    steps = [_step(None, inputs, ("input",) if network.nodes else (), ())]
    made, kept = ["input"], []
    for node in network.nodes:
        fresh = sorted(first_used.get(node.index, []), key=order.__getitem__)
        made = [name for name in (*made, node.name) if last_read.get(name, -1) > node.index]
        kept = [u for u in (*kept, *fresh) if uses[u][-1] > node.index]
        steps.append(_step(node, fresh, tuple(made), tuple(kept)))
    return steps


def _step(node: Node | None, fresh: list[Unknown], live: tuple[str, ...], keep: tuple[Unknown, ...]) -> Step:
    sizes = [u.domain.size() for u in fresh]
    if math.prod(sizes) > MAX_CHOICES:
        raise Declined(f"{math.prod(sizes)} choices")
    members = [u.domain.members() for u in fresh]
    if any(abs(v) > MAX_VALUE for m in members for v in m):
        raise Declined("values beyond int64-safe products")
    rows = list(itertools.product(*members))
    choices = np.array(rows, np.int64).reshape(len(rows), len(fresh))
    return Step(node, tuple(fresh), choices, live, keep)


def _values(dim: Any, most: int = 8) -> str:
    """A dim over the states: its one value, the set of its values, or their range when there are many."""
    if isinstance(dim, int):
        return str(dim)
    values = np.unique(dim)
    if len(values) == 1:
        return str(int(values[0]))
    if len(values) > most:
        return f"{int(values[0])}..{int(values[-1])}"
    return "{" + ", ".join(str(int(v)) for v in values) + "}"


def _lift(value: Any) -> Any:
    """An array as (states, choices, lanes), for broadcasting; ints stay ints."""
    if isinstance(value, np.ndarray):
        return value.reshape(value.shape + (1,) * (3 - value.ndim)) if value.ndim < 3 else value
    if isinstance(value, np.generic):
        return value.item()
    return value


def _rows(dim: Any, index: np.ndarray, squeeze: bool = False) -> Any:
    """A stage's dim for some of its states: (S, M) rows, as (S, 1, M) unless `squeeze`."""
    if isinstance(dim, int):
        return dim
    rows = dim[index]
    return rows if squeeze else rows[:, None, :]


def _pick(dim: Any, state: np.ndarray, choice: np.ndarray, n_states: int, n_choices: int) -> Any:
    """An output dim of the evaluated grid at the valid moves, as (moves, lanes)."""
    if isinstance(dim, (int, np.generic)):
        return int(dim)
    dim = _lift(dim)
    full = np.broadcast_to(dim, (n_states, n_choices, dim.shape[2]))
    return full[state, choice]


def _keys(tensors: dict[str, tuple], kept: dict[Unknown, np.ndarray], n: int) -> np.ndarray:
    """One row per move: every array dim's lanes and every kept value (int dims are the same for all)."""
    columns = [d for dims in tensors.values() for d in dims if not isinstance(d, int)]
    columns += [v.reshape(-1, 1) for v in kept.values()]
    if not columns:
        return np.zeros((n, 0), np.int64)
    return np.ascontiguousarray(np.concatenate(columns, axis=1), dtype=np.int64)


def _sum_by(index: np.ndarray, values: np.ndarray, size: int) -> np.ndarray:
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
    np.add.at(out, index, values.astype(object))
    return out
