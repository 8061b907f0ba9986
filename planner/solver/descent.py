"""The first plan without the whole pass: a depth-first descent in lexicographic order, pruned by bounds.

The first plan is the lexicographically smallest assignment (unknowns in order of first use).
The reachable-state pass finds it by visiting every state of every layer, thousands per layer
on wide domains. The descent instead follows one state: at each layer it evaluates that state
under all the layer's choices at once (the same step as the pass), and takes the smallest
choice whose next state is not known dead and whose tensors lie within the sizes the later
`expect`s still allow (`planner.solver.bounds.required`). A state all of whose choices fail
is dead; the descent backs up and never enters it again. The first complete path is the
lexicographically smallest plan, exactly the pass's first plan: pruning is by necessary
conditions only, and choices are tried in order.

Bounds are hulls, so a descent can still meet dead ends; after a budget of expansions it
gives up and the caller runs the pass, which costs what it cost before.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from planner.deadline import Deadline
from planner.domains import Unknown
from planner.graph import Network
from planner.solver.bounds import Bounds, Interval, cells, required
from planner.solver.reach import Reach
from planner.solver.states import Declined, Moves, Stage

DESCENT_CELLS = 1_000_000  # worth a descent once the whole pass would evaluate more cells than this


def worth_descending(network: Network, bounds: Bounds) -> bool:
    """Whether the whole pass would evaluate so many cells that a descent is tried first."""
    return cells(network, bounds) > DESCENT_CELLS


@dataclass(frozen=True)
class Descended:
    """What a descent that finished found: the first plan's assignment, or None when there is no plan."""

    assignment: dict[Unknown, int] | None


def descend(network: Network, bounds: Bounds, deadline: Deadline, *, strict: bool = False) -> Descended | None:
    """The first plan (with `strict`, the first without a degenerate layer) by a pruned descent; None when
    the descent does not apply (constraints, for_all sizes) or gives up within its budget."""
    if network.constraints or network.for_all:
        return None
    try:
        reach = Reach(network, deadline, strict=strict, forward=False)
        need = required(network, bounds, deadline)
        return _Descent(reach, need, budget=2 * len(reach.steps) + 32).run()
    except Declined:
        return None


@dataclass
class _Frame:
    """One state being expanded: its valid moves in order, and the one being tried."""

    key: bytes
    moves: Moves
    valid: list[int]  # indices into moves: the choices within the required sizes, in order
    at: int = 0

    @property
    def choice(self) -> int:
        return int(self.moves.choice[self.valid[self.at]])

    def next_alive(self, dead: set[bytes]) -> bytes | None:
        """The key of the next state to try, or None when every move has failed. A state that failed is
        dead, so the other moves into it are skipped too."""
        while self.at < len(self.valid):
            key = self.moves.keys[self.valid[self.at]].tobytes()
            if key not in dead:
                return key
            self.at += 1
        return None


class _Descent:
    def __init__(self, reach: Reach, need: dict[str, tuple[Interval | None, ...]], budget: int):
        self.reach = reach
        self.need = need
        self.budget = budget
        self.dead: list[set[bytes]] = [set() for _ in range(len(reach.steps) + 1)]

    def run(self) -> Descended | None:
        steps = self.reach.steps
        root = Stage({}, {}, np.zeros((1, 0), np.int64), 1)
        frames = [self._expand(0, root, b"")]
        expansions = 1
        while frames:
            n = len(frames) - 1
            frame = frames[-1]
            key = frame.next_alive(self.dead[n + 1])
            if key is None:
                self.dead[n].add(frame.key)
                frames.pop()
                continue
            if n + 1 == len(steps):
                return Descended(self.reach.assignment([f.choice for f in frames]))
            expansions += 1
            if expansions > self.budget:
                return None
            frames.append(self._expand(n + 1, _child(frame.moves, frame.valid[frame.at]), key))
        return Descended(None)

    def _expand(self, n: int, stage: Stage, key: bytes) -> _Frame:
        """Step n from one state, over all its choices at once."""
        self.reach.deadline.ensure()
        moves = self.reach.moves(self.reach.steps[n], stage, np.zeros(1, np.int64))
        return _Frame(key, moves, np.flatnonzero(self._within(moves)).tolist())

    def _within(self, moves: Moves) -> np.ndarray:
        """Which moves leave every live tensor within the sizes the later `expect`s allow."""
        ok = np.ones(len(moves.state), bool)
        for name, dims in moves.tensors.items():
            for d, interval in zip(dims, self.need.get(name, ()), strict=False):
                if interval is None:
                    continue
                if isinstance(d, int):
                    if not interval[0] <= d <= interval[1]:
                        return np.zeros(len(moves.state), bool)
                else:
                    ok &= ((d >= interval[0]) & (d <= interval[1])).all(axis=1)
        return ok


def _child(moves: Moves, m: int) -> Stage:
    """The state move m leads to, as a stage of one state."""
    tensors = {
        name: tuple(d if isinstance(d, int) else d[m : m + 1] for d in dims) for name, dims in moves.tensors.items()
    }
    kept = {u: v[m : m + 1] for u, v in moves.kept.items()}
    return Stage(tensors, kept, moves.keys[m : m + 1], 1)
