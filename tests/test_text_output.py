"""Text output a person reads in a terminal: it fits COLUMNS (100 by default), shows only the
parameters that differ from the spec format's defaults (all of them with --verbose), marks solved
values with `*`, and groups the digits of big counts."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.conftest import EXAMPLES, run


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_every_example_fits_100_columns(monkeypatch: pytest.MonkeyPatch, path: Path) -> None:
    monkeypatch.delenv("COLUMNS", raising=False)
    code, out, err = run("solve", path, "--max-solutions", "3", "--no-verify")
    assert code == 0, err
    assert max(len(line) for line in out.splitlines()) <= 100, out


@pytest.mark.parametrize("width", [90, 70])
def test_a_narrow_terminal_wraps_the_parameters(monkeypatch: pytest.MonkeyPatch, width: int) -> None:
    """Under their own column while it keeps 20 columns, else on lines of their own below the row."""
    monkeypatch.setenv("COLUMNS", str(width))
    code, out, _ = run("solve", EXAMPLES[0].parent / "guide_transposed.yaml", "--no-verify")
    lines = out.splitlines()
    assert code == 0 and max(len(line) for line in lines) <= width, out
    header = next(i for i, line in enumerate(lines) if line.lstrip().startswith("layer"))
    start = lines[header].find("parameters")
    row = next(i for i, line in enumerate(lines) if line.lstrip().startswith("transposed"))
    continued = [line for line in lines[row + 1 :] if line.startswith(" " * 6) and line[:6].strip() == ""]
    assert continued, out
    assert "out_channels=1" in " ".join(continued) and "output_padding=1*" in " ".join([lines[row], *continued])
    assert all(line.startswith(" " * (start if start > 0 else 6)) for line in continued), out


def test_defaults_are_left_out_unless_verbose() -> None:
    guide = EXAMPLES[0].parent / "guide_transposed.yaml"
    _, out, _ = run("solve", guide, "--no-verify")
    _, verbose, _ = run("solve", guide, "--no-verify", "--verbose")
    direct = " ".join(line for line in out.splitlines() if "direct" in line or line.startswith(" " * 30))
    assert "dilation=1" not in out and "groups=1" not in out
    assert "dilation=1" in verbose and "groups=1" in verbose
    assert "output_padding=1*" in out and "stride=2" in direct and "kernel=3" in direct


def test_a_pool_whose_stride_is_its_kernel_leaves_the_stride_out() -> None:
    _, out, _ = run("solve", EXAMPLES[0].parent / "unet_original.yaml", "--no-verify")
    pool = next(line for line in out.splitlines() if line.strip().startswith("pool1"))
    assert re.search(r"kernel=2$", pool), pool


def test_big_counts_have_their_digits_grouped(tmp_path: Path) -> None:
    spec = tmp_path / "wide.yaml"
    spec.write_text(
        "input: {shape: [1, 1, 64]}\nlayers:\n"
        + "".join('  - {op: conv, out_channels: 1, kernel: "?", padding: "?"}\n' for _ in range(4))
    )
    code, out, err = run("solve", spec, "--count", "--no-verify")
    assert code == 0, err
    count = re.search(r"solved, ([\d,]+) plans in all", out)
    assert count and "," in count[1] and int(count[1].replace(",", "")) >= 1000, out
