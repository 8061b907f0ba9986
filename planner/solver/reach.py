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
- the first plan (with an objective: the best) from the forward pass alone, by back-pointers
  to each state's smallest partial plan;
- the plan of any rank, hence uniformly random plans (a uniform rank, unranked);
- the best plans of an objective that adds up over layers (params, flops, kernel_sum), and
  the largest receptive field of a chain (the jump joins the state), from the best completion
  of each state, ties in lexicographic order.

The states and array helpers live in `planner.solver.states`; the sound bound pass that
proves an unreachable `expect` before any of this in `planner.solver.bounds`.

`build` returns None where the pass does not apply (`constraints:` tie distant layers, a
layer's values or the states would explode, an op not written for arrays); the caller
then uses Z3.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator
from typing import Any

import numpy as np

from planner.deadline import Deadline
from planner.domains import ForAllSize, Unknown
from planner.errors import FieldUnsupported, LayerError, SpecError
from planner.graph import Network, Node
from planner.objective import LayerView, objective_value
from planner.ops import OPS, Transfer
from planner.solver.states import (
    MAX_ARRIVALS,
    MAX_CELLS,
    MAX_STATES,
    MAX_VALUE,
    NO_COMPLETION,
    Arrivals,
    Code,
    Declined,
    Hashed,
    Moves,
    Stage,
    Step,
    carry,
    choice_columns,
    keys_of,
    lanes,
    lift,
    need,
    pick,
    rows_of,
    shown_values,
    steps_of,
)
from planner.solver.tables import Table, build_table, layout, repeated, varying_rows
from planner.walk import instantiate, layer_transfer, located

TRUE = np.ones((1, 1, 1), bool)  # every move valid: what a layer's rules narrow
TRUE.flags.writeable = False


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
        forward: bool = True,
        ordered: bool = True,
    ):
        self.network = network
        self.ordered = ordered or objective is not None  # back-pointers for `first` (the best needs them too)
        self.deadline = deadline
        self.counting = counting  # forward counts, for `count` without listing plans
        self.objective = objective
        self.strict = strict  # leave out degenerate layers (`Op.degenerate`)
        self.jumps = objective == "receptive_field"  # states carry each tensor's jump
        self.lanes = lanes(network)
        self.steps = steps_of(network)
        self.stages: list[Stage] = []
        tabulated = len(self.lanes[0]) == 1 and not self.jumps  # one lane, no jump in the states
        layers = [(step.node, step.fresh) for step in self.steps if step.node is not None]
        self.repeats = repeated(layers) if tabulated else {}  # the signature numbers of the layers that repeat
        self.tables: dict[tuple, Table] = {}  # by (signature number, input layout)
        self.arrivals_kept = 0  # moves kept in the stages (`Stage.arrivals`)
        if forward:  # else the steps alone, for `planner.solver.descent`
            self._forward()

    # --- the passes ---------------------------------------------------------------------

    def _forward(self) -> None:
        first = np.zeros(1, np.int64)
        root = Stage({}, {}, np.zeros((1, 0), np.int64), 1, np.ones(1, np.int64), rank=first, by_rank=first)
        root.reached = np.zeros(1, np.int64) if self.objective else None
        self.stages = [root]
        for step in self.steps:
            self.deadline.ensure()
            stage = self.stages[-1]
            moves = self.moves(step, stage, np.arange(stage.size))
            self.stages.append(self._merge(moves, stage, len(step.choices)))
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
            shown.append(f"'{name}' gives [{', '.join(shown_values(d) for d in dims)}]")
        head = "no choice of the unknowns gets past this layer" if self.network.unknowns else "the shapes do not fit"
        return node, f"{node.name}: {head}; what reaches it: {'; '.join(shown)}"

    def count(self) -> int:
        """The number of plans: from the forward counts, else from the completions of the input."""
        if not self.feasible:
            return 0
        if self.counting:
            return sum(int(c) for c in need(self.stages[-1].forward))
        self._backward(counts=True)
        return int(need(self.stages[0].backward)[0])

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
            state, child, value = self._arrivals(n)
            alive = np.asarray(need(after.backward)[np.maximum(child, 0)] != 0) & (child >= 0)
            state, child = state[alive], child[alive]
            if counts:
                stage.backward = carry(need(after.backward), child, state, stage.size)
            else:
                alive_states = np.zeros(stage.size, bool)
                alive_states[state] = True
                stage.backward = alive_states
            if self.objective is not None:
                best = np.full(stage.size, NO_COMPLETION, np.int64)
                np.minimum.at(best, state, need(value)[alive] + need(after.best)[child])
                stage.best = best

    # --- one step -----------------------------------------------------------------------

    def moves(self, step: Step, stage: Stage, states: np.ndarray) -> Moves:
        """Evaluate the step over the given states and every choice at once; keep the valid moves."""
        n_states, n_choices = len(states), len(step.choices)
        if n_states * n_choices * len(self.lanes[0]) > MAX_CELLS:
            raise Declined(f"{n_states} states x {n_choices} choices")
        grid = dict(zip(step.fresh, choice_columns(tuple(u.domain for u in step.fresh)), strict=True))
        grid.update({u: values[states].reshape(-1, 1, 1) for u, values in stage.kept.items()})
        tabled = None if step.node is None else self._tabled(step.node, stage, states, grid, n_choices, step.live)
        if tabled is not None:
            state, choice, made, value = tabled
        else:
            if step.node is None:
                made, valid = {"input": self._input(grid)}, np.ones((1, n_choices, 1), bool)
                value = None if self.objective is None else np.zeros((1, n_choices), np.int64)
            else:
                inputs = {name: tuple(rows_of(d, states) for d in stage.tensors[name]) for name in step.node.inputs}
                made, valid, value = self._layer(step.node, inputs, grid)
            allowed = valid[:, :, 0] if valid.shape[-1] == 1 else valid.all(axis=2)  # a move serves every lane
            if allowed.shape != (n_states, n_choices):  # the same for every state or every choice
                allowed = np.broadcast_to(allowed, (n_states, n_choices))
            state, choice = np.nonzero(allowed)
            made = {
                name: tuple(pick(d, state, choice, n_states, n_choices) for d in dims)
                for name, dims in made.items()
                if name in step.live
            }
            if value is not None:
                value = np.broadcast_to(value, (n_states, n_choices))[state, choice]
        out_tensors = {}
        for name in step.live:
            if name in made:  # what the step makes: its output, a split's pieces
                out_tensors[name] = made[name]
            else:
                out_tensors[name] = tuple(rows_of(d, states[state], squeeze=True) for d in stage.tensors[name])
        kept = {}
        for u in step.keep:
            if u in step.fresh:
                kept[u] = step.choices[choice, step.fresh.index(u)]
            else:
                kept[u] = stage.kept[u][states[state]]
        keys = keys_of(out_tensors, kept, len(state))
        return Moves(state, choice, out_tensors, kept, keys, value)

    def _input(self, grid: dict[Unknown, np.ndarray]) -> tuple:
        sizes = iter(self.lanes[1:])
        dims = []
        for term in self.network.input_shape:
            if isinstance(term, ForAllSize):
                dims.append(next(sizes).reshape(1, 1, -1))
            else:
                dims.append(instantiate(term, grid.__getitem__))
        return (*dims, 1) if self.jumps else tuple(dims)  # the input's jump is 1

    def _tabled(
        self, node: Node, stage: Stage, states: np.ndarray, grid: dict, n_choices: int, live: tuple[str, ...]
    ) -> tuple | None:
        """The layer's valid moves read from its table where it repeats (`planner.solver.tables`), building or
        growing the table when it misses some state; None where the layer is evaluated directly."""
        static = self.repeats.get(node.index)
        if static is None:
            return None
        key = (static, layout(node, stage.tensors))
        rows = varying_rows(node, stage.tensors, states)
        table = self.tables.get(key)
        cells = None if table is None else table.box.find(rows)
        if table is None or cells is None:  # no table yet, or one that misses some state
            table = build_table(node, stage.tensors, grid, rows, table, n_choices, self._layer)
            cells = None if table is None else table.box.find(rows)
            if table is None or cells is None:
                return None
            self.tables[key] = table
        return table.moves(node, cells, live)

    def _layer(self, node: Node, tensors: dict[str, tuple], grid: dict[Unknown, np.ndarray]) -> tuple:
        inputs = tuple(tuple(lift(d) for d in tensors[name]) for name in node.inputs)
        if self.jumps:  # each tensor's last entry is its jump on the first spatial axis (0 once the axes are gone)
            jump, inputs = inputs[0][-1], tuple(shape[:-1] for shape in inputs)
        try:
            transfer = layer_transfer(self.network, node, inputs, grid.__getitem__)
        except LayerError as e:
            raise SpecError(located(self.network, node, e.code, e.message, e.param)) from None
        except (FieldUnsupported, TypeError, ValueError, AttributeError) as e:  # an op not written for arrays
            raise Declined(f"{node.op}: {e}") from None
        valid = TRUE
        for rule in transfer.rules:
            holds = rule.holds
            if isinstance(holds, (bool, np.bool_)):
                if not holds:
                    return _outputs(node, transfer), np.zeros((1, 1, 1), bool), None
                continue
            valid = lift(holds) if valid is TRUE else valid & lift(holds)
        for d in transfer.shape:
            if not isinstance(d, int) and np.abs(d).max(initial=0) > MAX_VALUE:
                raise Declined(f"{node.name}: sizes beyond {MAX_VALUE}")
        view = LayerView(node.name, node.op, node.inputs, transfer.params, inputs[0], transfer.shape, transfer.attrs)
        if self.strict:
            for rule in OPS[node.op].degenerate(view):
                if isinstance(rule.holds, (bool, np.bool_)):
                    if rule.holds:
                        return _outputs(node, transfer), np.zeros((1, 1, 1), bool), None
                    continue
                valid = valid & ~lift(rule.holds)
        if self.jumps:
            field, jump = self._receptive_step(view, jump)
            if transfer.pieces:
                raise Declined("the receptive field through a split")
            return {node.name: (*transfer.shape, jump)}, valid, field
        value: Any = None
        if self.objective is not None:
            try:
                value = np.asarray(lift(objective_value(self.objective, [view], self.network.rank)), np.int64)
            except (FieldUnsupported, TypeError, ValueError, AttributeError, KeyError) as e:
                raise Declined(f"{self.objective} of {node.op}: {e}") from None
            value = value.reshape(value.shape + (1,) * (3 - value.ndim))
            if value.shape[2] != 1:
                raise Declined("an objective that varies over for_all sizes")
            value = value[:, :, 0]
        return _outputs(node, transfer), valid, value

    def _receptive_step(self, layer: LayerView, jump: Any) -> tuple[Any, Any]:
        """The layer's growth of the receptive field on the first spatial axis, negated (the pass minimises),
        and the jump after it: the op's receptive step from a field of 0 (r' = r + growth, for single-input
        ops), with the jumps of the state. Fractional jumps (transposed convolutions, resizing) decline."""
        op = OPS[layer.op]
        if len(op.data_inputs(layer)) > 1:
            raise Declined("the receptive field of a join is a maximum, not a sum")
        rank = self.network.rank
        try:
            after = op.receptive((((0,) * rank, (jump,) * rank),), layer.params, layer.input_shape)
        except (FieldUnsupported, TypeError, ValueError) as e:
            raise Declined(f"receptive field of {layer.op}: {e}") from None
        gone = np.equal(jump, 0)
        if after is None:
            return np.zeros((1, 1), np.int64), 0
        growth, new_jump = after[0][0], after[1][0]
        if not all(isinstance(v, (int, np.ndarray, np.generic)) for v in (growth, new_jump)):
            raise Declined("a fractional jump")
        growth = np.where(gone, 0, np.asarray(lift(growth), np.int64))
        new_jump = np.where(gone, 0, np.asarray(lift(new_jump), np.int64))
        if np.abs(new_jump).max(initial=0) > MAX_VALUE:
            raise Declined("jumps beyond int64-safe products")
        return -growth.reshape(growth.shape + (1,) * (3 - growth.ndim))[:, :, 0], new_jump

    def _merge(self, moves: Moves, before: Stage, n_choices: int) -> Stage:
        """The distinct states the moves lead to, each with the partial plans that reach it (when counted)
        and, when the pass is ordered, the smallest of them (`_order`)."""
        rows = moves.keys
        code: Code | Hashed | None = Code.fitting(rows) if rows.shape[1] and len(rows) else None
        if len(rows) == 0:
            first, inverse = np.zeros(0, np.int64), np.zeros(0, np.int64)
        elif rows.shape[1] == 0:
            first, inverse = np.zeros(1, np.int64), np.zeros(len(rows), np.int64)
        elif isinstance(code, Code):
            codes, first, inverse = code.unique(rows)
            code = Code(code.lo, code.scale, code.hi, codes)
        elif (hashed := Hashed.unique(rows)) is not None:
            code, first, inverse = hashed
        else:
            _, first, inverse = np.unique(rows, axis=0, return_index=True, return_inverse=True)
            inverse = inverse.reshape(-1)
        if len(first) > MAX_STATES:
            raise Declined(f"{len(first)} states")
        tensors = {name: tuple(rows_of(d, first, squeeze=True) for d in dims) for name, dims in moves.tensors.items()}
        kept = {u: v[first] for u, v in moves.kept.items()}
        forward = carry(need(before.forward), moves.state, inverse, len(first)) if self.counting else None
        stage = Stage(tensors, kept, rows[first], len(first), forward, code)
        if not self.counting and self.arrivals_kept + len(inverse) <= MAX_ARRIVALS:  # for the walks of the plans
            stage.arrivals = Arrivals(moves.state, moves.choice, inverse, moves.value)
            self.arrivals_kept += len(inverse)
        if self.ordered:
            self._order(stage, moves, inverse, before, n_choices)
        return stage

    def _order(self, stage: Stage, moves: Moves, inverse: np.ndarray, before: Stage, n_choices: int) -> None:
        """Each state's smallest partial plan in lexicographic order: its last move (the back-pointer) and its
        rank among the stage's; with an objective, the smallest of those with the best value so far."""
        # paths to the states of a stage have one length, so (rank of the parent's smallest, choice) orders them
        order, into, reached = need(before.rank)[moves.state] * n_choices + moves.choice, inverse, None
        if before.reached is not None:  # the best value reaching each state, then the smallest path with it
            total = need(before.reached)[moves.state] + moves.value
            reached = np.full(stage.size, NO_COMPLETION, np.int64)
            np.minimum.at(reached, inverse, total)
            best = total == reached[inverse]
            order, into = order[best], inverse[best]
        smallest = np.full(stage.size, np.iinfo(np.int64).max, np.int64)
        np.minimum.at(smallest, into, order)
        parent, choice = need(before.by_rank)[smallest // n_choices], smallest % n_choices
        by_rank, rank = np.argsort(smallest), np.empty(stage.size, np.int64)  # distinct: one move leads to one state
        rank[by_rank] = np.arange(stage.size)
        stage.rank, stage.by_rank, stage.back, stage.reached = rank, by_rank, (parent, choice), reached

    # --- plans ----------------------------------------------------------------------------

    def _arrivals(self, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """Step n's moves from every state of stage n: parent states, child states (-1: none), values."""
        kept = self.stages[n + 1].arrivals
        if kept is not None:
            return kept.parent, kept.child, kept.value
        stage = self.stages[n]
        moves = self.moves(self.steps[n], stage, np.arange(stage.size))
        return moves.state, self.stages[n + 1].index_of(moves.keys), moves.value

    def _children(self, n: int, state: int) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """Step n's valid choices from one state of stage n, in order, with their child states (alive only)."""
        self.deadline.ensure()
        kept = self.stages[n + 1].arrivals
        if kept is not None:
            choice, child, value = kept.of(state)
        else:
            moves = self.moves(self.steps[n], self.stages[n], np.array([state]))
            choice, child, value = moves.choice, self.stages[n + 1].index_of(moves.keys), moves.value
        alive = child >= 0
        if self.stages[n + 1].backward is not None:
            alive &= np.asarray(need(self.stages[n + 1].backward)[np.maximum(child, 0)] != 0)
        return choice[alive], child[alive], value[alive] if value is not None else None

    def assignment(self, path: list[int]) -> dict[Unknown, int]:
        """The values a path of choices (from the input, whole or partial) gives the unknowns."""
        chosen = {}
        for step, c in zip(self.steps[: len(path)], path, strict=True):
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
        moves = self.moves(step, self.stages[0], np.array([0]))
        child = self.stages[1].index_of(moves.keys)
        alive = (child >= 0) & np.asarray(need(self.stages[1].backward)[np.maximum(child, 0)] != 0)
        for value in np.unique(step.choices[moves.choice[alive], column]):
            accepted[int(value)] = True
        return accepted

    def first(self) -> dict[Unknown, int]:
        """The lexicographically smallest plan (with an objective: of the best ones), walked back from the
        forward pass (no backward pass)."""
        last = self.stages[-1]
        if last.reached is None:
            state = int(np.argmin(need(last.rank)))
        else:
            state = int(np.lexsort((need(last.rank), need(last.reached)))[0])
        return self.assignment(self._path_to(len(self.stages) - 1, state))

    def example(self) -> dict[Unknown, int]:
        """Where the network has no plan: the values of the lexicographically smallest partial plan that
        reaches its dead end (the unknowns of the layers before it, and of the input)."""
        before = len(self.stages) - 2
        return self.assignment(self._path_to(before, int(np.argmin(need(self.stages[before].rank)))))

    def _path_to(self, n: int, state: int) -> list[int]:
        """The choices of the smallest partial plan reaching a state of stage n, by the back-pointers."""
        path = []
        for stage in self.stages[n:0:-1]:
            parent, choice = need(stage.back)
            path.append(int(choice[state]))
            state = int(parent[state])
        return path[::-1]

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
                yield self.assignment(path)
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
            ways = np.cumsum(np.asarray(need(self.stages[n + 1].backward)[children], dtype=object))
            pick = int(np.searchsorted(ways, rank, side="right"))
            rank -= int(ways[pick - 1]) if pick else 0
            path.append(int(choices[pick]))
            state = int(children[pick])
        return self.assignment(path)

    def best(self, limit: int | None) -> Iterator[tuple[int, dict[Unknown, int]]]:
        """Plans by the objective, smallest value first (the caller negates to maximise), ties in
        lexicographic order: a best-first search whose bound (value so far + best completion) is exact."""
        self._backward()
        if not self.feasible:
            return
        heap: list[tuple[int, tuple[int, ...], int, int]] = [(int(need(self.stages[0].best)[0]), (), 0, 0)]
        found = 0
        while heap and (limit is None or found < limit):
            bound, path, state, so_far = heapq.heappop(heap)
            n = len(path)
            if n == len(self.steps):
                found += 1
                yield bound, self.assignment(list(path))
                continue
            choices, children, values = self._children(n, state)
            after = need(self.stages[n + 1].best)
            for c, child, v in zip(choices, children, need(values), strict=True):
                total = so_far + int(v)
                heapq.heappush(heap, (total + int(after[child]), (*path, int(c)), int(child), total))


def _outputs(node: Node, transfer: Transfer) -> dict[str, tuple]:
    """The tensors a layer makes, by name: its output, and a split's pieces."""
    return {node.name: transfer.shape, **dict(zip(node.outputs[1:], transfer.pieces, strict=True))}


def build(
    network: Network,
    deadline: Deadline,
    *,
    counting: bool = False,
    objective: str | None = None,
    strict: bool = False,
    ordered: bool = True,
) -> Reach | None:
    """The pass over the network, or None where it does not apply (Z3 then does the work)."""
    if network.constraints:
        return None
    try:
        return Reach(network, deadline, counting=counting, objective=objective, strict=strict, ordered=ordered)
    except (Declined, MemoryError):  # too big for arrays, or not written for them: Z3's work
        return None
