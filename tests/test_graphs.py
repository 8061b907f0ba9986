"""Graphs, constraints and for_all sizes: the solver against brute force, and the
explanations of infeasible encoder-decoder specs."""

from __future__ import annotations

import itertools
import re
from pathlib import Path

import pytest

import planner
from planner.errors import InfeasibleError, SpecError
from planner.plan import compute_plan
from planner.solver.search import sample_sizes

SPECS = Path(__file__).resolve().parent.parent / "specs"


def brute_force(network, sizes_sets=({},)):
    """Every assignment of the unknowns valid at every given for_all size set, by trying them all."""
    plans = []
    for values in itertools.product(*(u.domain.members() for u in network.unknowns)):
        assignment = dict(zip(network.unknowns, values, strict=True))
        try:
            for sizes in sizes_sets:
                compute_plan(network, {**assignment, **sizes})
        except InfeasibleError:
            continue
        plans.append({u.name: v for u, v in assignment.items()})
    return plans


def all_sizes(network):
    return [
        dict(zip(network.for_all, combo, strict=True))
        for combo in itertools.product(*(f.domain.members() for f in network.for_all))
    ]


def solved_assignments(network):
    result = planner.solve(network, max_solutions=None, count=True, verify=False)
    return result, [plan.assignment for plan in result.plans]


def same_set(a, b):
    key = lambda d: sorted(d.items())  # noqa: E731
    return sorted(map(key, a)) == sorted(map(key, b))


UNET_SMALL = """
input:
  shape: [1, 2, {size}, {size}]
defaults:
  kernel: {{min: 1, max: 4}}
  padding: {{min: 0, max: 2}}
  output_padding: {{min: 0, max: 1}}
layers:
  - {{name: enc1, op: conv, out_channels: 4, kernel: 3, padding: same}}
  - {{name: down1, op: maxpool, kernel: 2}}
  - {{name: enc2, op: conv, out_channels: 8, kernel: 3, padding: same}}
  - {{name: down2, op: maxpool, kernel: 2, ceil_mode: {ceil}}}
  - {{name: mid, op: conv, out_channels: 8, kernel: 3, padding: same}}
  - {{name: up2, op: conv_transpose, out_channels: 8, kernel: "?", stride: 2, padding: "?", output_padding: "?"}}
  - {{name: cat2, op: concat, inputs: [up2, enc2]}}
  - {{name: up1, op: conv_transpose, out_channels: 4, kernel: "$k1", stride: 2, padding: "?", output_padding: "$a1"}}
  - {{name: cat1, op: concat, inputs: [up1, enc1]}}
  - {{name: head, op: conv, out_channels: 1, kernel: 1}}
"""


@pytest.mark.parametrize(
    "size",
    [
        "12",
        "13",
        "{for_all: {min: 8, max: 40, multiple_of: 4}}",
        "{for_all: {min: 9, max: 30}}",
        "{for_all: {min: 16, max: 48, multiple_of: 8}}",
    ],
)
@pytest.mark.parametrize("ceil", ["false", "true"])
def test_encoder_decoder_plans_equal_brute_force(size, ceil):
    network = planner.loads(UNET_SMALL.format(size=size, ceil=ceil), "unet_small.yaml")
    result, found = solved_assignments(network)
    expected = brute_force(network, all_sizes(network) if network.for_all else ({},))
    assert same_set(found, expected)
    assert result.count == len(expected)
    assert result.status is (planner.Status.SOLVED if expected else planner.Status.INFEASIBLE)
    for plan in result.plans:
        assert plan.for_all == bool(network.for_all)
        check = planner.verify(plan, network=network)
        assert check.ok, check.mismatches
        if network.for_all:  # executed at the smallest, a middle and the largest size
            assert len(sample_sizes(network)) == 3 and "at input sizes" in check.how


CONSTRAINED = """
input:
  shape: [1, 1, 16, 16]
defaults:
  kernel: {min: 1, max: 5}
  stride: {min: 1, max: 3}
  padding: {min: 0, max: 2}
layers:
  - {name: enc, op: conv, out_channels: 2, kernel: "?", stride: "?", padding: "?"}
  - {name: dec, op: conv_transpose, out_channels: 1, kernel: "?", stride: "?", padding: same}
constraints:
  - "dec.kernel == enc.kernel and dec.stride == enc.stride"
  - "dec.shape[2] == input.shape[2] or enc.shape[3] % 4 == 0"
  - "not (enc.padding[0][1] + enc.kernel // 2 > 3)"
"""


def test_constraints_equal_brute_force():
    network = planner.loads(CONSTRAINED, "constrained.yaml")
    result, found = solved_assignments(network)
    expected = brute_force(network)
    assert expected and same_set(found, expected)
    for plan in found:
        assert plan["dec.kernel"] == plan["enc.kernel"] and plan["dec.stride"] == plan["enc.stride"]
    # the constraints really cut: without them there are more plans
    free = planner.loads(CONSTRAINED.split("constraints:")[0], "free.yaml")
    assert len(brute_force(free)) > len(expected)


