"""`split`: torch.split / torch.chunk with one output per piece, read as `name[i]`; `reshape` of the
spatial axes (batch and channels kept).

PyTorch is the oracle: the pieces torch cuts (shapes), the exported module's output, and the executor's
pieces compared value by value; Z3 and the reachable-state pass must agree on the plans."""

from __future__ import annotations

import importlib.util
import itertools
from pathlib import Path

import numpy as np
import pytest

import planner
from planner.deadline import Deadline
from planner.errors import SpecError
from planner.executor.run import LAYERS
from planner.export import export_pytorch
from planner.solver.solve import _by_z3

SPLIT = """
input: {shape: [1, 12, 16, 16]}
layers:
  - {name: s, op: split, sizes: [4, 8]}
  - {name: a, op: conv, input: "s[0]", out_channels: 8, kernel: 3, stride: ["?", 1], padding: 1}
  - {name: b, op: conv, input: "s[1]", out_channels: 4, kernel: "?", padding: 1}
  - {name: c, op: split, chunks: 2, input: b, axis: 2}
  - {name: d, op: concat, inputs: ["c[0]", "c[1]"]}
  - {name: e, op: add, inputs: [d, a], expect: [1, 8, 8, 16]}
"""


def test_pieces_are_read_by_index_and_solve():
    result = planner.solve(planner.loads(SPLIT, "split.yaml"), max_solutions=None, count=True)
    assert result.status.value == "solved" and result.count == 1
    plan = result.plans[0]
    assert plan.verified
    assert plan.assignment == {"a.stride[0]": 2, "b.kernel": 3}
    assert plan.layer("s").params["sizes"] == (4, 8) and plan.layer("c").params["sizes"] == (8, 8)
    assert plan.layer("d").inputs == ("c[0]", "c[1]")


def test_z3_finds_the_same_plans_as_the_pass():
    network = planner.loads(SPLIT.replace('kernel: "?", padding: 1', 'kernel: "?", padding: "?"'), "s.yaml")
    by_pass = planner.solve(network, max_solutions=None, verify=False).plans
    by_z3 = _by_z3(network, None, True, False, None, Deadline(60)).plans
    assert sorted(tuple(p.assignment.values()) for p in by_z3) == [tuple(p.assignment.values()) for p in by_pass]
    assert len(by_pass) > 1


@pytest.mark.parametrize(
    "cut,size",
    [({"sizes": [3, 5]}, 8), ({"chunks": 2}, 7), ({"chunks": 3}, 9), ({"chunks": 4}, 10), ({"sizes": [1, 1, 6]}, 8)],
)
def test_the_planned_pieces_are_those_torch_cuts(cut, size):
    torch = pytest.importorskip("torch")
    x = torch.randn(1, 2, size)
    want = torch.chunk(x, cut["chunks"], dim=2) if "chunks" in cut else torch.split(x, cut["sizes"], dim=2)
    count = len(want)
    pieces = ", ".join(f"{{name: p{i}, op: identity, input: 's[{i}]'}}" for i in range(count))
    cut_text = ", ".join(f"{k}: {v}" for k, v in cut.items())
    text = f"input: {{shape: [1, 2, {size}]}}\nlayers:\n  - {{name: s, op: split, axis: 2, {cut_text}}}\n  - {pieces}\n"
    text = text.replace("}, {", "}\n  - {")
    if "chunks" in cut and count < cut["chunks"]:  # torch returns fewer chunks: planner refuses the spec
        result = planner.solve(planner.loads(text, "s.yaml"), verify=False)
        assert result.status.value == "infeasible"
        assert "makes fewer than" in result.diagnostics[0].message
        return
    plan = planner.solve(planner.loads(text, "s.yaml")).plans[0]
    assert [plan.layer(f"p{i}").output_shape for i in range(count)] == [tuple(t.shape) for t in want]
    layer = plan.layer("s")
    ours = LAYERS["split"](layer, [x.numpy()], None, np.float32)
    for got, expected in zip(ours, want, strict=True):
        np.testing.assert_array_equal(got, expected.numpy())


def test_the_exported_module_splits_as_planned(tmp_path: Path):
    torch = pytest.importorskip("torch")
    result = planner.solve(planner.loads(SPLIT, "split.yaml"))
    source = export_pytorch(result.network, result.plans[0])
    path = tmp_path / "net.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("net", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert tuple(module.Net()(torch.randn(1, 12, 16, 16)).shape) == (1, 8, 8, 16)


