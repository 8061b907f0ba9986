"""The reachable-state pass (planner.solver.reach) against brute force, Z3 and a DP written here.

The brute force walks every assignment through `compute_plan`, which shares the ops' transfers
with the pass: those comparisons test the pass (states, counts, order, unranking), not the
arithmetic. The chain DP below writes PyTorch's conv arithmetic itself, independently; PyTorch
stays the oracle of the arithmetic elsewhere (tests/test_specs.py, tests/test_dialects.py).
"""

from __future__ import annotations

import collections
import itertools
import random

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import planner
import planner.plan
from planner import arithmetic as ar
from planner.deadline import Deadline
from planner.solver import bounds, descent, reach, states
from planner.solver.solve import _by_z3
from tests.random_specs import brute_force, load, specs


def ordered(network, assignments):
    """Assignments as tuples in the network's order of unknowns (the order plans come in)."""
    return [tuple(a[u.name] if isinstance(next(iter(a)), str) else a[u] for u in network.unknowns) for a in assignments]


@settings(max_examples=80)
@given(spec=specs(dialects=("pytorch", "onnx", "tensorflow"), max_assignments=300), data=st.data())
def test_pass_lists_exactly_the_brute_force_plans_in_lexicographic_order(spec, data):
    network, _ = load(spec, data, 300)
    valid = sorted(ordered(network, [o.assignment for o in brute_force(network) if o.plan is not None]))
    engine = reach.build(network, Deadline(None))
    assert engine is not None
    assert ordered(network, engine.plans()) == valid
    assert engine.count() == len(valid) == reach.build(network, Deadline(None), counting=True).count()
    if valid:  # the forward pass's own smallest plan, walked back without a backward pass
        assert ordered(network, [reach.build(network, Deadline(None)).first()]) == valid[:1]
    for rank in sorted({0, len(valid) // 2, len(valid) - 1}) if valid else []:
        assert ordered(network, [engine.plan_at(rank)]) == [valid[rank]]
    if bounds.unreachable(network, Deadline(None)) is not None:  # the bounds are sound
        assert valid == []


@settings(max_examples=120)
@given(spec=specs(dialects=("pytorch", "onnx", "tensorflow"), max_assignments=300), data=st.data())
def test_descent_finds_the_brute_force_first_plan_or_gives_up(spec, data):
    """The pruned descent is exact where it answers: the smallest plan, the smallest non-degenerate one
    with `strict`, or no plan exactly when there is none; and the bounds it prunes with are sound."""
    network, _ = load(spec, data, 300)
    outcomes = [o for o in brute_force(network) if o.plan is not None]
    valid = sorted(ordered(network, [o.assignment for o in outcomes]))
    useful = sorted(ordered(network, [o.assignment for o in outcomes if not o.plan.waste()]))
    found = bounds.bound_pass(network, Deadline(None))
    if found is None or found.proof is not None or network.for_all or network.constraints:
        return
    need = bounds.required(network, found, Deadline(None))
    for o in outcomes:  # every plan's tensors lie within the required sizes
        for layer in o.plan.layers:
            for size, interval in zip(layer.output_shape, need.get(layer.name, ()), strict=False):
                assert interval is None or interval[0] <= size <= interval[1], (layer.name, size, interval)
    for strict, want in ((False, valid), (True, useful)):
        got = descent.descend(network, found, Deadline(None), strict=strict)
        if got is not None:
            assert (ordered(network, [got.assignment]) if got.assignment is not None else []) == want[:1]


OPS_OF_CHAINS = ["conv", "maxpool", "conv_transpose", "avgpool"]


@st.composite
def expect_chains(draw):
    """Chains (some with a skip joined by add) of 1-D layers with unknown kernel, stride and padding, an
    `expect` at the end and sometimes in the middle: where the required sizes prune."""
    n = draw(st.integers(2, 6))
    lines = [f"input: {{shape: [1, 1, {draw(st.integers(3, 40))}]}}", "layers:"]
    for i in range(n):
        op = draw(st.sampled_from(OPS_OF_CHAINS))
        k, s_, p = (draw(st.integers(1, hi)) for hi in (4, 3, 2))
        params = [f"kernel: {{min: 1, max: {k}}}", f"stride: {{min: 1, max: {s_}}}", f"padding: {{min: 0, max: {p}}}"]
        if op.startswith("conv"):
            params.append("out_channels: 1")
        if draw(st.booleans()) or i == n - 1:
            params.append(f"expect: [1, 1, {draw(st.integers(1, 30))}]")
        lines.append(f"  - {{name: l{i}, op: {op}, {', '.join(params)}}}")
    if draw(st.booleans()):  # the last output added to a copy of itself through a same-size conv
        lines.append(f"  - {{name: same, op: conv, input: l{n - 1}, out_channels: 1, kernel: 1}}")
        lines.append(f"  - {{name: join, op: add, inputs: [l{n - 1}, same]}}")
    return "\n".join(lines) + "\n"


@settings(max_examples=150, deadline=None)
@given(text=expect_chains())
def test_descent_prunes_soundly_and_finds_the_first_plan_of_chains_with_expects(text):
    network = planner.loads(text, "chain.yaml")
    found = bounds.bound_pass(network, Deadline(None))
    assert found is not None
    engine = reach.build(network, Deadline(None))
    assert engine is not None
    every = list(itertools.islice(engine.plans(), 2000))
    if found.proof is not None:
        assert every == []
        return
    need = bounds.required(network, found, Deadline(None))
    for assignment in every:
        plan = planner.plan.compute_plan(network, assignment)
        for layer in plan.layers:
            for size, interval in zip(layer.output_shape, need.get(layer.name, ()), strict=False):
                assert interval is None or interval[0] <= size <= interval[1], (layer.name, size, interval)
    got = descent.descend(network, found, Deadline(None))
    assert got is not None  # short chains stay within the budget
    assert got.assignment == (engine.first() if every else None)


def test_descent_answers_a_200_layer_chain_within_its_budget():
    network = planner.loads(chain(200, 7, 4, 3, 4096, 64), "wide.yaml")
    found = bounds.bound_pass(network, Deadline(None))
    got = descent.descend(network, found, Deadline(None))
    assert got is not None and got.assignment is not None
    assert got.assignment == reach.build(network, Deadline(None)).first()


@settings(max_examples=40)
@given(spec=specs(max_assignments=120), data=st.data())
def test_z3_enumeration_finds_the_same_plans_as_the_pass(spec, data):
    network, _ = load(spec, data, 120)
    engine = reach.build(network, Deadline(None))
    by_z3 = _by_z3(network, None, True, False, None, Deadline(30))
    assert sorted(ordered(network, [p.assignment for p in by_z3.plans])) == ordered(network, engine.plans())


@settings(max_examples=200)
@given(
    i=st.integers(1, 40),
    k=st.integers(1, 7),
    s=st.integers(1, 4),
    pb=st.integers(0, 3),
    pe=st.integers(0, 3),
    d=st.integers(1, 3),
    a=st.integers(0, 3),
)
def test_array_arithmetic_agrees_with_int_arithmetic(i, k, s, pb, pe, d, a):
    """Each relation over a grid of arrays gives, cell by cell, what it gives over ints."""
    grid = np.array([[i, i + 1], [i + 5, max(1, i - 1)]], np.int64)

    def cells(f, *args):
        got = f(grid, *args)
        want = [[f(int(x), *args) for x in row] for row in grid]
        assert np.array_equal(np.asarray(got), np.array(want)), f.__name__

    cells(ar.conv_output, k, s, pb, pe, d)
    cells(ar.pool_output, k, s, pb, pe, d, True)
    cells(ar.pool_output, k, s, pb, pe, d, False)
    cells(ar.conv_transpose_output, k, s, pb, pe, d, a)
    cells(ar.same_padding_total, k, s, d)
    cells(ar.ceil_mode_extra_padding, k, s, pb, pe, d)
    cells(ar.kernel_fits, k, pb, pe, d)
    cells(lambda x: ar.select(x > 7, x - 7, x * 2))
    cells(lambda x: ar.all_of(x > 3, x % 2 == 0, True))
    cells(lambda x: ar.any_of(x > 30, x % 3 == 0))
    cells(lambda x: ar.negate(x > 9))
    cells(lambda x: ar.maximum(x - 10, 0))


def chain(layers: int, kernel: int, stride: int, padding: int, size: int, expect: int | None = None) -> str:
    lines = [
        f"input: {{shape: [1, 1, {size}]}}",
        f"defaults: {{kernel: {{min: 1, max: {kernel}}}, stride: {{min: 1, max: {stride}}}, "
        f"padding: {{min: 0, max: {padding}}}}}",
        "layers:",
    ]
    for n in range(layers):
        tail = f", expect: [1, 1, {expect}]" if expect is not None and n == layers - 1 else ""
        lines.append(f'  - {{name: c{n}, op: conv, out_channels: 1, kernel: "?", stride: "?", padding: "?"{tail}}}')
    return "\n".join(lines) + "\n"


def dp_count(layers, kernel, stride, padding, size, expect=None):
    """PyTorch's Conv1d arithmetic, written here: o = (i + 2p - k) // s + 1, valid when i + 2p >= k."""
    ways = {size: 1}
    for _ in range(layers):
        after = collections.Counter()
        for i, n in ways.items():
            for k, s, p in itertools.product(range(1, kernel + 1), range(1, stride + 1), range(padding + 1)):
                if i + 2 * p >= k:
                    after[(i + 2 * p - k) // s + 1] += n
        ways = after
    return sum(ways.values()) if expect is None else ways.get(expect, 0)


@pytest.mark.parametrize(
    "layers,kernel,stride,padding,size,expect",
    [(12, 5, 3, 2, 512, None), (12, 5, 3, 2, 512, 7), (40, 3, 2, 1, 64, 1), (6, 7, 4, 3, 4096, 64)],
)
def test_counts_of_long_chains_equal_a_dp_written_here(layers, kernel, stride, padding, size, expect):
    network = planner.loads(chain(layers, kernel, stride, padding, size, expect), "chain.yaml")
    want = dp_count(layers, kernel, stride, padding, size, expect)
    assert want > 2**64 or expect is not None  # beyond int64: the counts are exact Python ints
    assert planner.solve(network, count=True, verify=False).count == want


def test_bounds_prove_an_unreachable_size_at_once_and_name_the_layer():
    network = planner.loads(chain(200, 7, 4, 3, 4096, 5297), "grow.yaml")  # +6 per layer at most: 5296
    proof = bounds.unreachable(network, Deadline(None))
    assert proof is not None and (proof.node.name, proof.lower, proof.upper, proof.wanted) == ("c199", 1, 5296, 5297)
    result = planner.solve(network, verify=False, explain=False)
    assert result.status.value == "infeasible"
    assert "c199: whatever the unknowns, dim 2 of its output lies in 1..5296" in result.diagnostics[0].message
    assert bounds.unreachable(planner.loads(chain(200, 7, 4, 3, 4096, 5296), "g.yaml"), Deadline(None)) is None


def test_first_plan_of_a_200_layer_chain_is_the_lexicographically_smallest():
    network = planner.loads(chain(200, 3, 2, 1, 64, 1), "long.yaml")
    plan = planner.solve(network, verify=False).plans[0]
    # the smallest values first: kernel 1, stride 1, padding 0 keeps 64 until the last layers must shrink it
    values = list(plan.assignment.values())
    assert values[:3] == [1, 1, 0]
    assert plan.layers[-1].output_shape == (1, 1, 1)


SMALL = """
input: {shape: [1, 1, 9]}
defaults: {kernel: {min: 1, max: 4}, stride: {min: 1, max: 3}, padding: {min: 0, max: 1}}
layers:
  - {name: a, op: conv, out_channels: 1, kernel: "?", stride: "?", padding: "?"}
  - {name: b, op: conv, out_channels: 1, kernel: "?", stride: 2, expect: [1, 1, 2]}
"""


def test_samples_are_uniform_over_the_plans():
    """One plan per seed over many seeds: each plan about equally often (chi-square, df = plans - 1)."""
    network = planner.loads(SMALL, "small.yaml")
    every = [tuple(p.assignment.values()) for p in planner.solve(network, max_solutions=None, verify=False).plans]
    assert 8 <= len(every) <= 40
    draws = 100 * len(every)
    seen = collections.Counter(
        tuple(planner.solve(network, sample=1, seed=seed, verify=False).plans[0].assignment.values())
        for seed in range(draws)
    )
    assert set(seen) == set(every)
    chi2 = sum((seen[p] - 100) ** 2 / 100 for p in every)
    assert chi2 < 2.5 * len(every), (chi2, seen)  # far above the 0.1% quantile for these degrees of freedom


def test_a_sample_of_n_is_n_distinct_plans_and_the_seed_fixes_it():
    network = planner.loads(SMALL, "small.yaml")
    first = planner.solve(network, sample=5, seed=7, verify=False).plans
    assert len({tuple(p.assignment.values()) for p in first}) == 5
    again = planner.solve(network, sample=5, seed=7, verify=False).plans
    assert [p.assignment for p in first] == [p.assignment for p in again]
    count = planner.solve(network, count=True, verify=False).count
    assert len(planner.solve(network, sample=count + 10, verify=False).plans) == count


@pytest.mark.parametrize("kind", ["params", "flops", "kernel_sum"])
def test_best_plans_come_in_objective_then_lexicographic_order(kind):
    text = SMALL.replace("out_channels: 1", "out_channels: 3").replace("[1, 1, 2]", "[1, 3, 2]")
    network = planner.loads(text + f"objective: {{minimize: {kind}}}\n", "obj.yaml")
    every = planner.solve(network, max_solutions=None, verify=False).plans
    assert len(every) > 6
    valued = sorted((planner.objective.plan_value(network, p), tuple(p.assignment.values())) for p in every)
    best = planner.solve(network, max_solutions=6, verify=False).plans
    assert [(p.objective, tuple(p.assignment.values())) for p in best] == valued[:6]
    one = planner.solve(network, verify=False).plans[0]  # the forward pass alone: best value, smallest path
    assert (one.objective, tuple(one.assignment.values())) == valued[0]


DEGENERATE = """
input: {shape: [1, 1, 4]}
layers:
  - {name: up, op: conv_transpose, out_channels: 1, kernel: "?", stride: 2, padding: "?", output_padding: "?",
     expect: [1, 1, 8]}
"""


def test_degenerate_plans_come_last_and_are_flagged():
    result = planner.solve(planner.loads(DEGENERATE, "deg.yaml"), max_solutions=None, verify=False)
    kernels = [p.layers[0].params["kernel"][0] for p in result.plans]
    assert kernels[-1] == 1 and all(k >= 2 for k in kernels[:-1])
    assert [d.code for d in result.diagnostics] == ["degenerate"]
    assert result.diagnostics[0].severity == "warning"
    assert f"plan {len(kernels)}: up: kernel 1 is smaller than stride 2" in result.diagnostics[0].message
    first = planner.solve(planner.loads(DEGENERATE, "deg.yaml"), verify=False)
    assert first.diagnostics == [] and first.plans[0].layers[0].params["kernel"] == (2,)


def test_random_ranks_unrank_to_the_listed_plans():
    network = planner.loads(chain(4, 3, 2, 1, 20), "c.yaml")  # 20 586 plans
    engine = reach.build(network, Deadline(None))
    listed = list(engine.plans())
    for rank in [0, len(listed) - 1, *random.Random(1).sample(range(len(listed)), 30)]:
        assert engine.plan_at(rank) == listed[rank]


def test_largest_receptive_field_of_a_chain_equals_a_dp_over_size_and_jump():
    """The DP a user would write: per (size, jump), the largest field; the pass must find the same."""
    layers, size, target = 5, 200, 6
    best = {(size, 1): 1}
    for _ in range(layers):
        after: dict = {}
        for (i, j), r in best.items():
            for k, s, p in itertools.product(range(1, 6), range(1, 4), range(3)):
                if i + 2 * p >= k:
                    key, value = ((i + 2 * p - k) // s + 1, j * s), r + (k - 1) * j
                    after[key] = max(after.get(key, 0), value)
        best = after
    want = max(r for (o, _), r in best.items() if o == target)
    text = chain(layers, 5, 3, 2, size, target) + "objective: {maximize: receptive_field}\n"
    network = planner.loads(text, "rf.yaml")
    assert reach.build(network, Deadline(None), objective="receptive_field") is not None
    plans = planner.solve(network, max_solutions=3, verify=False).plans
    assert [p.objective for p in plans] == [want] * len(plans)


def test_minimal_unsat_subset_is_a_pure_function_over_literals():
    """x > 5, x < 3, y == 1, x == 4: the two bounds conflict; nothing else is needed for it."""
    import z3

    from planner.solver.explain import minimal_unsat_subset

    x, y = z3.Ints("x y")
    literals = [z3.Bool(n) for n in ("big", "small", "one", "four")]
    solver = z3.Solver()
    for literal, fact in zip(literals, (x > 5, x < 3, y == 1, x == 4), strict=True):
        solver.add(z3.Implies(literal, fact))
    core = minimal_unsat_subset(solver, literals, Deadline(10))
    assert [str(c) for c in core] in (["big", "small"], ["big", "four"], ["small", "four"])
    assert minimal_unsat_subset(solver, literals[2:3], Deadline(10)) == []


def test_samples_of_more_plans_than_an_int64_holds():
    network = planner.loads(chain(12, 7, 4, 3, 4096), "many.yaml")
    result = planner.solve(network, sample=3, seed=5, count=True, verify=False)
    assert result.count > 2**63
    assert len({tuple(p.assignment.values()) for p in result.plans}) == 3


@pytest.mark.parametrize("targets_per_state", [3, 40])  # many moves to one target (added as one), or few
def test_carry_sums_the_counts_of_the_moves_into_each_target_exactly(targets_per_state):
    rng = np.random.default_rng(targets_per_state)
    n_sources, n_targets = 60, 500
    counts = np.array([int(v) << 200 | int(v) for v in rng.integers(1, 2**62, n_sources)], dtype=object)
    source = np.repeat(np.arange(n_sources), 40)
    target = rng.integers(0, targets_per_state, len(source)) + source % (n_targets - targets_per_state)
    expected = [0] * n_targets
    for s, t in zip(source.tolist(), target.tolist(), strict=True):
        expected[t] += counts[s]
    assert states.carry(counts, source, target, n_targets).tolist() == expected


def walked(engine: reach.Reach) -> tuple:
    """What the plans' walks give: the first plans in order, a few by rank, the best by params."""
    listed = list(itertools.islice(engine.plans(), 200))
    count = engine.count()
    ranked = [engine.plan_at(r) for r in sorted({0, count // 3, count - 1})]
    return listed, count, ranked


@settings(max_examples=80)
@given(spec=specs(dialects=("pytorch", "onnx"), max_assignments=300), data=st.data())
def test_walks_over_the_kept_moves_equal_walks_that_evaluate_each_step_again(spec, data):
    network, _ = load(spec, data, 300)
    engines = {}
    budget = reach.MAX_ARRIVALS
    for limit in (budget, 0, 7):  # every step's moves kept, none, those of the first steps only
        reach.MAX_ARRIVALS = limit
        try:
            engines[limit] = (
                reach.build(network, Deadline(None)),
                reach.build(network, Deadline(None), objective="params"),
            )
        finally:
            reach.MAX_ARRIVALS = budget
    kept, best = engines[budget]
    if kept is None or not kept.feasible:
        return
    assert sum(s.arrivals is not None for s in kept.stages) == len(kept.stages) - 1  # all but the input's
    assert all(s.arrivals is None for s in engines[0][0].stages)
    for again, again_best in (engines[0], engines[7]):
        assert walked(again) == walked(kept)
        if best is not None:
            assert list(itertools.islice(again_best.best(5), 5)) == list(itertools.islice(best.best(5), 5))
