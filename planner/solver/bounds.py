"""A sound bound pass: the first `expect` no plan can meet, proven from each dim's bounds alone."""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from planner.deadline import Deadline
from planner.errors import FieldUnsupported, LayerError
from planner.graph import Network, Node
from planner.ops import OPS
from planner.solver.states import MAX_CHOICES, lift, unknowns_in
from planner.walk import layer_transfer


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
    corners: list[Any] = []
    for term in network.input_shape:
        if isinstance(term, int):
            corners.append(term)
        else:
            ends = term.domain.members() if term.domain.size() <= MAX_CHOICES else [term.domain.lo, term.domain.hi]
            corners.append(np.array([min(ends), max(ends)], np.int64).reshape(2, 1, 1))
    shapes: dict[str, tuple] = {"input": tuple(corners)}
    for node in network.nodes:
        deadline.ensure()
        unknowns = list(dict.fromkeys(unknowns_in(tuple(node.params.values()))))
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
        shape: list[Any] = []
        for d, size in enumerate(transfer.shape):
            if isinstance(size, (int, np.generic)):
                shape.append(int(size))
                continue
            size = np.broadcast_to(lift(size), (2, len(rows), 1))
            lower, upper = max(1, int(size[0].min())), int(size[1].max())
            if upper < lower:  # no output of at least 1: the exact pass names the rule that breaks
                return None
            wanted = node.expect[d] if node.expect is not None and d < len(node.expect) else None
            if wanted is not None:
                if not lower <= wanted <= upper:
                    return Unreachable(node, d, lower, upper, wanted)
                lower = upper = wanted
            shape.append(np.array([lower, upper], np.int64).reshape(2, 1, 1))
        shapes[node.name] = tuple(shape)
    return None
