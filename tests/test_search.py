"""Architecture search: the reachable-state pass's counts and the objectives against brute
force, and receptive fields of known networks against their published values.

The brute force walks every assignment through `compute_plan`, which shares the ops' transfers
with the pass: these tests check the pass (its states, counts, order), not the arithmetic, whose
oracle is PyTorch (tests/test_specs.py, tests/test_export.py)."""

from __future__ import annotations

import itertools
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import planner
from planner.deadline import Deadline
from planner.errors import InfeasibleError
from planner.objective import plan_value
from planner.plan import compute_plan
from planner.receptive import plan_fields
from planner.solver import optimize, reach
from tests.conftest import ROOT
from tests.random_specs import load, specs

PROFILE = settings(max_examples=60)  # the rest from the conftest profile


def count_plans(network):
    """The pass's count (None where it declines)."""
    engine = reach.build(network, Deadline(None), counting=True)
    return None if engine is None else engine.count()


def valid_plans(network):
    plans = []
    for values in itertools.product(*(u.domain.members() for u in network.unknowns)):
        try:
            plans.append(compute_plan(network, dict(zip(network.unknowns, values, strict=True))))
        except InfeasibleError:
            pass
    return plans


@PROFILE
@given(spec=specs(dialects=("pytorch", "onnx", "tensorflow"), max_assignments=400), data=st.data())
def test_counter_equals_brute_force(spec, data):
    network, _ = load(spec, data, 400)
    assert count_plans(network) == len(valid_plans(network))
    result = planner.solve(network, count=True, verify=False)
    assert result.count == len(valid_plans(network))
    alone = planner.solve(network, count=True, max_solutions=0, verify=False)  # the count, no plan
    assert (alone.status, alone.count, alone.plans) == (result.status, result.count, [])


def test_counter_handles_graphs_shared_variables_and_unknown_sizes():
    from tests.test_graphs import UNET_SMALL

    network = planner.loads(UNET_SMALL.format(size="{min: 8, max: 10}", ceil="false"), "unet.yaml")
    assert network.unknowns[-1].name.startswith("input.shape") or any(u.kind == "size" for u in network.unknowns)
    assert count_plans(network) == len(valid_plans(network)) > 0


def test_counter_declines_constraints_and_counts_for_all_sets():
    text = (ROOT / "specs" / "autoencoder.yaml").read_text()  # constraints tie distant layers: Z3's work
    assert count_plans(planner.loads(text, "a.yaml")) is None
    every = planner.solve(planner.loads(text, "a.yaml"), max_solutions=None, verify=False)
    alone = planner.solve(planner.loads(text, "a.yaml"), count=True, max_solutions=0, verify=False)
    assert (alone.status, alone.count, alone.plans) == (every.status, every.count, []) and every.count
    text = (ROOT / "specs" / "unet_same.yaml").read_text()  # for_all: every size of the set in one state
    network = planner.loads(text, "u.yaml")
    assert count_plans(network) == planner.solve(network, max_solutions=None, verify=False).count == 7


OBJECTIVE_SPEC = """
input: {{shape: [1, 3, {size}, {size}]}}
defaults:
  kernel: {{min: 1, max: 3}}
  stride: {{min: 1, max: 2}}
  padding: {{min: 0, max: 1}}
layers:
  - {{name: c1, op: conv, out_channels: 8, kernel: "?", stride: "?", padding: "?"}}
  - {{name: bn, op: batchnorm}}
  - {{name: c2, op: conv, out_channels: 4, kernel: "?", padding: 1, bias: false}}
  - {{name: up, op: conv_transpose, out_channels: 2, kernel: "?", stride: 2, padding: "?", output_padding: "?"}}
  - {{name: pool, op: maxpool, kernel: "?", stride: 1, padding: 0, expect: [1, 2, "?", "?"]}}
objective: {{{direction}: {kind}}}
"""


