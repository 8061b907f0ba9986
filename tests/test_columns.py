"""`planner solve --columns`: torchinfo's column names in text output, each cell what the plan says
(LayerPlan.params_count, .macs, the totals), the default unchanged, every example within 100 columns
whatever the columns; and `*` on the values planner inferred (a linear's in_features, a crop's size)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from planner.report.text import COLUMNS_BY_NAME, DEFAULT_TABLE, parse_columns
from tests.conftest import EXAMPLES, SPECS, run, solved

ALL = ",".join(COLUMNS_BY_NAME)
COLUMN_SETS = {"default": None, "all": ALL, "numbers": "num_params,params_percent,mult_adds", "kernel": "kernel_size"}


def table(out: str) -> dict[str, str]:
    """The table's rows by layer name: each row's first line (not the totals' or the verification's)."""
    rows = {}
    for line in out.splitlines():
        if line.startswith("  ") and not line.startswith("   ") and not line.split()[0].endswith(":"):
            rows.setdefault(line.split()[0], line)
    return rows


def test_the_names_are_torchinfos_and_the_table_today() -> None:
    assert set(COLUMNS_BY_NAME) == {
        "op",
        "input_size",
        "output_size",
        "num_params",
        "params_percent",
        "kernel_size",
        "mult_adds",
        "receptive_field",
        "parameters",
    }
    assert DEFAULT_TABLE == ("op", "input_size", "output_size", "receptive_field", "parameters")


def test_parse_keeps_the_order_with_parameters_last_and_layer_first() -> None:
    assert parse_columns("mult_adds, num_params") == ("mult_adds", "num_params")
    assert parse_columns("parameters,kernel_size,layer,op") == ("kernel_size", "op", "parameters")


@pytest.mark.parametrize(
    "text,message",
    [("nope", "'nope' is not a column; the columns are: layer, op,"), ("op,op", "names 'op' twice"), ("", "no column")],
)
def test_parse_refuses_what_is_not_a_column(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        parse_columns(text)


def test_an_unknown_column_is_a_usage_error() -> None:
    code, out, err = run("solve", SPECS / "lenet5.yaml", "--no-verify", "--columns", "op,params")
    assert code == 2 and out == ""
    assert "argument --columns: 'params' is not a column; the columns are: layer, op, input_size" in err


@pytest.mark.parametrize("fmt", ["json", "yaml"])
def test_columns_are_for_text_output_only(fmt: str) -> None:
    code, out, err = run("solve", SPECS / "lenet5.yaml", "--no-verify", "--format", fmt, "--columns", "op")
    assert code == 2 and out == "" and "--columns picks the columns of text output" in err


def test_the_default_columns_are_todays_table() -> None:
    _, plain, _ = run("solve", SPECS / "unet_original.yaml", "--no-verify")
    _, named, _ = run("solve", SPECS / "unet_original.yaml", "--no-verify", "--columns", ",".join(DEFAULT_TABLE))
    assert named == plain
    assert "  layer         op              input               output              rf   parameters (* solved)" in plain


def test_each_cell_is_the_plans_number() -> None:
    network, plan = solved(SPECS / "lenet5.yaml")
    code, out, err = run("solve", SPECS / "lenet5.yaml", "--no-verify", "--columns", "num_params,mult_adds,kernel_size")
    assert code == 0, err
    rows = table(out)
    assert rows["layer"].split() == ["layer", "param", "#", "mult-adds", "kernel"]
    for layer in plan.layers:
        cells = rows[layer.name].split()[1:]
        assert cells[0] == (f"{layer.params_count:,}" if layer.params_count else "--"), layer.name
        assert cells[1] == (f"{layer.macs:,}" if layer.macs else "--"), layer.name
        kernel = "x".join(map(str, layer.params["kernel"])) if "kernel" in layer.params else "--"
        assert cells[2] == kernel, layer.name
    assert rows["c1"].split()[1:] == ["156", "117,600", "5x5"]
    assert "  totals: 61,706 params, 416,520 MACs" in out


def test_params_percent_adds_up_to_all_of_them() -> None:
    _, plan = solved(SPECS / "vgg_classifier.yaml")
    code, out, _ = run("solve", SPECS / "vgg_classifier.yaml", "--no-verify", "--columns", "params_percent")
    assert code == 0
    shares = {name: row.split()[1] for name, row in table(out).items() if name not in ("layer", "input")}
    total = plan.totals["params"]
    for layer in plan.layers:
        want = f"{100 * layer.params_count / total:.2f}%" if layer.params_count else "--"
        assert shares[layer.name] in (want, "<0.01%"), layer.name
    assert abs(sum(float(s[:-1]) for s in shares.values() if s != "--") - 100) < 0.05


def test_numbers_are_right_aligned_and_shapes_left_aligned() -> None:
    _, out, _ = run("solve", SPECS / "lenet5.yaml", "--no-verify", "--columns", "num_params,output_size")
    rows = table(out)
    ends = {rows[name].index(rows[name].split()[1]) + len(rows[name].split()[1]) for name in ("c1", "c3", "f5")}
    assert len(ends) == 1  # 156, 2,416 and 48,120 end in the same column
    starts = {rows[name].index("[1,") for name in ("c1", "f5", "input")}
    assert len(starts) == 1


@pytest.mark.parametrize("columns", list(COLUMN_SETS), ids=str)
@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_every_example_fits_100_columns_whatever_the_columns(
    monkeypatch: pytest.MonkeyPatch, path: Path, columns: str
) -> None:
    monkeypatch.delenv("COLUMNS", raising=False)
    flags = ["--columns", COLUMN_SETS[columns]] if COLUMN_SETS[columns] else []
    code, out, err = run("solve", path, "--max-solutions", "2", "--no-verify", *flags)
    assert code == 0, err
    assert max(len(line) for line in out.splitlines()) <= 100, out


@pytest.mark.parametrize("width", [100, 80, 60])
def test_columns_too_wide_for_the_terminal_continue_under_the_row(monkeypatch: pytest.MonkeyPatch, width: int) -> None:
    """Every column of the original U-Net is 120 wide: the columns past the width go on further lines of
    each row, under the op column, with further header lines naming them."""
    monkeypatch.setenv("COLUMNS", str(width))
    code, out, _ = run("solve", SPECS / "unet_original.yaml", "--no-verify", "--columns", ALL)
    lines = out.splitlines()
    assert code == 0 and max(map(len, lines)) <= width, out
    header = next(n for n, line in enumerate(lines) if line.startswith("  layer"))
    op = lines[header].index("op")
    rest = lines[header + 1]
    assert rest[:op].strip() == "" and rest[op:].split()[0] in {c.split()[0] for c in COLUMNS_BY_NAME.values()}
    named = " ".join(lines[header : next(n for n, line in enumerate(lines) if line.startswith("  input"))])
    for title in ("param #", "param %", "kernel", "mult-adds", "rf", "parameters"):
        assert title in named, title
    row = next(n for n, line in enumerate(lines) if line.startswith("  enc1a "))
    shown = " ".join(lines[row : row + 4])
    assert "640" in shown and "187,142,400" in shown and "3x3" in shown and "kernel=3" in shown


# ------------------------------------------------------------------------------ * on inferred values


def test_a_linears_inferred_in_features_is_marked() -> None:
    _, out, _ = run("solve", SPECS / "vgg_classifier.yaml", "--no-verify")
    assert re.search(r"fc1\s.*in_features=512\* out_features=512", out), out


def test_an_in_features_the_spec_gives_is_not_marked() -> None:
    _, out, _ = run("solve", SPECS / "lenet5.yaml", "--no-verify")
    rows = table(out)
    assert "in_features=400 " in rows["f5"] and "in_features=120* " in rows["f6"]


def test_a_crops_size_from_like_is_marked_and_a_pools_default_stride_is_not() -> None:
    _, out, _ = run("solve", SPECS / "unet_original.yaml", "--no-verify")
    rows = table(out)
    assert rows["skip4"].endswith("size=56* offset=4") and rows["pool1"].endswith("kernel=2")