@pytest.mark.parametrize(
    "text,code,fragment",
    [
        ("enc.kernel ** 2 == 4", "constraint", "not allowed"),
        ("__import__('os').system('true')", "constraint", "not allowed"),
        ("enc.kernel == nope.kernel", "unknown-layer", "no layer named 'nope'"),
        ("enc.bogus == 1", "constraint", "not something a constraint can use"),
        ("enc.kernel +", "constraint", "not a valid expression"),
        ("enc.kernel", "constraint", "must be a comparison"),
    ],
)
def test_bad_constraints_are_located(text, code, fragment):
    spec = CONSTRAINED.split("constraints:")[0] + f'constraints:\n  - "{text}"\n'
    with pytest.raises(SpecError) as e:
        planner.loads(spec, "bad.yaml")
    (d,) = e.value.diagnostics
    assert (d.file, d.line, d.column, d.code) == ("bad.yaml", 12, 5, code)
    assert fragment in d.message


def test_odd_unet_names_where_it_parts_and_sizes_that_work_really_solve():
    text = (SPECS / "unet_same.yaml").read_text()
    fixed = text.replace("{for_all: {min: 64, max: 1024, multiple_of: 32}}", "101")
    result = planner.solve(planner.loads(fixed, "unet101.yaml"), verify=False)
    assert result.status is planner.Status.INFEASIBLE
    error, note = result.diagnostics
    assert error.layer == "cat3" and error.code == "infeasible" and "'up3' gives 24, 'enc3' gives 25" in error.message
    assert note.severity == "note" and note.code == "sizes-that-work" and "near 101" in note.message
    sizes = [int(s) for s in re.search(r": ([\d, ]+);", note.message).group(1).split(", ")]
    assert len(sizes) >= 4
    for size in range(min(sizes), max(sizes) + 1):  # each solves, and the list holds every one between them
        variant = planner.loads(text.replace("{for_all: {min: 64, max: 1024, multiple_of: 32}}", str(size)), "v.yaml")
        solved = planner.solve(variant, verify=False, explain=False).status is planner.Status.SOLVED
        assert solved == (size in sizes), size


def test_for_all_failure_says_which_sizes_break_where():
    # 8 and 10 each have decoders, but 8 -> 4 -> 2 needs up2 to double 2, while 10 -> 5 -> 2 needs 2 -> 5
    spec = UNET_SMALL.format(size="{for_all: {min: 8, max: 10, multiple_of: 2}}", ceil="false")
    result = planner.solve(planner.loads(spec, "unet_small.yaml"), verify=False)
    assert result.status is planner.Status.INFEASIBLE
    (d,) = result.diagnostics
    assert d.code == "for-all" and d.layer == "cat2" and (d.line, d.column) == (3, 17)
    assert re.search(
        r"the plan for input size (8x8|10x10) \(.*\) breaks at (10x10|8x8): cat2: spatial sizes differ", d.message
    )


def test_unet_same_finds_every_decoder_for_all_multiples_of_32():
    network = planner.load(SPECS / "unet_same.yaml")
    result, found = solved_assignments(network)
    # k - 2p + a = 2 for a stride-2 up-convolution to double a size, with p <= k - 1
    expected = [
        {"$k": k, "$p": p, "$a": a}
        for k in range(1, 8)
        for p in range(0, 4)
        for a in (0, 1)
        if k - 2 * p + a == 2 and p <= k - 1
    ]
    assert same_set(found, expected) and result.count == len(expected) == 7


def test_crop_like_centre_crops_as_the_original_unet():
    plan = planner.solve(SPECS / "unet_original.yaml").plans[0]
    assert plan.assignment == {"$up_kernel": 2, "$up_stride": 2}
    assert plan.layer("skip1").params == {"size": (392, 392), "offset": (88, 88)}
    assert plan.layer("segmentation").output_shape == (1, 2, 388, 388)


@pytest.mark.parametrize(
    "layers,code,line",
    [
        (
            "  - {name: a, op: conv, out_channels: 2, kernel: 1}\n  - {name: b, op: concat, inputs: [a, c]}\n",
            "unknown-layer",
            5,
        ),
        ("  - {name: a, op: conv, out_channels: 2, kernel: 1, input: b}\n  - {name: b, op: relu}\n", "order", 4),
        ("  - {name: a, op: conv, out_channels: 2, kernel: 1, input: a}\n", "cycle", 4),
        ("  - {name: a, op: flatten}\n  - {name: b, op: concat, inputs: [a, input]}\n", "rank", 5),
        (
            "  - {name: a, op: conv, out_channels: 2, kernel: 3}\n  - {name: b, op: add, inputs: [a, input]}\n",
            "mismatch",
            5,
        ),
    ],
)
def test_graph_errors_are_located(layers, code, line):
    spec = "input:\n  shape: [1, 1, 8, 8]\nlayers:\n" + layers
    try:
        diagnostics = planner.solve(planner.loads(spec, "g.yaml"), verify=False).diagnostics
    except SpecError as e:
        diagnostics = e.diagnostics
    assert any(d.code == code and d.line == line for d in diagnostics), diagnostics