@pytest.mark.parametrize(
    "direction,kind",
    [("minimize", "params"), ("minimize", "flops"), ("minimize", "kernel_sum"), ("maximize", "receptive_field")],
)
@pytest.mark.parametrize("size", [9, 16])
def test_objective_optimum_equals_brute_force(direction, kind, size):
    network = planner.loads(OBJECTIVE_SPEC.format(size=size, direction=direction, kind=kind), "obj.yaml")
    plans = valid_plans(network)
    sign = 1 if direction == "minimize" else -1
    ranked = sorted(plans, key=lambda p: (sign * plan_value(network, p), tuple(p.assignment.values())))
    result = planner.solve(network, max_solutions=3, verify=False)
    assert [p.assignment for p in result.plans] == [p.assignment for p in ranked[:3]]
    assert [p.objective for p in result.plans] == [plan_value(network, p) for p in ranked[:3]]
    every = planner.solve(network, max_solutions=None, verify=False)
    assert [p.assignment for p in every.plans] == [p.assignment for p in ranked] and every.count == len(plans)
    alone = planner.solve(network, count=True, max_solutions=0, verify=False)  # no plan listed: none ranked
    assert (alone.count, alone.plans) == (len(plans), [])


@pytest.mark.parametrize(
    "direction,kind",
    [("minimize", "params"), ("minimize", "flops"), ("minimize", "kernel_sum"), ("maximize", "receptive_field")],
)
def test_z3_optimiser_bisects_to_the_brute_force_optimum(direction, kind, monkeypatch):
    """Z3's side (objectives the pass declines, specs with constraints): the same best plans as brute force,
    in a number of Z3 calls logarithmic in the values and domains, not one per improvement."""
    text = OBJECTIVE_SPEC.format(size=16, direction=direction, kind=kind)
    if kind == "receptive_field":  # Z3 has the field of direct convolutions and pooling only
        up = '  - {name: up, op: conv, out_channels: 2, kernel: "?", stride: "?", padding: "?"}'
        text = "\n".join(up if "name: up," in line else line for line in text.splitlines())
    network = planner.loads(text, "obj.yaml")
    plans = valid_plans(network)
    sign = 1 if direction == "minimize" else -1
    ranked = sorted(plans, key=lambda p: (sign * plan_value(network, p), tuple(p.assignment.values())))
    calls = []
    step = optimize._step
    monkeypatch.setattr(optimize, "_step", lambda *args: calls.append(1) or step(*args))
    value_of = lambda a: plan_value(network, compute_plan(network, a))  # noqa: E731
    best = optimize.best_assignments(network, 3, value_of, Deadline(60))
    assert [{u.name: v for u, v in a.items()} for a in best] == [p.assignment for p in ranked[:3]]
    top = max(abs(plan_value(network, p)) for p in plans)
    per_plan = (
        3 + 2 * math.ceil(math.log2(top + 2)) + sum(math.ceil(math.log2(u.domain.size())) + 1 for u in network.unknowns)
    )
    assert len(calls) <= 3 * per_plan, (len(calls), per_plan)


def test_objective_values_by_hand():
    text = """
input: {shape: [1, 3, 8, 8]}
layers:
  - {name: c, op: conv, out_channels: 4, kernel: 3, padding: 1, groups: 1}
  - {name: bn, op: batchnorm}
  - {name: t, op: conv_transpose, out_channels: 2, kernel: 2, stride: 2, bias: false}
  - {name: f, op: flatten}
  - {name: fc, op: linear, out_features: 5}
objective: {minimize: KIND}
"""
    expected = {
        "params": (3 * 4 * 9 + 4) + 2 * 4 + (4 * 2 * 4) + (2 * 16 * 16 * 5 + 5),
        "flops": 2 * (4 * 8 * 8 * 3 * 9) + 2 * (4 * 8 * 8 * 2 * 4) + 2 * (2 * 16 * 16 * 5),
        "kernel_sum": 3 + 3 + 2 + 2,
    }
    for kind, value in expected.items():
        result = planner.solve(planner.loads(text.replace("KIND", kind), "k.yaml"), verify=False)
        assert result.plans[0].objective == value, kind


