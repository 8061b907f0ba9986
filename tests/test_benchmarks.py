"""The search benchmark runs, and its engines agree (a smoke test of `benchmarks/search.py --quick`:
one run of small tasks; CP-SAT's column says "not installed" without the bench extra)."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import ROOT


def test_search_benchmark_quick_runs_and_every_answer_agrees():
    out = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "search.py"), "--quick"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    assert "answers agree on 8 of 8 tasks" in out.stdout
