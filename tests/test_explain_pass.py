"""Explanations asked of the pass (`planner.solver.first`) against the same explanations asked of Z3:
where the shapes part, the input sizes that work, the domains too narrow; and a 100-layer spec
explained in full, each hint checked by solving the spec it suggests."""

from __future__ import annotations

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import planner
from planner.deadline import Deadline
from planner.solver import explain, reach
from planner.solver.encode import encode
from planner.solver.solve import Status
from planner.solver.states import Declined
from tests.random_specs import load, specs


def no_pass(*args, **kwargs):
    raise Declined("the pass is switched off in this test")


@settings(max_examples=80, deadline=None)
@given(spec=specs(dialects=("pytorch", "onnx", "tensorflow"), max_assignments=300), data=st.data())
def test_the_dead_end_is_the_layer_z3_adds_last_and_its_example_breaks_there(spec, data):
    network, _ = load(spec, data, 300)
    engine = reach.build(network, Deadline(None))
    assume(engine is not None and not engine.feasible and network.unknowns and not network.for_all)
    node = engine.dead_end
    assert node is not None
    found = explain.explain_dead_end(network, node, engine.example())
    z3_said = explain.explain_infeasible(encode(network), Deadline(None))
    assert found and all(d.layer == node.name and d.code == "infeasible" for d in found)
    if z3_said[0].message != explain.GENERIC:
        assert z3_said[0].layer == node.name


@settings(max_examples=60, deadline=None)
@given(spec=specs(dialects=("pytorch", "onnx")), data=st.data())
def test_input_sizes_that_work_are_the_same_asked_of_the_pass_or_of_z3(spec, data):
    network, _ = load(spec, data, 120)
    result = planner.solve(network, verify=False, explain=False)
    assume(result.status is Status.INFEASIBLE)
    by_pass = explain.input_sizes_that_work(network, Deadline(None))
    with pytest.MonkeyPatch.context() as m:
        m.setattr(explain, "_window_by_pass", no_pass)
        by_z3 = explain.input_sizes_that_work(network, Deadline(None))
    assert by_pass == by_z3


@settings(max_examples=60, deadline=None)
@given(spec=specs(dialects=("pytorch", "onnx")), data=st.data())
def test_domains_too_narrow_name_the_same_domains_asked_of_the_pass_or_of_z3(spec, data):
    """Every domain Z3 names, the pass names too, widened no further (the least widening). The pass may
    name more: Z3's encoding lists a pool's stride (its kernel) over the kernel's domain as written, so
    widening that kernel does not reach Z3's cases."""
    network, _ = load(spec, data, 120)
    assume(planner.solve(network, verify=False, explain=False).status is Status.INFEASIBLE)
    by_pass = explain.domains_too_narrow(network, Deadline(None))
    with pytest.MonkeyPatch.context() as m:
        m.setattr(explain, "_least_by_pass", no_pass)
        by_z3 = explain.domains_too_narrow(network, Deadline(None))
    ours = {(d.line, d.column): widened_to(d) for d in by_pass}
    for theirs in by_z3:
        assert ours[theirs.line, theirs.column] <= widened_to(theirs)


def widened_to(note: planner.Diagnostic) -> int:
    return int(note.message.rsplit("max: ", 1)[1].split("}", 1)[0])


CHAIN = """\
input: {{shape: [1, 4, {size}]}}
defaults: {{kernel: {{min: 1, max: 7}}, stride: {{min: 1, max: 4}}, padding: {{min: 0, max: {padding}}}}}
layers:
{layers}
"""


def chain(layers: int, size: int, target: int, padding: int = 3) -> str:
    lines = [
        f"  - {{name: c{n}, op: conv, out_channels: 4, kernel: '?', stride: '?', padding: '?'}}" for n in range(layers)
    ]
    lines[-1] = lines[-1][:-1] + f", expect: [1, 4, {target}]}}"
    return CHAIN.format(size=size, padding=padding, layers="\n".join(lines))


def test_a_100_layer_chain_out_of_reach_is_explained_by_the_pass_and_each_hint_solves():
    """4096 -> 4697 through 100 layers of kernel 1..7, stride 1..4, padding 0..3: each layer grows a size
    by at most 6. The bound says so; padding 4 would do; so would an input of 4097 and more."""
    result = planner.solve(planner.loads(chain(100, 4096, 4697), "c.yaml"), verify=False)
    assert result.status is Status.INFEASIBLE
    head, domain, sizes = result.diagnostics
    assert head.layer == "c99" and "lies in 1..4696, and 'expect' asks for 4697" in head.message
    assert domain.code == "domain" and "widen it with defaults: {padding: {min: 0, max: 4}}" in domain.message
    assert "c25.padding = 4" in domain.message and "and 63 more" in domain.message  # 75 layers; 12 shown
    assert sizes.message == "input sizes that work near 4096 (axis 2): 4097, 4098, 4099, 4100"
    widened = planner.solve(planner.loads(chain(100, 4096, 4697, padding=4), "w.yaml"), verify=False)
    assert widened.status is Status.SOLVED
    for size in (4095, 4097, 4100):
        status = planner.solve(planner.loads(chain(100, size, 4697), "s.yaml"), verify=False, explain=False).status
        assert status is (Status.SOLVED if size > 4096 else Status.INFEASIBLE)


def test_example_values_past_a_dozen_are_counted():
    network = planner.loads(chain(20, 64, 64), "c.yaml")
    assignment = {u: u.domain.lo for u in network.unknowns}
    shown = explain._example(network, assignment, None)
    assert shown.count("=") == explain.MAX_SHOWN and shown.endswith(", and 48 more)")
    assert shown.startswith(" (the shapes shown are those of c0.kernel=1, c0.stride=1, c0.padding=0, ")
