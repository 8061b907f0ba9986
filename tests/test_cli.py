"""The command-line contract of SPEC 2: exit codes, text/JSON output, --output, run, python -m planner."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT, no_traceback, run, write

LENET = ROOT / "specs" / "lenet5.yaml"
GUIDE = ROOT / "specs" / "guide_transposed.yaml"
VGG = ROOT / "specs" / "vgg_classifier.yaml"

INVALID = """\
input:
  shape: [1, 3, 32, 32]
layers:
  - {name: c1, op: conv, out_channels: 8, kernal: 3}
"""
INFEASIBLE = """\
input:
  shape: [1, 3, 8, 8]
layers:
  - {name: c1, op: conv, out_channels: 4, kernel: "?"}
  - {name: c2, op: conv, out_channels: 4, kernel: 3, expect: [1, 4, 10, 10]}
"""
# Three convolutions with every parameter and both input sizes unknown over wide domains:
# far too many plans to count in 0.2 s (the strides are too many to split, so Z3 works non-linearly).
HUGE = """\
input:
  shape: [1, 3, "?", "?"]
defaults:
  kernel: {min: 1, max: 64}
  stride: {min: 1, max: 1000}
  padding: {min: 0, max: 64}
  size: {min: 1, max: 100000}
layers:
  - {name: c1, op: conv, out_channels: 8, kernel: "?", stride: "?", padding: "?"}
  - {name: c2, op: conv, out_channels: 8, kernel: "?", stride: "?", padding: "?"}
  - {name: c3, op: conv, out_channels: 8, kernel: "?", stride: "?", padding: "?"}