def _field(path, layer):
    plan = planner.solve(path, verify=False).plans[0]
    return plan_fields(plan)[layer][0]


@pytest.mark.parametrize(
    "network,layer,published",
    [
        ("vgg16", "conv5_3", 196),
        ("vgg16", "pool5", 212),
        ("resnet50", "l4_2", 427),  # torchvision's ResNet-50 (stride on the 3x3 conv of the first block of a stage)
    ],
)
def test_receptive_fields_of_known_networks(network, layer, published):
    assert _field(ROOT / "tests" / "specs" / "networks" / f"{network}.yaml", layer) == (published, published)


def test_receptive_field_of_resnet50_slim_layout():
    # TF-slim's resnet_v1_50 downsamples in the 3x3 conv of the LAST unit of blocks 1-3: published 483
    layers, n = [], 0
    for units, last_stride in ((3, 2), (4, 2), (6, 2), (3, 1)):
        for unit in range(units):
            stride = last_stride if unit == units - 1 else 1
            for kernel, s in ((1, 1), (3, stride), (1, 1)):
                pad = kernel // 2
                layers.append(
                    f"  - {{name: c{n}, op: conv, out_channels: 4, kernel: {kernel}, stride: {s}, padding: {pad}}}"
                )
                n += 1
    text = (
        "input: {shape: [1, 3, 224, 224]}\nlayers:\n  - {name: stem, op: conv, out_channels: 4, kernel: 7, "
        "stride: 2, padding: 3}\n  - {name: pool, op: maxpool, kernel: 3, stride: 2, padding: 1}\n"
        + "\n".join(layers)
        + "\n"
    )
    plan = planner.solve(planner.loads(text, "slim.yaml"), verify=False).plans[0]
    assert plan_fields(plan)[f"c{n - 1}"][0] == (483, 483)


RF_SPEC = """
input: {shape: [1, 1, 40]}
defaults:
  kernel: {min: 1, max: 5}
  stride: {min: 1, max: 2}
  dilation: {min: 1, max: 2}
  padding: {min: 0, max: 0}
layers:
  - {name: a, op: conv, out_channels: 1, kernel: "?", stride: "?"}
  - {name: b, op: conv, out_channels: 1, kernel: "?", dilation: "?"}
  - {name: c, op: maxpool, kernel: 2}
constraints:
  - "c.rf[0] >= 12 and b.jump[0] <= 1 and c.jump[0] == 2"
"""


def test_receptive_field_constraints_equal_brute_force():
    network = planner.loads(RF_SPEC, "rf.yaml")
    expected = [p.assignment for p in valid_plans(network)]
    for plan in map(plan_fields, valid_plans(network)):
        assert plan["c"][0][0] >= 12 and plan["c"][1][0] == 2
    found = [p.assignment for p in planner.solve(network, max_solutions=None, verify=False).plans]
    assert expected and sorted(map(sorted, map(dict.items, found))) == sorted(map(sorted, map(dict.items, expected)))


def test_the_collector_is_paused_while_solving_and_running_again_after(monkeypatch: pytest.MonkeyPatch) -> None:
    import gc

    from planner import api

    during: list[bool] = []
    real = api.solve_network
    monkeypatch.setattr(api, "solve_network", lambda *a, **k: during.append(gc.isenabled()) or real(*a, **k))
    spec = ROOT / "specs" / "lenet5.yaml"
    assert gc.isenabled()
    assert planner.solve(spec, verify=False).status is planner.Status.SOLVED
    assert during == [False] and gc.isenabled()
    with pytest.raises(ValueError):
        planner.solve(spec, max_solutions=-1)  # refused: the collector runs again all the same
    assert gc.isenabled()
    gc.disable()  # paused by the caller: left paused
    try:
        planner.solve(spec, verify=False)
        assert not gc.isenabled()
    finally:
        gc.enable()
