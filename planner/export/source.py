"""Numbers and tuples as they are written into exported source: from ints and floats only."""

from __future__ import annotations

import math
from typing import Any

from planner.errors import InternalError
from planner.report.escape import visible


def _int(value: Any) -> str:
    """An int literal; anything else reaching the source is a bug."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise InternalError(f"export expected an int, not {type(value).__name__} {visible(repr(value))}")
    return repr(int(value))


def _tuple(values) -> str:
    """A tuple literal of ints (or of such tuples)."""
    items = [_tuple(v) if isinstance(v, (tuple, list)) else _int(v) for v in values]
    return f"({items[0]},)" if len(items) == 1 else f"({', '.join(items)})"


def _axes(values) -> str:
    """One int when every axis agrees (PyTorch repeats it), else the per-axis tuple."""
    values = tuple(values)
    return _int(values[0]) if len(set(values)) == 1 else _tuple(values)


def _flat_pads(pairs) -> str:
    """Per-axis (begin, end) pairs in F.pad's order: last axis first."""
    return _tuple(n for pair in reversed(tuple(pairs)) for n in pair)


def _float(value: float) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InternalError(f"export expected a number, not {type(value).__name__} {visible(repr(value))}")
    value = float(value)
    return repr(value) if math.isfinite(value) else f'float("{value}")'
