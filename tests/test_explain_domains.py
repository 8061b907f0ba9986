"""Infeasibility that names its cause: a needed value outside its domain is named with where the
domain comes from (built-in defaults, `defaults:`, `variables:`, the layer's own range) and how to
widen it; and the widened spec, solved, has a plan with that value."""

from __future__ import annotations

import pytest

import planner
from planner.solver.solve import Status

NINE = """\
input: {{shape: [1, 3, 32, 32]}}
{extra}layers:
  - {{name: enc1, op: conv, out_channels: 8, kernel: 9, padding: {padding}, expect: [1, 8, 32, 32]}}
"""


def notes(text: str) -> list[planner.Diagnostic]:
    result = planner.solve(planner.loads(text, "s.yaml"), verify=False)
    assert result.status is Status.INFEASIBLE
    return [d for d in result.diagnostics if d.code == "domain"]


def solves_with(text: str, unknown: str, value: int) -> bool:
    result = planner.solve(planner.loads(text, "s.yaml"), verify=False)
    return result.status is Status.SOLVED and result.plans[0].assignment[unknown] == value


def test_a_same_nine_by_nine_names_the_built_in_padding_domain() -> None:
    [note] = notes(NINE.format(extra="", padding='"?"'))
    assert note.severity == "note" and (note.line, note.column) == (3, 65) and note.layer == "enc1"
    assert note.message == (
        'a plan exists with enc1.padding = 4, outside the domain: "?" takes the built-in '
        "padding domain 0..3; widen it with defaults: {padding: {min: 0, max: 4}}"
    )
    assert solves_with(NINE.format(extra="defaults: {padding: {min: 0, max: 4}}\n", padding='"?"'), "enc1.padding", 4)


def test_a_domain_from_defaults_is_located_there() -> None:
    [note] = notes(NINE.format(extra="defaults:\n  padding: {min: 0, max: 2}\n", padding='"?"'))
    assert (note.line, note.column) == (3, 12)
    assert "defaults.padding allows 0..2; widen it with defaults: {padding: {min: 0, max: 4}}" in note.message


def test_a_variable_domain_is_located_at_the_variable() -> None:
    [note] = notes(NINE.format(extra="variables:\n  p: {one_of: [0, 1, 2]}\n", padding='"$p"'))
    assert (note.line, note.column) == (3, 6) and note.layer is None
    assert "$p = 4" in note.message and "variables.p allows {0, 1, 2}" in note.message
    assert solves_with(NINE.format(extra="variables:\n  p: {min: 0, max: 4}\n", padding='"$p"'), "$p", 4)


def test_a_layer_range_is_located_at_the_layer() -> None:
    [note] = notes(NINE.format(extra="", padding="{min: 0, max: 1}"))
    assert (note.line, note.column) == (3, 65)
    assert note.message.endswith("its domain is 0..1; widen it with {min: 0, max: 4} there")


def test_two_domains_that_only_grow_together_are_both_named() -> None:
    text = """\
input: {shape: [1, 3, 32, 32]}
variables: {p: {min: 0, max: 1}}
defaults: {padding: {min: 0, max: 1}}
layers:
  - {name: enc1, op: conv, out_channels: 8, kernel: 3, padding: "$p", expect: [1, 8, 34, 34]}
  - {name: enc2, op: conv, out_channels: 8, kernel: 5, padding: "?", expect: [1, 8, 34, 34]}
"""
    found = notes(text)
    assert [n.line for n in found] == [2, 3]
    assert all("no single one suffices" in n.message for n in found)
    widened = text.replace("{p: {min: 0, max: 1}}", "{p: {min: 0, max: 2}}").replace(
        "{padding: {min: 0, max: 1}}", "{padding: {min: 0, max: 2}}"
    )
    assert planner.solve(planner.loads(widened, "w.yaml"), verify=False).status is Status.SOLVED


@pytest.mark.parametrize(
    "text",
    [
        NINE.format(extra="", padding="4").replace("32, 32]}\n", "30, 30]}\n", 1),  # no unknowns at all
        NINE.format(extra="", padding='"?"')
        .replace("kernel: 9", "kernel: 9, stride: 2")
        .replace("[1, 8, 32, 32]", "[1, 8, 33, 33]"),  # no padding makes it: the output cannot grow past the input
    ],
)
def test_no_domain_note_when_no_widening_helps(text: str) -> None:
    assert notes(text) == []


@pytest.mark.parametrize(
    "shape,hint",
    [
        ("[3, 224, 224]", "add the batch axis: [1, 3, 224, 224]"),
        ("[224, 224, 3]", "written channels-last, write [1, 3, 224, 224]"),
        ("[1, 64, 100]", None),  # a 1-D signal, as written
        ("[1, 3, 224, 224]", None),
    ],
)
def test_an_input_shape_that_looks_like_a_forgotten_batch_axis_is_warned(shape: str, hint: str | None) -> None:
    text = f"input: {{shape: {shape}}}\nlayers:\n  - {{op: relu}}\n"
    result = planner.solve(planner.loads(text, "r.yaml"), verify=False)
    warnings = [d for d in result.diagnostics if d.code == "input-rank"]
    assert result.status is Status.SOLVED
    if hint is None:
        assert warnings == []
    else:
        [warning] = warnings
        assert warning.severity == "warning" and (warning.line, warning.column) == (1, 16)
        assert warning.message.endswith(hint), warning.message


SAME_STRIDED = """
input: {shape: [1, 3, 32, 32]}
layers:
  - {name: a, op: conv, out_channels: 4, kernel: 3, stride: 2, padding: same}
  - {name: b, op: conv, out_channels: 4, kernel: 3, stride: "?", padding: same}
  - {name: c, op: conv, out_channels: 4, kernel: "?", stride: 2, padding: same}
"""


def test_every_padding_same_layer_with_a_stride_is_reported_at_once():
    result = planner.solve(planner.loads(SAME_STRIDED, "same.yaml"), verify=False)
    named = [d.layer for d in result.diagnostics if "padding 'same' needs stride 1" in d.message]
    assert named == ["a", "c"]  # b can take stride 1


def test_a_shared_unknown_that_needs_two_values_suggests_one_per_axis():
    text = (
        "input: {shape: [1, 1, 8, 12]}\nlayers:\n"
        '  - {name: c1, op: conv, out_channels: 2, kernel: "?", expect: [1, 2, 6, 8]}\n'
    )
    result = planner.solve(planner.loads(text, "axes.yaml"), verify=False)
    assert result.status is Status.INFEASIBLE
    (note,) = [d for d in result.diagnostics if d.code == "per-axis"]
    assert note.message == (
        'c1: its kernel is one "?" for all 2 axes, but a plan needs 3 and 5 on them; '
        'write kernel: ["?", "?"] for one unknown per axis'
    )
    fixed = text.replace('kernel: "?"', 'kernel: ["?", "?"]')
    assert planner.solve(planner.loads(fixed, "axes.yaml"), verify=False).status is Status.SOLVED
