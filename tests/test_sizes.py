"""`planner sizes`: the closed form against the Z3 encoding size by size (an engine apart from the
reachable-state pass that finds the sizes), on the example specs and on random chains."""

from __future__ import annotations

import dataclasses
import json
import random

import pytest
import z3
from hypothesis import given, settings

import planner
from planner.deadline import Deadline
from planner.domains import Domain, Unknown
from planner.sizes import _with_size, accepted_sizes, closed_form
from planner.solver.encode import encode, new_solver
from tests.conftest import EXAMPLES, run
from tests.random_specs import spec_text, specs

TOP = 2000


def z3_accepts(network, axes, sizes):
    """Per size: does some plan exist with these input axes at it? (the Z3 encoding, size by size)"""
    size = Unknown(f"input.shape[{axes[0]}]", "size", Domain(1, max(sizes)), ("input", "shape", axes[0]))
    enc = encode(_with_size(network, axes, size))
    solver = new_solver(enc.all_constraints(), enc.ctx)
    return {i: solver.check(enc.var(size) == i) == z3.sat for i in sizes}


def probe_sizes(form_top: int, seed: int) -> list[int]:
    rng = random.Random(seed)
    return sorted({*range(1, 130), *rng.sample(range(130, form_top + 1), 100), form_top})


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_closed_form_of_every_example_agrees_with_z3_size_by_size(path):
    network = planner.load(path)
    answer = accepted_sizes(network, TOP, Deadline(120))
    for group in answer.groups:
        sizes = probe_sizes(TOP, 0)
        truth = z3_accepts(network, group.axes, sizes)
        assert {i for i in sizes if group.form.accepts(i)} == {i for i, ok in truth.items() if ok}, group.form.text


UNET = """
input: {shape: [1, 1, "?"]}
layers:
  - {name: e1, op: conv, out_channels: 2, kernel: 3, padding: 1}
  - {name: d1, op: maxpool, kernel: 2}
  - {name: e2, op: conv, out_channels: 2, kernel: 3, padding: 1}
  - {name: d2, op: maxpool, kernel: 2}
  - {name: u2, op: conv_transpose, out_channels: 2, kernel: 2, stride: 2}
  - {name: c2, op: concat, inputs: [u2, e2]}
  - {name: u1, op: conv_transpose, out_channels: 2, kernel: 2, stride: 2}
  - {name: c1, op: concat, inputs: [u1, e1]}
"""


def test_a_unet_takes_multiples_of_four_proven_by_z3():
    answer = accepted_sizes(planner.loads(UNET, "u.yaml"), 400, Deadline(60))
    (group,) = answer.groups
    assert (group.form.start, group.form.period, group.form.residues, group.form.max) == (1, 4, (0,), None)
    assert group.proof == "z3" and group.form.text == "4k, k >= 1"
    assert group.fixes == {"torch_export": '_h = Dim("_h", min=1); h = 4 * _h', "monai": "DivisiblePad(k=4)"}


@settings(max_examples=25, deadline=None)
@given(spec=specs(max_assignments=60))
def test_closed_form_of_random_chains_agrees_with_z3(spec):
    spec = {**spec, "input": {"shape": [1, spec["input"]["shape"][1], *(["?"] * (len(spec["input"]["shape"]) - 2))]}}
    network = planner.loads(spec_text(spec), "random.yaml")
    answer = accepted_sizes(network, 120, Deadline(60))
    for group in answer.groups:
        truth = z3_accepts(network, group.axes, list(range(1, 121)))
        assert {i for i in range(1, 121) if group.form.accepts(i)} == {i for i, ok in truth.items() if ok}


@pytest.mark.parametrize(
    "accepted,text",
    [
        ([i >= 39 for i in range(200)], "every size from 39"),
        ([i % 8 == 0 and i > 0 for i in range(200)], "8k, k >= 1"),
        ([i % 16 == 12 and i >= 188 for i in range(400)], "16k + 12, k >= 11"),
        ([i in (3, 5) or (i >= 20 and i % 2 == 0) for i in range(200)], "3, 5, then 2k, k >= 10"),
        ([i in (24, 25, 26, 40) for i in range(200)], "24..26, 40"),
    ],
)
def test_closed_form_reads_as_a_person_would_write_it(accepted, text):
    form = closed_form(accepted)
    assert form.text.replace(" (up to 199)", "").replace(" (up to 399)", "") == text
    assert all(form.accepts(i) == accepted[i] for i in range(1, len(accepted)))


def test_cli_sizes_text_and_json(tmp_path):
    path = tmp_path / "u.yaml"
    path.write_text(UNET)
    code, out, err = run("sizes", str(path), "--max", "200")
    assert code == 0 and err == ""
    assert "axis 2: 4k, k >= 1  [proven for every size (Z3)]" in out
    assert 'torch.export: _h = Dim("_h", min=1); h = 4 * _h' in out
    code, out, _ = run("sizes", str(path), "--max", "200", "--format", "json")
    (axis,) = json.loads(out)["axes"]
    assert {k: axis[k] for k in ("axis", "below", "start", "period", "residues", "max")} == {
        "axis": [2],
        "below": [],
        "start": 1,
        "period": 4,
        "residues": [0],
        "max": None,
    }


def test_cli_sizes_of_an_invalid_spec_is_located(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("input: {shape: [1, 1, 8]}\nlayers:\n  - {op: conv, kernal: 3, out_channels: 1}\n")
    code, out, err = run("sizes", str(path))
    assert code == 1 and out == "" and f"{path}:3:" in err and "Traceback" not in err


def test_spec_size_not_accepted_gets_the_nearest_padded_size():
    network = planner.loads(UNET.replace('"?"', "101"), "u.yaml")
    (group,) = accepted_sizes(network, 400, Deadline(60)).groups
    assert group.fixes["pad_to"] == "104"
    assert dataclasses.asdict(group.form)["period"] == 4
