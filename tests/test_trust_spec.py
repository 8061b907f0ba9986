"""What a spec may say, and the located error for what it may not: bounded constraint
expressions, division by zero, negative indices, did-you-mean hints that help, non-finite
floats, and integers or tensors beyond int64.

Every case runs `planner` through `planner.cli.main` (or as `python -m planner` where the
input could take the interpreter down) and checks the exit status, the exact
`FILE:LINE:COL` and code of the diagnostic, and that no traceback is printed.
"""

from __future__ import annotations

import io
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import planner
from planner.cli import main
from planner.constraints import MAX_DEPTH, MAX_LENGTH

ROOT = Path(__file__).resolve().parent.parent
INT64_MAX = 2**63 - 1
DIAGNOSTIC = re.compile(
    r"^(?P<file>.+?):(?P<line>\d+):(?P<col>\d+): (?P<sev>error|note|warning): "
    r"(?P<message>.*) \[(?P<code>[a-z0-9-]+)\]$"
)
NET = """\
input:
  shape: [1, 3, 32, 32]
layers:
  - {name: c1, op: conv, out_channels: 8, kernel: "?"}
"""


def with_constraint(text: str, net: str = NET) -> str:
    return net + "constraints:\n  - " + _quoted(text) + "\n"


def _quoted(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def at(spec: str, needle: str, nth: int = 0) -> tuple[int, int]:
    """The 1-based line and column where `needle` starts (its nth occurrence)."""
    index = -1
    for _ in range(nth + 1):
        index = spec.index(needle, index + 1)
    before = spec[:index].split("\n")
    return len(before), len(before[-1]) + 1


def solve_cli(tmp_path: Path, spec: str, *args: str, name: str = "spec.yaml") -> tuple[int, str, Path]:
    path = tmp_path / name
    path.write_text(spec, encoding="utf-8")
    out, err = io.StringIO(), io.StringIO()
    code = main(["solve", str(path), "--timeout", "10", *args], stdout=out, stderr=err)
    return code, out.getvalue() + err.getvalue(), path


def solve_process(tmp_path: Path, spec: str, *args: str) -> tuple[int, str, Path]:
    path = tmp_path / "spec.yaml"
    path.write_text(spec, encoding="utf-8")
    proc = subprocess.run(
        [sys.executable, "-m", "planner", "solve", str(path), "--timeout", "10", *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    return proc.returncode, proc.stdout + proc.stderr, path


def no_traceback(text: str) -> None:
    assert "Traceback" not in text and 'File "' not in text and "internal error" not in text, text


def errors(text: str, path: Path) -> list[re.Match]:
    found = [DIAGNOSTIC.match(line) for line in text.splitlines()]
    return [m for m in found if m and m["file"] == str(path) and m["sev"] == "error"]


def located_error(result: tuple[int, str, Path], where: tuple[int, int], code: str) -> re.Match:
    """Exit 1 with an error `FILE:LINE:COL: error: ... [code]` at `where`; returns it."""
    status, text, path = result
    no_traceback(text)
    assert status == 1, text
    matches = [m for m in errors(text, path) if (int(m["line"]), int(m["col"])) == where and m["code"] == code]
    assert matches, f"no error [{code}] at {where[0]}:{where[1]}:\n{text}"
    return matches[0]


def solved(result: tuple[int, str, Path]) -> str:
    status, text, path = result
    no_traceback(text)
    assert status == 0, text
    assert not errors(text, path), text
    return text


# --- constraint expressions are bounded ------------------------------------------------------

DEEP = {
    "nots": "not " * (MAX_DEPTH + 20) + "c1.kernel == 3",
    "brackets": "(" * (MAX_DEPTH + 20) + "c1.kernel" + ")" * (MAX_DEPTH + 20) + " == 3",
    "signs": "-" * (MAX_DEPTH + 20) + "c1.kernel == 3",
    "sum": " + ".join(["1"] * (MAX_DEPTH + 20)) + " == c1.kernel",
    "nots_and_signs": "not " * 60 + "- " * 60 + "c1.kernel == 3",  # neither count alone is too deep
}


@pytest.mark.parametrize("name", DEEP)
def test_a_constraint_nested_too_deep_is_a_located_error(tmp_path: Path, name: str) -> None:
    spec = with_constraint(DEEP[name])
    m = located_error(solve_cli(tmp_path, spec), at(spec, '"', 2), "constraint")
    assert f"nests more than {MAX_DEPTH} levels" in m["message"]
    assert len(m.group(0)) < 300, "the constraint is not echoed in full"


def test_5000_nots_and_a_megabyte_sum_are_located_errors_not_crashes(tmp_path: Path) -> None:
    for text in ("not " * 5000 + "c1.kernel == 3", " + ".join(["c1.kernel"] * 80_000) + " > 0"):
        spec = with_constraint(text)
        m = located_error(solve_process(tmp_path, spec), (6, 5), "constraint")
        assert f"the limit is {MAX_LENGTH}" in m["message"]
        assert len(m.group(0)) < 300, "the constraint is not echoed in full"


def test_a_constraint_within_the_limits_still_solves(tmp_path: Path) -> None:
    text = "not " * (MAX_DEPTH // 2 | 1) + "c1.kernel != 3"  # an odd number of nots
    assert "c1.kernel=3" in solved(solve_cli(tmp_path, with_constraint(text)))
    sum_of_kernels = " + ".join(["c1.kernel"] * 40) + " == 200"  # 40 terms, 490 characters
    assert "c1.kernel=5" in solved(solve_cli(tmp_path, with_constraint(sum_of_kernels)))


@pytest.mark.parametrize(
    "text",
    ["c1.kernel // 0 == 1", "c1.kernel % 0 == 1", "c1.kernel // (2 - 2) == 1", "c1.kernel == 3 or 5 % (3 * 0) == 1"],
)
def test_a_literal_zero_divisor_is_a_located_error(tmp_path: Path, text: str) -> None:
    spec = with_constraint(text)
    m = located_error(solve_cli(tmp_path, spec), (6, 5), "constraint")
    assert "divides by zero" in m["message"]


def test_a_divisor_that_can_be_zero_makes_the_constraint_false(tmp_path: Path) -> None:
    # the only kernel that satisfies the left side divides by zero on the right: no plan, never "gave up"
    status, text, _ = solve_cli(tmp_path, with_constraint("c1.kernel == 3 and 7 // (c1.kernel - 3) == 0"))
    no_traceback(text)
    assert status == 1 and "infeasible" in text and "gave up" not in text, text
    status, text, _ = solve_cli(tmp_path, with_constraint("c1.shape[2] % (c1.kernel - 3) == 0 and c1.kernel < 4"))
    no_traceback(text)
    assert status == 0 and "c1.kernel=3" not in text, text


def test_and_or_and_chained_comparisons_short_circuit_as_in_python(tmp_path: Path) -> None:
    assert "c1.kernel=3" in solved(solve_cli(tmp_path, with_constraint("c1.kernel == 3 or 7 // (c1.kernel - 3) > 99")))
    assert "c1.kernel=3" in solved(
        solve_cli(tmp_path, with_constraint("c1.kernel != 3 and 7 // (c1.kernel - 3) > 99 or c1.kernel == 3"))
    )
    # k > 3 is false for k = 3, so 7 // (k - 3) is never evaluated
    assert "c1.kernel=3" in solved(
        solve_cli(tmp_path, with_constraint("c1.kernel == 3 and not (c1.kernel > 3 > 7 // (c1.kernel - 3))"))
    )


def test_floor_division_and_modulo_are_pythons_for_every_sign() -> None:
    text = "(c1.kernel * 5 - 17) % (c1.kernel - 4) == 1 or (0 - 13) // (c1.kernel - 4) < -3"

    def holds(k: int) -> bool:
        return k != 4 and ((k * 5 - 17) % (k - 4) == 1 or -13 // (k - 4) < -3)

    network = planner.loads(with_constraint(text, NET.replace('"?"', "{min: 1, max: 7}")), "div.yaml")
    result = planner.solve(network, max_solutions=None, verify=False)
    found = sorted(plan.assignment["c1.kernel"] for plan in result.plans)
    assert found == [k for k in range(1, 8) if holds(k)]


def test_a_negative_index_counts_from_the_end_as_in_python(tmp_path: Path) -> None:
    text = (
        "c1.shape[-1] == c1.shape[3] and input.shape[-2] == 32 and c1.kernel[-1] == c1.kernel[1]"
        " and c1.padding[-1][-1] == 0 and c1.shape[-1] == 28"
    )
    assert "c1.kernel=5" in solved(solve_cli(tmp_path, with_constraint(text)))


def test_a_negative_index_out_of_range_is_a_located_error(tmp_path: Path) -> None:
    m = located_error(solve_cli(tmp_path, with_constraint("c1.shape[-5] == 1")), (6, 5), "constraint")
    assert "out of range" in m["message"]


def test_big_int_literals_in_constraints_get_a_clean_answer(tmp_path: Path) -> None:
    m = located_error(solve_cli(tmp_path, with_constraint("c1.kernel < " + "9" * 10_000)), (6, 5), "constraint")
    assert f"the limit is {MAX_LENGTH}" in m["message"]
    m = located_error(solve_cli(tmp_path, with_constraint("c1.kernel < " + "9" * 30)), (6, 5), "size-range")
    assert "int64" in m["message"]
    m = located_error(solve_cli(tmp_path, with_constraint("c1.kernel < 10**100")), (6, 5), "constraint")
    assert "not allowed" in m["message"]
    assert "c1.kernel=7" in solved(solve_cli(tmp_path, with_constraint(f"c1.kernel < {INT64_MAX}")))


def test_a_number_where_a_comparison_belongs_is_a_located_error(tmp_path: Path) -> None:
    for text in ("c1.kernel and c1.kernel == 3", "(c1.kernel < 3) + 1 == 2", "not c1.kernel"):
        located_error(solve_cli(tmp_path, with_constraint(text)), (6, 5), "constraint")


TOKENS = [
    "c1.kernel",
    "c1.stride",
    "c1.shape[",
    "input.shape[",
    "c1.padding[",
    "c1.rf[",
    "]",
    "[",
    "(",
    ")",
    "0",
    "1",
    "2",
    "3",
    "-1",
    "7",
    "99",
    str(2**63),
    "+",
    "-",
    "*",
    "//",
    "%",
    "**",
    "/",
    "==",
    "!=",
    "<",
    "<=",
    ">",
    ">=",
    "and",
    "or",
    "not",
    ",",
    ".",
    "if",
    "else",
    "x",
    "c1",
    "_",
    "'",
    "lambda",
    ":",
]


@settings(max_examples=80)
@given(
    st.one_of(
        st.lists(st.sampled_from(TOKENS), max_size=24).map(" ".join),
        st.text(alphabet="c1.kernlshap[]()0123456789+-*/%<=>!notandr _", max_size=48),
    )
)
def test_random_constraint_text_never_breaks_planner(text: str) -> None:
    spec = with_constraint(text, NET.replace('"?"', '"?", stride: "?"'))
    out, err = io.StringIO(), io.StringIO()
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "fuzz.yaml"
        path.write_text(spec, encoding="utf-8")
        status = main(["solve", str(path), "--no-verify", "--timeout", "5"], stdout=out, stderr=err)
    text_out = out.getvalue() + err.getvalue()
    no_traceback(text_out)
    assert status in (0, 1, 4), text_out
    if status == 1:
        assert errors(text_out, path), text_out


# --- did-you-mean says what is wrong ---------------------------------------------------------

MISPLACED = {  # name: (spec, needle where the error points, nth occurrence, fragment of the message)
    "one_of_beside_min": (NET.replace('"?"', "{one_of: [3], min: 1}"), "min", 0, "beside 'one_of'"),
    "min_beside_one_of": (NET.replace('"?"', "{min: 1, one_of: [3]}"), "min", 0, "beside 'one_of'"),
    "per_axis": (NET.replace('"?"', "[{one_of: [3], max: 5}, 3]"), "max", 0, "beside 'one_of'"),
    "in_defaults": (NET + "defaults:\n  size: {one_of: [32], min: 1}\n", "min", 0, "beside 'one_of'"),
    "in_variables": (
        NET.replace('"?"', '"$k"') + "variables:\n  k: {max: 5, one_of: [3]}\n",
        "max",
        0,
        "beside 'one_of'",
    ),
    "defaults_itself": (NET + "defaults:\n  one_of: [3]\n", "one_of", 0, "defaults give one domain per kind"),
    "layer_itself": (NET.replace("kernel", "one_of: [3], kernel"), "one_of", 0, "a domain is the value"),
    "beside_for_all": (
        NET.replace("32, 32]", "{for_all: {min: 8, max: 32}, min: 8}, 32]"),
        "min",
        1,
        "the range goes inside it",
    ),
    "key_of_another_op": (
        NET.replace('"?"', "3, output_padding: 1"),
        "output_padding",
        0,
        "a conv layer has no 'output_padding' (conv_transpose has one)",
    ),
}


@pytest.mark.parametrize("name", MISPLACED)
def test_did_you_mean_never_suggests_the_key_itself(tmp_path: Path, name: str) -> None:
    spec, needle, nth, fragment = MISPLACED[name]
    m = located_error(solve_cli(tmp_path, spec), at(spec, needle, nth), "unknown-key")
    assert fragment in m["message"], m["message"]
    key = re.match(r"unknown key '([^']*)'", m["message"])
    assert key and f"did you mean '{key[1]}'" not in m["message"], m["message"]


def test_a_typo_still_gets_its_did_you_mean(tmp_path: Path) -> None:
    spec = NET.replace('"?"', "{min: 1, mx: 5}")
    m = located_error(solve_cli(tmp_path, spec), at(spec, "mx"), "unknown-key")
    assert m["message"] == "unknown key 'mx' (did you mean 'max'?)"


def test_a_bad_variable_name_is_located_at_its_key(tmp_path: Path) -> None:
    spec = NET + 'variables:\n  "1a": {min: 1, max: 2}\n'
    m = located_error(solve_cli(tmp_path, spec), (6, 3), "type")
    assert "'1a'" in m["message"] and "{'min'" not in m["message"], m["message"]


# --- what no framework can hold --------------------------------------------------------------

PAD = "input:\n  shape: [1, 3, 8, 8]\nlayers:\n  - {name: p, op: pad, padding: 1, value: VALUE}\n"


@pytest.mark.parametrize("value", [".nan", ".NaN", ".inf", "-.inf", "+.Inf"])
def test_a_non_finite_pad_value_is_a_located_error(tmp_path: Path, value: str) -> None:
    spec = PAD.replace("VALUE", value)
    m = located_error(solve_cli(tmp_path, spec), at(spec, value), "value")
    assert "finite" in m["message"]


def test_a_finite_pad_value_still_solves(tmp_path: Path) -> None:
    solved(solve_cli(tmp_path, PAD.replace("VALUE", "-1.5")))
    solved(solve_cli(tmp_path, PAD.replace("VALUE", "2")))


@pytest.mark.parametrize(
    "spec,needle,code",
    [
        ("input:\n  shape: [1, 3, 8, 8]\nlayers:\n  - {op: dropout, p: .nan}\n", ".nan", "value"),
        ("input:\n  shape: [1, 3, 8, 8]\nlayers:\n  - {op: pad, padding: 1, value: true}\n", "true", "type"),
        (NET.replace('"?"', ".nan"), ".nan", "type"),
        (NET.replace('"?"', "{min: 1, max: .inf}"), ".inf", "type"),
        (NET.replace("32, 32]", "32, .inf]"), ".inf", "type"),
    ],
)
def test_a_non_finite_float_anywhere_is_a_located_error(tmp_path: Path, spec: str, needle: str, code: str) -> None:
    located_error(solve_cli(tmp_path, spec), at(spec, needle), code)


BEYOND = {  # name: (spec, needle of the node that holds the integer)
    "kernel_1e100": (NET.replace('"?"', str(10**100)), str(10**100)),
    "out_channels_1e50": (NET.replace("out_channels: 8", f"out_channels: {10**50}"), str(10**50)),
    "input_size_1e38": (NET.replace("32, 32]", f"{10**38}, 32]"), str(10**38)),
    "batch_2_63": (NET.replace("[1, 3", f"[{2**63}, 3"), str(2**63)),
    "negative": (NET.replace('"?"', str(-(10**30))), str(-(10**30))),
    "range_max": (NET.replace('"?"', f"{{min: 1, max: {10**30}}}"), str(10**30)),
    "expect": (NET.replace('"?"', f"3, expect: [1, 8, {10**40}, 30]"), str(10**40)),
    "default_size": (
        NET.replace("32, 32]", '"?", 32]') + f"defaults:\n  size: {{min: 1, max: {10**20}}}\n",
        str(10**20),
    ),
    "variable": (NET.replace('"?"', '"$k"') + f"variables:\n  k: {10**19}\n", str(10**19)),
}


@pytest.mark.parametrize("name", BEYOND)
def test_an_integer_beyond_int64_is_a_size_range_error_where_written(tmp_path: Path, name: str) -> None:
    spec, needle = BEYOND[name]
    m = located_error(solve_cli(tmp_path, spec), at(spec, needle), "size-range")
    assert "int64" in m["message"] and len(m.group(0)) < 300, m.group(0)


def test_a_tensor_beyond_int64_elements_is_refused_at_the_layer_that_makes_it(tmp_path: Path) -> None:
    spec = NET.replace('"?"', "3").replace("out_channels: 8", f"out_channels: {INT64_MAX}")
    m = located_error(solve_cli(tmp_path, spec), at(spec, "{name: c1"), "size-range")
    assert m["message"].startswith("c1: output shape [1, 9223372036854775807, 30, 30] has more elements than int64")
    spec = NET.replace('"?"', "3") + "  - {name: up, op: upsample, scale_factor: 1000000000}\n"
    located_error(solve_cli(tmp_path, spec), at(spec, "{name: up"), "size-range")


def test_an_input_shape_beyond_int64_elements_is_refused_at_the_input(tmp_path: Path) -> None:
    spec = NET.replace("[1, 3, 32, 32]", "[1, 16, 1000000000, 1000000000]")
    m = located_error(solve_cli(tmp_path, spec), at(spec, "[1, 16"), "size-range")
    assert "the input shape" in m["message"]


def test_unknown_sizes_are_chosen_within_int64(tmp_path: Path) -> None:
    big = "{min: 1000000000, max: 1000000000000000000}"
    spec = NET.replace("32, 32]", f"{big}, {big}]").replace('"?"', "3")
    network = planner.loads(spec, "big.yaml")
    plan = planner.solve(network, verify=False).plans[0]
    for layer in plan.layers:
        count = 1
        for size in layer.output_shape:
            count *= size
        assert count <= INT64_MAX, layer
    too_big = NET.replace(
        "32, 32]", "{min: 10000000000000, max: 100000000000000}, {min: 10000000000000, max: 100000000000000}]"
    )
    status, text, path = solve_cli(tmp_path, too_big, "--no-verify")
    no_traceback(text)
    assert status == 1 and "infeasible" in text and "int64" in text, text


def test_a_one_of_member_beyond_int64_is_never_chosen(tmp_path: Path) -> None:
    spec = NET.replace('"?"', f"1, stride: {{one_of: [{10**30}, 2]}}")
    assert "c1.stride=2" in solved(solve_cli(tmp_path, spec, "--no-verify"))
    spec = NET.replace('"?"', f"{{one_of: [{10**30}, {10**40}]}}")
    located_error(solve_cli(tmp_path, spec), at(spec, "{one_of"), "size-range")


def test_a_plan_within_int64_but_too_big_to_execute_is_solved_and_not_verified(tmp_path: Path) -> None:
    spec = NET.replace("32, 32]", "40000, 40000]").replace('"?"', "3")
    status, text, path = solve_cli(tmp_path, spec)
    no_traceback(text)
    assert status == 0 and "verified: executed" not in text, text
    assert any(m and m["sev"] == "warning" for m in map(DIAGNOSTIC.match, text.splitlines())), text


# --- plan.layer --------------------------------------------------------------------------------


def test_plan_layer_with_an_unknown_name_raises_a_key_error_naming_the_layers() -> None:
    plan = planner.solve(planner.loads(NET, "net.yaml"), verify=False).plans[0]
    assert plan.layer("c1").name == "c1"
    with pytest.raises(KeyError, match=r"no layer named 'nope'; the layers are: c1"):
        plan.layer("nope")