"""


# --- exit status (SPEC 2) -----------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["text", "json", "yaml"])
def test_solved_exits_0(fmt: str) -> None:
    code, out, err = run("solve", GUIDE, "--format", fmt)
    assert code == 0, err
    assert err == ""
    assert out


@pytest.mark.parametrize("fmt", ["text", "json", "yaml"])
def test_invalid_spec_exits_1(tmp_path: Path, fmt: str) -> None:
    path = write(tmp_path, "bad.yaml", INVALID)
    code, out, err = run("solve", path, "--format", fmt)
    assert code == 1
    no_traceback(err)
    line = f"{path}:4:43: error: unknown key 'kernal' (did you mean 'kernel'?) [unknown-key]"
    if fmt == "json":
        result = json.loads(out)
        assert result["status"] == "invalid"
        assert result["solutions"] == []
        (diag,) = [d for d in result["diagnostics"] if d["code"] == "unknown-key"]
        assert (diag["file"], diag["line"], diag["column"], diag["severity"]) == (str(path), 4, 43, "error")
        assert diag["layer"] == "c1"
    else:
        assert line in (out + err).splitlines()


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_infeasible_spec_exits_1(tmp_path: Path, fmt: str) -> None:
    path = write(tmp_path, "infeasible.yaml", INFEASIBLE)
    code, out, err = run("solve", path, "--format", fmt)
    assert code == 1
    no_traceback(err)
    if fmt == "json":
        result = json.loads(out)
        assert result["status"] == "infeasible"
        assert result["solutions"] == []
        errors = [d for d in result["diagnostics"] if d["severity"] == "error"]
        assert errors and all(d["code"] == "infeasible" and d["layer"] == "c2" for d in errors)
        diag = errors[0]
        assert diag["line"] == 5  # c2 (which of its keys it blames: see invalid/infeasible_blames_example.yaml)
        assert diag["message"].startswith("c2: ")
    else:
        assert f"{path}: infeasible" in out
        assert re.search(rf"^{re.escape(str(path))}:5:\d+: error: c2: .*\[infeasible\]$", out, re.M)


def test_missing_file_exits_1_with_a_located_io_diagnostic(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    code, out, err = run("solve", missing)
    assert code == 1
    no_traceback(err)
    text = out + err
    assert f"{missing}:1:1: error: " in text
    assert text.rstrip().endswith("[io]")
    assert "No such file" in text


def test_directory_instead_of_a_file_exits_1(tmp_path: Path) -> None:
    code, out, err = run("solve", tmp_path)
    assert code == 1
    no_traceback(err)
    assert f"{tmp_path}:1:1: error: " in out + err and "[io]" in out + err


@pytest.mark.parametrize(
    "argv",
    [
        ["solve", str(GUIDE), "--frobnicate"],
        ["solve"],
        ["solve", str(GUIDE), "--max-solutions", "0"],
        ["solve", str(GUIDE), "--max-solutions", "-3"],
        ["solve", str(GUIDE), "--max-solutions", "two"],
        ["solve", str(GUIDE), "--all", "--max-solutions", "2"],
        ["solve", str(GUIDE), "--format", "github"],
        ["solve", str(GUIDE), "--format", "xml"],
        ["solve", str(GUIDE), "--timeout", "0"],
        ["solve", str(GUIDE), "--timeout", "-1"],
        ["frobnicate", str(GUIDE)],
        [],
        ["run"],
        ["run", str(GUIDE), "--seed", "x"],
    ],
    ids=[
        "unknown-flag",
        "missing-file-argument",
        "max-solutions-0",
        "max-solutions-negative",
        "max-solutions-not-int",
        "all-with-max-solutions",
        "github-format-for-solve",
        "unknown-format",
        "timeout-0",
        "timeout-negative",
        "unknown-command",
        "no-command",
        "run-missing-file",
        "run-bad-seed",
    ],
)
def test_bad_usage_exits_2(argv: list[str]) -> None:
    code, out, err = run(*argv)
    assert code == 2
    assert out == ""
    assert err.startswith("planner")
    assert "error" in err
    no_traceback(err)


def test_solver_giving_up_exits_4_never_infeasible(tmp_path: Path) -> None:
    path = write(tmp_path, "huge.yaml", HUGE)
    code, out, err = run("solve", path, "--count", "--timeout", "0.2", "--format", "json")
    assert code == 4
    no_traceback(err)
    result = json.loads(out)
    assert result["status"] == "unknown"
    assert "infeasible" not in out
    assert [d["code"] for d in result["diagnostics"]] == ["unknown"]


def test_solver_giving_up_in_text(tmp_path: Path) -> None:
    path = write(tmp_path, "huge.yaml", HUGE)
    code, out, err = run("solve", path, "--count", "--timeout", "0.2")
    assert code == 4
    no_traceback(err)
    assert f"{path}: unknown" in out
    assert "[unknown]" in out
    assert "infeasible" not in out + err


# --- text output ----------------------------------------------------------------------------------


def test_text_output_has_the_table_and_marks_solved_params() -> None:
    code, out, err = run("solve", LENET)
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0] == f"{LENET}: solved"
    header = next(line for line in lines if line.lstrip().startswith("layer"))
    for column in ("layer", "op", "input", "output", "parameters (* solved)"):
        assert column in header
    c1 = next(line for line in lines if line.split()[:2] == ["c1", "conv"])
    assert "padding=2*" in c1 or "padding=3*" in c1
    assert "kernel=5 " in c1, "a known kernel carries no mark"
    c3 = next(line for line in lines if line.split()[:2] == ["c3", "conv"])
    assert "*" not in c3, "c3 has no unknowns"
    assert "f5" in out and "[1, 400]" in out
    assert "verified" in out


def test_text_output_counts_with_all() -> None:
    code, out, err = run("solve", LENET, "--all")
    assert code == 0, err
    assert out.splitlines()[0] == f"{LENET}: solved, 2 plans in all"
    assert "plan 1:" in out and "plan 2:" in out
    assert "c1.padding=2" in out and "c1.padding=3" in out


def test_max_solutions_and_count() -> None:
    code, out, err = run("solve", LENET, "--max-solutions", "1", "--count", "--format", "json")
    assert code == 0, err
    result = json.loads(out)
    assert result["count"] == 2
    assert len(result["solutions"]) == 1
    code, out, err = run("solve", LENET, "--format", "json")
    assert "count" not in json.loads(out)


def test_count_alone_with_max_solutions_0() -> None:
    """--count --max-solutions 0: the count, no plan (no plan built or verified); yaml, which writes a
    plan, refuses it."""
    code, out, err = run("solve", LENET, "--count", "--max-solutions", "0")
    assert code == 0, err
    assert out.splitlines() == [f"{LENET}: solved, 2 plans in all"]
    code, out, err = run("solve", LENET, "--count", "--max-solutions", "0", "--format", "json")
    assert code == 0, err
    result = json.loads(out)
    assert (result["status"], result["count"], result["solutions"]) == ("solved", 2, [])
    code, out, err = run("solve", LENET, "--count", "--max-solutions", "0", "--format", "yaml")
    assert code == 2 and out == "" and "yaml writes a plan" in err


# --- --output FILE ---------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["text", "json", "yaml"])
def test_output_file_is_written_and_stdout_is_empty(tmp_path: Path, fmt: str) -> None:
    target = tmp_path / f"plan.{fmt}"
    code, out, err = run("solve", GUIDE, "--format", fmt, "--output", target)
    assert code == 0, err
    assert out == "" and err == ""
    assert sorted(os.listdir(tmp_path)) == [target.name], "no temporary file left behind"
    _, expected, _ = run("solve", GUIDE, "--format", fmt)
    assert target.read_text(encoding="utf-8") == expected


def test_output_file_replaces_an_existing_file(tmp_path: Path) -> None:
    target = write(tmp_path, "plan.json", "old contents\n")
    code, out, _ = run("solve", GUIDE, "--format", "json", "--output", target)
    assert code == 0 and out == ""
    assert json.loads(target.read_text(encoding="utf-8"))["status"] == "solved"
    assert os.listdir(tmp_path) == ["plan.json"]


def test_output_into_a_missing_directory_is_not_a_traceback(tmp_path: Path) -> None:
    target = tmp_path / "no" / "such" / "dir" / "plan.json"
    code, out, err = run("solve", GUIDE, "--format", "json", "--output", target)
    assert code != 0
    assert code != 3, "an unwritable output file is not an internal error: " + err
    no_traceback(err)
    assert not target.exists()


def test_github_format_belongs_to_check(tmp_path: Path) -> None:
    code, out, err = run("check", GUIDE, "--format", "github")
    assert code == 0, out + err
    assert "::error" not in out
    path = write(tmp_path, "bad.yaml", INVALID)
    code, out, err = run("check", path, "--format", "github")
    assert code == 1
    no_traceback(err)
    assert f"::error file={path},line=4,col=43::unknown key 'kernal' (did you mean 'kernel'?)" in out


# --- planner run ------------------------------------------------------------------------------------


def test_run_prints_every_layer_and_its_shape() -> None:
    code, out, err = run("run", VGG, "--seed", "3")
    assert code == 0, err
    assert "seed 3" in out
    names = ["conv1", "relu1", "pool1", "conv5b", "pool5", "flatten21", "fc1", "dropout24", "classifier"]
    lines = out.splitlines()
    for name in names:
        assert any(line.split()[:1] == [name] for line in lines), name
    assert any(line.split()[:1] == ["conv1"] and "[1, 64, 32, 32]" in line for line in lines)
    assert any(line.split()[:1] == ["flatten21"] and "[1, 512]" in line for line in lines)
    assert any(line.split()[:1] == ["classifier"] and "[1, 10]" in line for line in lines)
    assert "MISMATCH" not in out


def test_run_of_an_invalid_spec_exits_1(tmp_path: Path) -> None:
    path = write(tmp_path, "bad.yaml", INVALID)
    code, out, err = run("run", path)
    assert code == 1
    assert out == ""
    assert "[unknown-key]" in err
    no_traceback(err)


# --- python -m planner ------------------------------------------------------------------------------


def test_python_dash_m_planner() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "planner", "solve", str(GUIDE), "--format", "json"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["status"] == "solved"
    assert result["solutions"][0]["layers"][1]["params"]["output_padding"] == [1, 1]


def test_help_is_written_to_the_given_stdout_and_returns_0() -> None:
    code, out, err = run("solve", "--help")
    assert code == 0
    assert "--max-solutions" in out
