"""Startup: `planner --help`, `import planner` and loading a spec import neither NumPy nor the executor
(pre-commit runs planner once per file); the first solve, verification or run brings them in."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import ROOT

PROBE = """
import sys
{code}
heavy = sorted(m for m in ("numpy", "planner.executor.run", "planner.solver.reach") if m in sys.modules)
print("imported:" + ",".join(heavy))
"""


def imported_after(code: str) -> str:
    out = subprocess.run(
        [sys.executable, "-c", PROBE.format(code=code)], cwd=ROOT, capture_output=True, text=True, check=True
    )
    return out.stdout.rsplit("imported:", 1)[1].strip()


def test_loading_a_spec_imports_neither_numpy_nor_the_executor():
    assert imported_after("import planner; planner.load('specs/unet_same.yaml')") == ""


def test_help_imports_neither_numpy_nor_the_executor():
    code = "from planner.cli import main\ntry:\n    main(['--help'])\nexcept SystemExit:\n    pass"
    assert imported_after(code) == ""


def test_solving_brings_them_in():
    code = "import planner; planner.solve('specs/guide_transposed.yaml')"
    assert imported_after(code) == "numpy,planner.executor.run,planner.solver.reach"
