"""Layer tables (planner.solver.tables): a repeated layer read out of its table gives what the direct
evaluation gives. The pass with tables against the pass without them (the same states, counts, plans
in order, first plan and best plan) and against brute force, on random chains whose layers repeat.
Likewise the bound pass, whose repeated layers share their evaluations (planner.solver.bounds), against
each layer evaluated on its own two corners."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import planner
from planner.deadline import Deadline
from planner.solver import bounds, reach, tables
from planner.solver.states import lift
from planner.walk import op_transfer
from tests.conftest import ROOT
from tests.random_specs import brute_force, load, specs

TEMPLATES = (
    'op: conv, out_channels: 2, kernel: "?", stride: "?", padding: "?"',
    'op: conv, out_channels: 2, kernel: {one_of: [1, 3]}, dilation: "?", padding: same',
    'op: conv_transpose, out_channels: 2, kernel: "?", stride: "?", padding: "?"',
    'op: maxpool, kernel: "?", stride: "?", ceil_mode: true',
    'op: avgpool, kernel: "?", padding: "?"',
    "op: conv, out_channels: 2, kernel: 3, padding: 1",
)


@st.composite
def repeating_chains(draw):
    """A chain of 3-7 layers drawn from two templates (so layers repeat), 1-D or 2-D, maybe an expect."""
    rank = draw(st.sampled_from([1, 2]))
    sizes = [draw(st.integers(1, 24)) for _ in range(rank)]
    picked = draw(st.lists(st.sampled_from(TEMPLATES), min_size=2, max_size=2))
    order = draw(st.lists(st.integers(0, 1), min_size=3, max_size=7))
    lines = [
        f"input: {{shape: [1, 2, {', '.join(map(str, sizes))}]}}",
        "defaults: {kernel: {min: 1, max: 3}, stride: {min: 1, max: 2}, padding: {min: 0, max: 1}, "
        "dilation: {min: 1, max: 2}}",
        "layers:",
    ]
    for n, t in enumerate(order):
        lines.append(f"  - {{name: l{n}, {picked[t]}}}")
    if draw(st.booleans()):
        unknown = ', "?"' * rank
        lines[-1] = lines[-1][:-1] + f", expect: [1, 2{unknown}]}}"
    return "\n".join(lines) + "\n"


def without_tables(monkeypatch, build):
    with monkeypatch.context() as m:
        m.setattr(reach, "repeated", lambda layers: {})
        return build()


def stages(engine):
    return [
        (s.size, s.keys.tolist(), None if s.forward is None else [int(c) for c in s.forward]) for s in engine.stages
    ]


@settings(max_examples=80, deadline=None)
@given(text=repeating_chains())
def test_tables_change_nothing_the_pass_finds(text):
    """The same states and counts and the same first plan; where there are at most 100 plans, the same plans in
    order; where there are at most 500 assignments, the count brute force gives."""
    network = planner.loads(text, "chain.yaml")
    with pytest.MonkeyPatch.context() as m:
        plain = without_tables(m, lambda: reach.build(network, Deadline(None), counting=True))
        tabled = reach.build(network, Deadline(None), counting=True)
        assert plain is not None and tabled is not None
        assert stages(tabled) == stages(plain)
        assert tabled.count() == plain.count()
        if plain.count():
            assert tabled.first() == plain.first()
        if plain.count() <= 100:
            listed = without_tables(m, lambda: list(reach.build(network, Deadline(None)).plans()))
            assert list(reach.build(network, Deadline(None)).plans()) == listed
    if np.prod([u.domain.size() for u in network.unknowns]) <= 500:
        assert tabled.count() == sum(o.plan is not None for o in brute_force(network))


def one_conv_chain(layers: int) -> planner.Network:
    """`layers` copies of one conv (kernel 1..3, stride 1..2, padding 0..1) on a size of 64."""
    text = "input: {shape: [1, 1, 64]}\nlayers:\n" + "".join(
        f"  - {{name: c{n}, op: conv, out_channels: 1, kernel: {{min: 1, max: 3}}, stride: {{min: 1, max: 2}}, "
        f"padding: {{min: 0, max: 1}}}}\n"
        for n in range(layers)
    )
    return planner.loads(text, "chain.yaml")


def test_a_repeated_layer_is_read_from_its_table(monkeypatch):
    """A 30-layer chain of one layer: its table is built a few times (the box grows), not once a layer."""
    network = one_conv_chain(30)
    built = []
    real = reach.build_table
    monkeypatch.setattr(reach, "build_table", lambda *a: built.append(1) or real(*a))
    engine = reach.build(network, Deadline(None), counting=True)
    assert engine is not None and 1 <= len(built) <= 8
    assert len(engine.repeats) == 29  # the first layer reads the network's input: a signature of its own


def signatures_hold(network: planner.Network) -> int:
    """Each layer's signature is the one it makes alone; how many layers took theirs from an earlier one."""
    for node in network.nodes:
        assert node.signature == node.own_signature(), node.name
    return sum(node.written_like is not None for node in network.nodes)