@pytest.mark.parametrize(
    "reads,message",
    [
        ('"s"', "split 's' has 2 outputs: read one of them, s[0] to s[1]"),
        ('"s[2]"', "split 's' has 2 outputs, s[0] to s[1]; there is no s[2]"),
        ('"a[0]"', "'a' is not a split: it has one output, read as 'a'"),
    ],
)
def test_reading_a_split_needs_one_of_its_pieces(reads, message):
    text = SPLIT.replace('input: "s[1]"', f"input: {reads}")
    with pytest.raises(SpecError) as e:
        planner.loads(text, "bad.yaml")
    assert [d.message for d in e.value.diagnostics if d.code == "split-output"] == [message]


def test_split_sizes_must_add_up_to_the_axis():
    result = planner.solve(planner.loads(SPLIT.replace("sizes: [4, 8]", "sizes: [4, 7]"), "s.yaml"), verify=False)
    assert result.status.value == "infeasible"
    assert any("the split sizes add up to 11, but axis 1 has 12" in d.message for d in result.diagnostics)


def test_a_split_of_the_pieces_of_every_for_all_size():
    text = """
input: {shape: [1, 4, {for_all: {min: 8, max: 32, multiple_of: 4}}]}
layers:
  - {name: s, op: split, chunks: 2, axis: 2}
  - {name: a, op: conv, input: "s[0]", out_channels: 4, kernel: "?", padding: "?"}
  - {name: j, op: concat, inputs: [a, "s[1]"]}
"""
    plans = planner.solve(planner.loads(text, "f.yaml"), max_solutions=None, verify=False).plans
    assert plans and all(p.for_all for p in plans)
    for plan in plans:  # the conv must keep the half size for every size of the set
        k = plan.layer("a").params["kernel"][0]
        assert all(pb + pe == k - 1 for pb, pe in plan.layer("a").params["padding"])
    assert len(plans) == len([k for k, p in itertools.product(range(1, 8), range(4)) if 2 * p == k - 1])


@pytest.mark.parametrize("target", [[-1], [4, -1], [2, 2, -1], [64], [8, 8]])
def test_a_reshape_of_the_spatial_axes_is_torchs(target):
    torch = pytest.importorskip("torch")
    text = f"input: {{shape: [1, 3, 4, 16]}}\nlayers:\n  - {{name: r, op: reshape, shape: {target}}}\n"
    plan = planner.solve(planner.loads(text, "r.yaml")).plans[0]
    x = torch.randn(1, 3, 4, 16)
    want = x.reshape(1, 3, *target)
    assert plan.layer("r").output_shape == tuple(want.shape)
    ours = LAYERS["reshape"](plan.layer("r"), [x.numpy()], None, np.float32)
    np.testing.assert_array_equal(ours, want.numpy())


def test_a_reshape_that_cannot_hold_the_elements_is_infeasible_and_rank_follows_it():
    bad = "input: {shape: [1, 3, 4, 16]}\nlayers:\n  - {name: r, op: reshape, shape: [5, -1]}\n"
    result = planner.solve(planner.loads(bad, "r.yaml"), verify=False)
    assert result.status.value == "infeasible"
    assert "r: 64 spatial elements are no multiple of 5" in result.diagnostics[0].message
    text = (
        "input: {shape: [1, 3, 8, 8]}\nlayers:\n  - {name: r, op: reshape, shape: [-1]}\n"
        '  - {name: c, op: conv, out_channels: 2, kernel: "?", stride: 2, expect: [1, 2, 31]}\n'
    )
    plan = planner.solve(planner.loads(text, "r.yaml")).plans[0]  # kernel "?" is one axis after the reshape
    assert plan.layer("c").params["kernel"] == (3,) and plan.verified


def test_pieces_are_read_inside_blocks_by_the_names_of_each_copy():
    text = """
input: {shape: [1, 8, 8, 8]}
blocks:
  unit:
    layers:
      - {name: s, op: split, chunks: 2}
      - {name: c, op: conv, input: "s[1]", out_channels: 4, kernel: 3, padding: 1}
      - {name: j, op: concat, inputs: ["s[0]", c]}
layers:
  - {block: unit, name: u, repeat: 2}
"""
    plan = planner.solve(planner.loads(text, "b.yaml")).plans[0]
    assert plan.layer("u_1_c").inputs == ("u_1_s[1]",) and plan.layer("u_1_j").inputs == ("u_1_s[0]", "u_1_c")
    assert plan.verified
