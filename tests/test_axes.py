"""Networks solved one spatial axis at a time (planner.solver.axes) against brute force and the joint pass.

The brute force walks every assignment through `compute_plan` over whole shapes, the joint pass
keeps both axes in one state: agreeing with them tests the decomposition (which unknowns are
shared, the projections, the merge and the ranks), not the arithmetic, which PyTorch checks
elsewhere.
"""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import planner
from planner.deadline import Deadline
from planner.solver import axes, bounds, reach
from planner.solver.states import Declined
from tests.conftest import ROOT
from tests.random_specs import brute_force, load, specs


def ordered(network, assignments):
    return [tuple(a[u.name] if isinstance(next(iter(a)), str) else a[u] for u in network.unknowns) for a in assignments]


def engine_of(network, strict=False):
    found = bounds.bound_pass(network, Deadline(None))
    if not axes.apart(network, found):
        return None
    try:
        return axes.Axes(network, found, Deadline(None), strict=strict)
    except Declined:
        return None


@settings(max_examples=300)
@given(spec=specs(dialects=("pytorch", "onnx"), max_assignments=400), data=st.data())
def test_count_first_plan_and_ranks_equal_brute_force(spec, data):
    network, _ = load(spec, data, 400)
    engine = engine_of(network)
    if engine is None:
        return
    outcomes = [o for o in brute_force(network) if o.plan is not None]
    valid = sorted(ordered(network, [o.assignment for o in outcomes]))
    assert engine.count() == len(valid)
    assert engine.feasible == bool(valid)
    if valid:
        assert ordered(network, [engine.first()]) == valid[:1]
        assert sorted(ordered(network, [engine.plan_at(r) for r in range(engine.count())])) == valid
        useful = sorted(ordered(network, [o.assignment for o in outcomes if not o.plan.waste()]))
        strict = engine_of(network, strict=True)
        assert strict is not None and ordered(network, [strict.first()] if strict.feasible else []) == useful[:1]


UNET = (ROOT / "specs" / "unet_original.yaml").read_text()


def free_unet(low: int, high: int) -> planner.Network:
    """The original U-Net with its input's height and width free in low..high and no expected output."""
    text = UNET.replace(
        "shape: [1, 1, 572, 572]", f"shape: [1, 1, {{min: {low}, max: {high}}}, {{min: {low}, max: {high}}}]"
    )
    return planner.loads(re.sub(r", expect: \[[^]]*\]", "", text), "unet.yaml")


def test_unet_with_free_height_and_width_counts_like_the_joint_pass():
    network = free_unet(150, 200)  # 51 x 51 input sizes: few enough for the joint pass
    engine = engine_of(network)
    assert engine is not None and [u.name for u in axes.shared_unknowns(network)] == ["$up_kernel", "$up_stride"]
    joint = reach.build(network, Deadline(None), counting=True)
    assert joint is not None
    assert engine.count() == joint.count() > 0
    assert engine.first() == joint.first()


def test_solve_counts_and_samples_a_unet_whose_joint_pass_declines():
    network = free_unet(100, 800)  # 701 x 701 input sizes: too many choices for one layer of the joint pass
    assert reach.build(network, Deadline(None)) is None
    result = planner.solve(network, count=True, verify=False)
    assert result.status.value == "solved"
    engine = engine_of(network)
    assert result.count == engine.count() == sum(c.counts[0] * c.counts[1] for c in engine.cases)
    assert result.plans[0].verified is False or result.plans[0].layers[-1].output_shape[2] >= 1
    sampled = planner.solve(network, sample=5, seed=3)
    assert len({tuple(p.assignment.values()) for p in sampled.plans}) == 5 and all(p.verified for p in sampled.plans)


SMALL = """
input: {shape: [1, 1, {min: 5, max: 9}, {min: 5, max: 9}]}
layers:
  - {name: a, op: conv, out_channels: 1, kernel: ["?", "?"], stride: [{min: 1, max: 2}, {min: 1, max: 2}]}
  - {name: b, op: maxpool, kernel: 2, expect: [1, 1, 2, "?"]}
"""


def test_ranks_through_the_axes_are_a_bijection_onto_the_joint_plans():
    """Samples are uniform ranks unranked: uniform over the plans because every plan has exactly one rank."""
    network = planner.loads(SMALL, "small.yaml")
    engine = engine_of(network)
    assert engine is not None and axes.shared_unknowns(network) == []
    joint = sorted(ordered(network, reach.build(network, Deadline(None)).plans()))
    ranked = ordered(network, [engine.plan_at(r) for r in range(engine.count())])
    assert len(set(ranked)) == len(ranked) and sorted(ranked) == joint and len(joint) > 20
    with pytest.raises(IndexError):
        engine.plan_at(engine.count())


def test_an_axis_with_no_plan_is_named():
    """Even sizes only (pool by 2, then up by 2), an odd one asked: the bounds allow it, the pass does not."""
    text = """
input: {shape: [1, 1, {min: 1, max: 400}, {min: 1, max: 400}]}
layers:
  - {name: down, op: maxpool, kernel: 2}
  - {name: up, op: conv_transpose, out_channels: 1, kernel: 2, stride: 2, expect: [1, 1, 41, "?"]}
"""
    network = planner.loads(text, "odd.yaml")
    assert reach.build(network, Deadline(None)) is None  # 400 x 400 input sizes: the joint pass declines
    result = planner.solve(network, explain=False, verify=False)
    assert result.status.value == "infeasible"
    (diagnostic,) = result.diagnostics
    assert diagnostic.message.startswith("up: on spatial axis 0 (dims [N, C, that axis]): no choice of the unknowns")


@pytest.mark.parametrize("dialect", ["tensorflow"])
def test_tensorflow_ties_the_axes(dialect):
    network = planner.loads(f"dialect: {dialect}\n" + SMALL, "small.yaml")
    assert engine_of(network) is None


def test_for_all_sizes_are_served_axis_by_axis_like_the_joint_pass():
    """unet_same serves every height and width of its sets together (961 lanes in the joint pass); apart,
    each axis serves its own 31 sizes, and the plans are the same."""
    network = planner.loads((ROOT / "specs" / "unet_same.yaml").read_text(), "unet_same.yaml")
    engine = engine_of(network)
    joint = reach.build(network, Deadline(None), counting=True)
    assert engine is not None and joint is not None
    assert engine.count() == joint.count() == 7
    assert engine.first() == joint.first()
    every = sorted(ordered(network, reach.build(network, Deadline(None)).plans()))
    assert sorted(ordered(network, [engine.plan_at(r) for r in range(7)])) == every