def test_layers_written_alike_share_the_signature_each_would_make_alone():
    files = sorted([*(ROOT / "specs").glob("*.yaml"), *(ROOT / "tests" / "specs" / "valid").glob("*.yaml")])
    assert sum(signatures_hold(planner.load(path)) for path in files) > 100


@settings(max_examples=100)
@given(text=repeating_chains())
def test_repeated_layers_share_the_signature_each_would_make_alone(text):
    signatures_hold(planner.loads(text, "chain.yaml"))


def test_layers_that_differ_share_no_table():
    """Signatures tell apart what changes a layer's outputs: channels, domains, modes, expect."""
    base = 'op: conv, out_channels: 2, kernel: "?", padding: "?"'
    variants = [
        base,
        base.replace("out_channels: 2", "out_channels: 3"),
        base + ", stride: 2",
        base.replace('kernel: "?"', "kernel: {min: 1, max: 2}"),
        base + ", expect: [1, 2, 5]",
    ]
    for a, b in itertools.combinations(variants, 2):
        text = f"input: {{shape: [1, 2, 16]}}\nlayers:\n  - {{name: x, {a}}}\n  - {{name: y, {b}}}\n"
        network = planner.loads(text, "two.yaml")
        layers = [(step.node, step.fresh) for step in reach.steps_of(network) if step.node is not None]
        assert tables.repeated(layers) == {}, (a, b)


def bounds_layer_by_layer(network: planner.Network) -> tuple[dict, str | None] | None:
    """The forward bounds, each layer evaluated on its own all-lo and all-hi corners: what the bound pass
    gives without sharing evaluations between layers. None where the pass does not apply."""
    if not bounds.applies(network):
        return None
    ends = [
        t if isinstance(t, int) else (min(t.domain.members()), max(t.domain.members())) for t in network.input_shape
    ]
    shapes = {"input": tuple(t if isinstance(t, int) else np.array(t).reshape(2, 1, 1) for t in ends)}
    for node in network.nodes:
        grid = dict(zip(node.unknowns, reach.choice_columns(tuple(u.domain for u in node.unknowns)), strict=True))
        try:
            transfer = op_transfer(network, node, tuple(shapes[n] for n in node.inputs), grid.__getitem__)
        except Exception:
            return None
        if node.expect is not None and len(node.expect) != len(transfer.shape):
            return None
        shape = []
        for d, size in enumerate(transfer.shape):
            if isinstance(size, (int, np.generic)):
                shape.append(int(size))
                continue
            lower, upper = max(1, int(lift(size)[0].min())), int(lift(size)[-1].max())
            if upper < lower:
                return None
            wanted = node.expect[d] if node.expect is not None else None
            if wanted is not None:
                if not lower <= wanted <= upper:
                    return plain(shapes), f"{node.name} {d} {lower} {upper} {wanted}"
                lower = upper = wanted
            shape.append(np.array([lower, upper]).reshape(2, 1, 1))
        shapes[node.name] = tuple(shape)
    return plain(shapes), None


def plain(shapes: dict) -> dict:
    return {
        n: tuple(d if isinstance(d, int) else tuple(d.reshape(-1).tolist()) for d in dims) for n, dims in shapes.items()
    }


def shared_bounds(network: planner.Network) -> tuple[dict, str | None] | None:
    found = bounds.bound_pass(network, Deadline(None))
    if found is None:
        return None
    p = found.proof
    return found.shapes, None if p is None else f"{p.node.name} {p.dim} {p.lower} {p.upper} {p.wanted}"


@settings(max_examples=80, deadline=None)
@given(text=repeating_chains())
def test_the_bound_pass_shares_evaluations_without_changing_a_bound(text):
    network = planner.loads(text, "chain.yaml")
    assert shared_bounds(network) == bounds_layer_by_layer(network)


@settings(max_examples=60, deadline=None)
@given(spec=specs(dialects=("pytorch", "onnx", "tensorflow"), max_assignments=300), data=st.data())
def test_the_bound_pass_of_random_graphs_equals_it_layer_by_layer(spec, data):
    network, _ = load(spec, data, 300)
    assert shared_bounds(network) == bounds_layer_by_layer(network)


def test_a_drifting_chain_is_evaluated_a_few_times_not_once_a_layer(monkeypatch):
    """200 layers of one conv: the all-hi corner grows by 2 a layer, the all-lo one halves down to 1; the
    guesses ahead cover the chain in a few evaluations, and the bounds are those of layer by layer."""
    network = one_conv_chain(200)
    calls = []
    real = bounds._evaluate
    monkeypatch.setattr(bounds, "_evaluate", lambda *a: calls.append(1) or real(*a))
    found = shared_bounds(network)
    assert len(calls) <= 12
    assert found == bounds_layer_by_layer(network)
    assert found is not None and found[0]["c199"] == (1, 1, (1, 464))
