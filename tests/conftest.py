"""Shared test helpers: the repository's paths, the CLI runner, cached solves, and the one
hypothesis profile every property test runs under (derandomised, no deadline: CI machines are
shared and noisy). Test modules import these from here and never from each other."""

from __future__ import annotations

import functools
import io
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

import planner
from planner.cli import main

ROOT = Path(__file__).resolve().parent.parent
SPECS = ROOT / "specs"
EXAMPLES = sorted(SPECS.glob("*.yaml"))

settings.register_profile(
    "planner",
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large],
)
settings.load_profile("planner")


@pytest.fixture(autouse=True)
def _default_width(monkeypatch: pytest.MonkeyPatch) -> None:
    """Text output at its default width, whatever $COLUMNS the tests run under (tests of it set it)."""
    monkeypatch.delenv("COLUMNS", raising=False)


def run(*argv: object) -> tuple[int, str, str]:
    """`planner ARGV` through main(), in this process: (exit status, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    code = main([str(a) for a in argv], stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


def write(directory: Path, name: str, content: str | bytes) -> Path:
    """A file `name` in `directory` holding `content`."""
    path = directory / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


def no_traceback(text: str) -> None:
    """Nothing of a Python traceback, and no internal error, in a command's output."""
    assert "Traceback" not in text, text
    assert 'File "' not in text, text
    assert "internal error" not in text, text


@functools.cache
def solved(path: Path) -> tuple[planner.Network, planner.Plan]:
    """The network of a spec file and its first plan (unverified), solved once per test session."""
    network = planner.load(path)
    result = planner.solve(network, verify=False)
    assert result.plans, f"{path.name} does not solve: {result.status}"
    return network, result.plans[0]
