"""Golden diagnostics: every spec under tests/specs/invalid/ fails with exactly located errors.

Each invalid spec starts with comment lines
    # expect: LINE:COL CODE the whole message
(one or more), located by reading the YAML, and optionally
    # xfail: why planner's diagnostic is not yet what a user would expect
`planner solve FILE` must exit 1 and print, for every expectation, the line
`FILE:LINE:COL: error: MESSAGE [CODE]` with exactly that message; `--format json`
must carry the same diagnostics. Every spec under tests/specs/valid/ must solve (exit 0).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import run

HERE = Path(__file__).resolve().parent
INVALID = sorted((HERE / "specs" / "invalid").glob("*.yaml"))
VALID = sorted((HERE / "specs" / "valid").glob("*.yaml"))
EXPECT = re.compile(r"#\s*expect:\s*(\d+):(\d+)\s+(\S+)\s+(.+?)\s*$")
XFAIL = re.compile(r"#\s*xfail:\s*(.+?)\s*$")


@dataclass(frozen=True)
class Expected:
    line: int
    column: int
    code: str
    text: str

    def __str__(self) -> str:
        return f"{self.line}:{self.column} [{self.code}] ...{self.text}..."


def header(path: Path) -> tuple[list[Expected], str | None]:
    """The expectations and the xfail reason written in the file's leading comment lines."""
    expected, reason = [], None
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.startswith("#"):
            break
        if m := EXPECT.match(line):
            expected.append(Expected(int(m[1]), int(m[2]), m[3], m[4]))
        elif m := XFAIL.match(line):
            reason = m[1]
    return expected, reason


def _param(path: Path):
    _, reason = header(path)
    marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
    return pytest.param(path, id=path.stem, marks=marks)


def test_there_are_golden_files() -> None:
    assert len(INVALID) >= 20 and len(VALID) >= 3
    for path in INVALID:
        assert header(path)[0], f"{path.name} has no '# expect:' line"


@pytest.mark.parametrize("path", [_param(p) for p in INVALID])
def test_invalid_spec_is_diagnosed_where_written(path: Path) -> None:
    expected, _ = header(path)
    code, out, err = run("solve", str(path))
    assert "Traceback" not in err and "internal error" not in err, err
    assert code == 1, out + err
    printed = re.compile(rf"^{re.escape(str(path))}:(\d+):(\d+): error: (.*) \[([a-z0-9-]+)\]$")
    found = [(int(m[1]), int(m[2]), m[4], m[3]) for m in map(printed.match, (out + err).splitlines()) if m]
    for e in expected:
        assert any(
            (line, column, c, message) == (e.line, e.column, e.code, e.text) for line, column, c, message in found
        ), f"expected {e}; printed:\n{out}{err}"


@pytest.mark.parametrize("path", [_param(p) for p in INVALID])
def test_invalid_spec_json_carries_the_same_diagnostics(path: Path) -> None:
    expected, _ = header(path)
    code, out, err = run("solve", str(path), "--format", "json")
    assert "Traceback" not in err and "internal error" not in err, err
    assert code == 1
    result = json.loads(out)
    assert result["status"] in ("invalid", "infeasible")
    assert result["solutions"] == []
    diagnostics = result["diagnostics"]
    assert all(d["file"] == str(path) for d in diagnostics)
    for e in expected:
        assert any(
            (d["line"], d["column"], d["code"], d["severity"], d["message"])
            == (e.line, e.column, e.code, "error", e.text)
            for d in diagnostics
        ), f"expected {e}; got {diagnostics}"


@pytest.mark.parametrize("path", VALID, ids=[p.stem for p in VALID])
def test_valid_spec_solves(path: Path) -> None:
    code, out, err = run("solve", str(path))
    assert code == 0, out + err
    assert err == ""
    assert out.startswith(f"{path}: solved")
    assert "verified: " in out
