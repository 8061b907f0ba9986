"""Counting plans without listing them, by dynamic programming over the network.

Layers are visited in order; a state holds the shapes of the tensors that later layers
still read and the values of the unknowns that later layers still use. Each layer maps
every state, under every value of the unknowns it is the first to use, to the next
state, adding up how many assignments reach it. Sizes between layers take few values,
so states stay few where enumerating assignments would multiply domains layer after
layer. The count is exact; `None` means the spec is outside what this counter handles
(constraints, for_all sizes, or too many values to try), and the caller falls back to
enumerating with Z3.
"""

from __future__ import annotations

import itertools
import math
from collections import defaultdict

from planner.deadline import Deadline
from planner.domains import Unknown
from planner.errors import GaveUp, LayerError, SpecError
from planner.graph import Network
from planner.walk import instantiate, layer_transfer, located

MAX_VALUES_PER_LAYER = 20_000  # assignments of one layer's new unknowns tried per state
MAX_STATES = 50_000


def _unknowns_in(value) -> list[Unknown]:
    if isinstance(value, Unknown):
        return [value]
    if isinstance(value, tuple):
        return [u for v in value for u in _unknowns_in(v)]
    return []


def count_plans(network: Network, deadline: Deadline | None = None) -> int | None:
    """The number of plans, or None when this counter does not apply; raises GaveUp past the deadline."""
    if network.constraints or network.for_all:
        return None
    nodes = network.nodes
    last_read = {"input": -1}
    for node in nodes:
        for name in node.inputs:
            last_read[name] = node.index
    uses: dict[Unknown, list[int]] = defaultdict(list)
    for node in nodes:
        for u in dict.fromkeys(_unknowns_in(tuple(node.params.values()))):
            uses[u].append(node.index)
    inputs = [u for u in network.unknowns if u not in uses]  # unknown input sizes
    if math.prod(u.domain.size() for u in inputs) > MAX_STATES:
        return None
    states: dict[tuple, int] = defaultdict(int)
    for values in itertools.product(*(u.domain.members() for u in inputs)):
        env = dict(zip(inputs, values, strict=True))
        shape = tuple(instantiate(t, env.__getitem__) for t in network.input_shape)
        states[((("input", shape),), ())] += 1
    for node in nodes:
        if deadline is not None and deadline.passed():
            raise GaveUp("timeout")
        fresh = [u for u in uses if uses[u][0] == node.index]
        if math.prod(u.domain.size() for u in fresh) > MAX_VALUES_PER_LAYER:
            return None
        choices = list(itertools.product(*(u.domain.members() for u in fresh)))
        following: dict[tuple, int] = defaultdict(int)
        for (tensors, assigned), ways in states.items():
            shapes = dict(tensors)
            inputs_shapes = tuple(shapes[name] for name in node.inputs)
            for values in choices:
                env = {**dict(assigned), **dict(zip(fresh, values, strict=True))}
                try:
                    transfer = layer_transfer(network, node, inputs_shapes, env.__getitem__)
                except LayerError as e:
                    raise SpecError(located(network, node, e.code, e.message, e.param)) from None
                if not all(rule.holds for rule in transfer.rules):
                    continue
                live = {**shapes, node.name: transfer.shape}
                kept = tuple((n, s) for n, s in live.items() if last_read.get(n, -1) > node.index)
                keep_values = tuple((u, v) for u, v in env.items() if uses[u][-1] > node.index)
                following[(kept, keep_values)] += ways
        if len(following) > MAX_STATES:
            return None
        states = following
    return sum(states.values())
